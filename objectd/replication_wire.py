"""The object replication push on the wire (SSYNC): pure encode/decode, shared by the
receiver (objectd/replication_receiver.py) and the sender (replicator/object_replication_push.py).

Modelled on Swift's ssync (a missing check, then the updates), made simpler: two requests,
each ``SSYNC /<device>/<partition>`` (a POST naming it: service/methods.py), rather than one
full-duplex request, because neither aiohttp's server nor our HTTP/1.1 client reads an answer
while the request body is still being sent.  Version 1 (this docstring is its spec):

**Missing check.**  The body: the line ``torus-ssync/1 missing-check``, then one line per
version the sender holds::

    <timestamp> <meta timestamp> <content-type timestamp> <l|t> <name>

(timestamps in their internal form; ``l`` live data, ``t`` tombstone; the name
``/account/container/object`` percent-encoded as UTF-8, ``/`` kept).  The answer (200): the
line ``torus-ssync/1 wanted``, then one line per version the receiver wants::

    <d|m> <name>

``d``: the data (or tombstone): the receiver has nothing as new.  ``m``: the same data, but
newer metadata (a POST it missed).  Names the receiver does not want are left out.

**Updates.**  The body: the line ``torus-ssync/1 updates``, then frames, then ``END``::

    PUT <metadata bytes> <body bytes>\\n<metadata><body>
    DELETE <metadata bytes> 0\\n<metadata>
    POST <metadata bytes> 0\\n<metadata>

The metadata is objectd/metadata.py's encoding of the version (its own version marker); the
receiver keeps the sender's timestamps, content type, headers and X-Delete-At, and computes
the body's checksums itself (the ETag must match).  ``END`` says the stream is complete: a
stream cut short is an error, though the updates before the cut stand.  The answer (200,
sent once every update is durable): JSON ``{"applied": n, "ignored": n}``; ignored = the
receiver holds a version as new or newer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from service.timestamp import Timestamp

from .metadata import ObjectMetadata, decode, encode

VERSION = 1
MISSING_CHECK_LINE = b"torus-ssync/1 missing-check\n"
WANTED_LINE = b"torus-ssync/1 wanted\n"
UPDATES_LINE = b"torus-ssync/1 updates\n"
END_LINE = b"END\n"
MAX_HEAD_LINE_BYTES = 64  # "DELETE <digits> <digits>\n"
MAX_METADATA_BYTES = 1 << 20  # a version's encoded metadata (headers are bounded far below)
MAX_MISSING_CHECK_BYTES = 16 << 20  # a missing check the receiver reads whole
UpdateKind = Literal["PUT", "DELETE", "POST"]
_KINDS: frozenset[str] = frozenset({"PUT", "DELETE", "POST"})


class WireError(ValueError):
    """Bytes that do not follow the format (a 400 at the receiver)."""


@dataclass(frozen=True, slots=True)
class Offer:
    """One version the sender holds, as the missing check names it."""

    name: str
    timestamp: Timestamp
    meta_timestamp: Timestamp
    ctype_timestamp: Timestamp
    deleted: bool

    @classmethod
    def of(cls, meta: ObjectMetadata) -> Offer:
        return cls(
            meta.name, meta.timestamp, meta.meta_timestamp, meta.ctype_timestamp, meta.deleted
        )


@dataclass(frozen=True, slots=True)
class Want:
    name: str
    data: bool  # False: only the metadata (the receiver has this data already)


def encode_offers(offers: list[Offer]) -> bytes:
    lines = [MISSING_CHECK_LINE]
    for o in offers:
        flag = "t" if o.deleted else "l"
        ts, meta_ts, ctype_ts = o.timestamp, o.meta_timestamp, o.ctype_timestamp
        line = f"{ts.internal} {meta_ts.internal} {ctype_ts.internal} {flag} {_quote(o.name)}\n"
        lines.append(line.encode())
    return b"".join(lines)


def decode_offers(body: bytes) -> list[Offer]:
    offers = []
    for line in _lines(body, MISSING_CHECK_LINE):
        fields = line.split(" ")
        if len(fields) != 5 or fields[3] not in ("l", "t"):
            raise WireError(f"bad missing-check line {line!r}")
        ts, meta_ts, ctype_ts = (_timestamp(f) for f in fields[:3])
        offers.append(Offer(_unquote(fields[4]), ts, meta_ts, ctype_ts, fields[3] == "t"))
    return offers


def encode_wants(wants: list[Want]) -> bytes:
    lines = [WANTED_LINE]
    lines += [f"{'d' if w.data else 'm'} {_quote(w.name)}\n".encode() for w in wants]
    return b"".join(lines)


def decode_wants(body: bytes) -> list[Want]:
    wants = []
    for line in _lines(body, WANTED_LINE):
        kind, _, name = line.partition(" ")
        if kind not in ("d", "m") or not name:
            raise WireError(f"bad wanted line {line!r}")
        wants.append(Want(_unquote(name), kind == "d"))
    return wants


@dataclass(frozen=True, slots=True)
class UpdateHead:
    kind: UpdateKind
    metadata_bytes: int
    body_bytes: int


def encode_update(kind: UpdateKind, meta: ObjectMetadata) -> bytes:
    """A frame's head and metadata; a PUT's ``meta.size_bytes`` body bytes follow it."""
    if kind not in _KINDS:
        raise ValueError(f"unknown update kind {kind!r}")
    metadata = encode(meta)
    body_bytes = meta.size_bytes if kind == "PUT" else 0
    return b"%s %d %d\n" % (kind.encode(), len(metadata), body_bytes) + metadata


def decode_update_head(line: bytes) -> UpdateHead | None:
    """A frame's head line (with its newline); None for ``END``."""
    if line == END_LINE:
        return None
    fields = line.rstrip(b"\n").split(b" ")
    kind = fields[0].decode("ascii", "replace")
    if not line.endswith(b"\n") or len(fields) != 3 or kind not in _KINDS:
        raise WireError(f"bad update head {line[:MAX_HEAD_LINE_BYTES]!r}")
    try:
        metadata_bytes, body_bytes = int(fields[1]), int(fields[2])
    except ValueError:
        raise WireError(f"bad update head {line!r}") from None
    if not 0 < metadata_bytes <= MAX_METADATA_BYTES or body_bytes < 0:
        raise WireError(f"update head out of bounds: {line!r}")
    if kind != "PUT" and body_bytes:
        raise WireError(f"a {kind} carries no body: {line!r}")
    return UpdateHead(kind, metadata_bytes, body_bytes)  # type: ignore[arg-type]


