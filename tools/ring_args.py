"""Parsing for `torus ring`: options, search values, device specs, numbers.

The syntax is swift-ring-builder's, so operators can reuse what they know:

    search value   [d<id>][r<region>][z<zone>][-][<ip>][:<port>][R[<ip>][:<port>]][/<name>][_<meta>]
                   or a bare integer (a device id)
    add value      [r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<name>[_<meta>]
    change value   [<ip>][:<port>][R[<ip>][:<port>]][/<name>][_<meta>]

IPv6 addresses go in brackets.  Every error is a ``ValueError`` whose message
names the bad text, so the caller can print it as one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ring.device import validate_ip, validate_port

ADD_SYNTAX = "[r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<device>[_<meta>]"
CHANGE_SYNTAX = "[<ip>][:<port>][R[<ip>][:<port>]][/<device>][_<meta>]"

# Long options that name devices, as swift-ring-builder spells them.
SEARCH_OPTIONS = (
    "id",
    "region",
    "zone",
    "ip",
    "port",
    "replication-ip",
    "replication-port",
    "device",
    "meta",
    "weight",
)
CHANGE_OPTIONS = (
    "change-ip",
    "change-port",
    "change-replication-ip",
    "change-replication-port",
    "change-device",
    "change-meta",
)
YES_FLAG = {"--yes": "yes", "-y": "yes"}


class HelpRequested(Exception):
    """-h or --help was given: the caller prints usage and exits 0."""


@dataclass
class Args:
    positional: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # "replication-ip" -> raw text
    flags: set[str] = field(default_factory=set)


def split_args(
    argv: list[str], *, values: Collection[str] = (), flags: Mapping[str, str] | None = None
) -> Args:
    """Split a command's arguments into positionals, ``--name value`` options and flags.

    Hand-rolled rather than argparse because search values such as
    ``-10.0.0.1`` and ``-[::1]`` start with a dash yet are positionals: here
    only a dash followed by a letter, or ``--``, marks an option.
    """
    flags = flags or {}
    args = Args()
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            args.positional.extend(tokens)
            break
        if token in ("-h", "--help"):
            raise HelpRequested
        if not re.match(r"--?[A-Za-z]", token):
            args.positional.append(token)
            continue
        name, has_value, value = token[2:].partition("=")
        if token.startswith("--") and name in values:
            if not has_value:
                value = next(tokens, None)
                if value is None:
                    raise ValueError(f"option --{name} needs a value")
            if name in args.options:
                raise ValueError(f"option --{name} given twice")
            args.options[name] = value
        elif token in flags:
            args.flags.add(flags[token])
        else:
            raise ValueError(f"unknown option {token!r}")
    return args


# -- numbers ----------------------------------------------------------------


def parse_int(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"invalid {what} {text!r}: must be a non-negative integer")
    return int(text)


def parse_port(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"invalid port {text!r}: must be an integer in 1..65535")
    return validate_port(int(text))


def parse_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"invalid {what} {text!r}: not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"invalid {what} {text!r}: must be finite")
    return value


def parse_weight(text: str) -> float:
    weight = parse_float(text, "weight")
    if weight < 0:
        raise ValueError(f"invalid weight {text!r}: must be >= 0")
    return weight


# -- the compact device syntax ---------------------------------------------


class _Cursor:
    """Reads one compact value left to right; errors quote the whole value."""

    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind
        self.pos = 0

    def error(self, why: str) -> ValueError:
        return ValueError(f"invalid {self.kind} {self.text!r}: {why}")

    @property
    def done(self) -> bool:
        return self.pos >= len(self.text)

    def skip(self, prefix: str) -> bool:
        if self.text.startswith(prefix, self.pos):
            self.pos += len(prefix)
            return True
        return False

    def expect(self, prefix: str, why: str) -> None:
        if not self.skip(prefix):
            raise self.error(why)

    def take_while(self, allowed: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def take_until(self, stop: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            self.pos += 1
        return self.text[start : self.pos]

    def rest(self) -> str:
        rest, self.pos = self.text[self.pos :], len(self.text)
        return rest

    def number(self, what: str) -> int:
        digits = self.take_while("0123456789")
        if not digits:
            raise self.error(f"{what} must be followed by a number")
        return int(digits)

    def ip(self) -> str | None:
        """An IPv4 address, a bracketed IPv6 one, or None if neither starts here."""
        if self.skip("["):
            inner = self.take_until("]")
            self.expect("]", "unclosed '[' in an IPv6 address")
        elif not self.done and self.text[self.pos].isdigit():
            inner = self.take_while("0123456789.")
        else:
            return None
        try:
            return validate_ip(inner)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def port(self) -> int:
        digits = self.take_while("0123456789")
        try:
            return parse_port(digits)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def address(self, into: dict[str, Any], ip_key: str, port_key: str) -> None:
        """An optional ip then an optional :port, each stored only if present."""
        ip = self.ip()
        if ip is not None:
            into[ip_key] = ip
        if self.skip(":"):
            into[port_key] = self.port()

    def name_and_meta(self, into: dict[str, Any]) -> None:
        if self.skip("/"):
            name = self.take_until("_")
            if not name or name.strip() != name:
                raise self.error("the device name after '/' is empty or padded")
            into["device"] = name
        if self.skip("_"):
            into["meta"] = self.rest()


def parse_search_value(text: str) -> dict[str, Any]:
    """Search criteria for ``RingBuilder.search_devs`` from a search value."""
    if text.isdigit():
        return {"id": int(text)}  # a bare integer is a device id
    cur = _Cursor(text, "search value")
    found: dict[str, Any] = {}
    for prefix, key in (("d", "id"), ("r", "region"), ("z", "zone")):
        if cur.skip(prefix):
            found[key] = cur.number(repr(prefix))
    cur.skip("-")
    cur.address(found, "ip", "port")
    if cur.skip("R"):
        cur.address(found, "replication_ip", "replication_port")
    cur.name_and_meta(found)
    if not cur.done:
        raise cur.error(f"cannot read {text[cur.pos :]!r}")
    if not found:
        raise cur.error("it names nothing to match")
    return found


def parse_add_value(text: str) -> dict[str, Any]:
    """``RingBuilder.add_dev`` keywords (weight aside) from an add value."""
    cur = _Cursor(text, "device")
    dev: dict[str, Any] = {"region": cur.number("'r'") if cur.skip("r") else 1}
    cur.expect("z", f"expected {ADD_SYNTAX}")
    dev["zone"] = cur.number("'z'")
    cur.expect("-", f"expected '-' after the zone ({ADD_SYNTAX})")
    _required_address(cur, dev, "ip", "port")
    if cur.skip("R"):
        _required_address(cur, dev, "replication_ip", "replication_port")
    if not cur.text.startswith("/", cur.pos):
        raise cur.error(f"expected '/<device>' ({ADD_SYNTAX})")
    cur.name_and_meta(dev)
    return dev


def _required_address(cur: _Cursor, into: dict[str, Any], ip_key: str, port_key: str) -> None:
    ip = cur.ip()
    if ip is None:
        raise cur.error(f"expected an IP address at {cur.text[cur.pos :]!r}")
    into[ip_key] = ip
    cur.expect(":", f"expected ':<port>' after {ip}")
    into[port_key] = cur.port()


def parse_change_value(text: str) -> dict[str, Any]:
    """``RingBuilder.set_dev_info`` keywords from a set_info change value."""
    cur = _Cursor(text, "change value")
    change: dict[str, Any] = {}
    cur.address(change, "ip", "port")
    if cur.skip("R"):
        cur.address(change, "replication_ip", "replication_port")
    cur.name_and_meta(change)
    if not cur.done:
        raise cur.error(f"cannot read {text[cur.pos :]!r} (expected {CHANGE_SYNTAX})")
    if not change:
        raise cur.error(f"it changes nothing (expected {CHANGE_SYNTAX})")
    return change


# -- the long-option device syntax -----------------------------------------


def _option_value(name: str, raw: str) -> Any:
    if name in ("ip", "replication-ip"):
        return validate_ip(raw)
    if name in ("port", "replication-port"):
        return parse_port(raw)
    if name == "weight":
        return parse_weight(raw)
    if name in ("device", "meta"):
        return raw
    return parse_int(raw, name)


def search_from_options(options: Mapping[str, str]) -> dict[str, Any]:
    """Search criteria from ``--region 1 --ip 10.0.0.1 ...``."""
    return {
        name.replace("-", "_"): _option_value(name, raw)
        for name, raw in options.items()
        if name in SEARCH_OPTIONS
    }


def change_from_options(options: Mapping[str, str]) -> dict[str, Any]:
    """set_info changes from ``--change-ip ... --change-meta ...``."""
    return {
        name.removeprefix("change-").replace("-", "_"): _option_value(
            name.removeprefix("change-"), raw
        )
        for name, raw in options.items()
        if name in CHANGE_OPTIONS
    }


def add_from_options(options: Mapping[str, str]) -> dict[str, Any]:
    """``add_dev`` keywords, weight included, from the long-option form of add."""
    missing = [n for n in ("zone", "ip", "port", "device", "weight") if n not in options]
    if missing:
        raise ValueError(f"add needs {', '.join('--' + n for n in missing)}")
    dev = search_from_options(options)
    dev.setdefault("region", 1)
    if "id" in dev:
        raise ValueError("add chooses the device id itself; --id is not allowed")
    return dev