def decode_update_metadata(head: UpdateHead, data: bytes) -> ObjectMetadata:
    try:
        meta = decode(data)
    except ValueError as exc:
        raise WireError(f"update metadata: {exc}") from None
    _check_name(meta.name, meta.name)
    if meta.deleted != (head.kind == "DELETE"):
        raise WireError(f"a {head.kind} frame with deleted={meta.deleted}")
    if head.kind == "PUT" and meta.size_bytes != head.body_bytes:
        raise WireError(f"metadata says {meta.size_bytes} bytes, the frame {head.body_bytes}")
    return meta


@dataclass(frozen=True, slots=True)
class UpdatesResult:
    applied: int
    ignored: int

    def encode(self) -> bytes:
        return json.dumps({"applied": self.applied, "ignored": self.ignored}).encode()

    @classmethod
    def decode(cls, body: bytes) -> UpdatesResult:
        try:
            doc = json.loads(body)
            return cls(int(doc["applied"]), int(doc["ignored"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise WireError(f"bad updates result: {exc!r}") from None


def _lines(body: bytes, first: bytes) -> list[str]:
    if not body.startswith(first) or not body.endswith(b"\n"):
        raise WireError(f"expected a body starting {first!r}, ending with a newline")
    try:
        text = body[len(first) :].decode("ascii")
    except UnicodeDecodeError:
        raise WireError("names must be percent-encoded") from None
    return text.splitlines() if text else []


def _quote(name: str) -> str:
    return quote(name, safe="/")


def _unquote(text: str) -> str:
    try:
        name = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise WireError(f"name {text!r} is not UTF-8") from None
    return _check_name(name, text)


def _check_name(name: str, shown: str) -> str:
    """``/account/container/object``, none of the three empty."""
    parts = name.split("/", 3)
    if len(parts) != 4 or parts[0] or not all(parts[1:]):
        raise WireError(f"bad object name {shown!r}")
    return name


def _timestamp(text: str) -> Timestamp:
    try:
        return Timestamp.parse(text)
    except ValueError:
        raise WireError(f"bad timestamp {text!r}") from None
