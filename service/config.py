"""Typed configuration: one TOML file for the cluster, one frozen dataclass per table.

::

    [cluster]
    hash_path_secret = "change me"
    ring_dir = "/etc/torus"

    [object]
    bind_ip = "10.0.0.5"
    devices = "/srv/node"

Each service loads its own table with ``load_section(path, "object", ObjectServerConfig)``.
Defaults live in the dataclasses, nowhere else.  A key the dataclass does not know, a value of
the wrong type, or a value its ``__post_init__`` refuses stops start-up with a ``ConfigError``
naming ``[table] key``.

The environment is an argument, never read here: with ``env=os.environ`` a variable
``TORUS_<TABLE>_<KEY>`` (``TORUS_OBJECT_BIND_PORT=6300``) overrides the file, so secrets and
per-host ports can come from a unit file or a container.  Its text is parsed as the field's type;
a ``dict[str, str]`` field (a TOML table of strings, such as ``[identity.users]``) takes JSON
text, ``TORUS_IDENTITY_USERS='{"test:tester": "testing .admin"}'``, which replaces the whole
table rather than merging into it.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")
ENV_PREFIX = "TORUS_"
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the table and key."""


@dataclass(frozen=True)
class ClusterConfig:
    hash_path_secret: str  # required: keys placement; every node of a cluster shares it
    ring_dir: Path = Path("/etc/torus")  # Swift's swift_dir: where *.ring files live

    def __post_init__(self) -> None:
        if not self.hash_path_secret:
            raise ValueError("hash_path_secret must not be empty")


@dataclass(frozen=True)
class ServerConfig:
    """What the runner needs from any HTTP server's table."""

    # Loopback by default: backend servers trust their callers, so listening more widely
    # should be an operator's explicit choice.
    bind_ip: str = "127.0.0.1"
    bind_port: int = 8080
    workers: int = 1  # 0 or 1: one process; more: that many processes on one port
    log_level: str = "INFO"
    shutdown_grace_s: float = 30.0  # in-flight requests get this long after SIGTERM

    def __post_init__(self) -> None:
        if not 0 <= self.bind_port <= 65535:
            raise ValueError(f"bind_port must be 0..65535, got {self.bind_port}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {sorted(LOG_LEVELS)}")
        if self.shutdown_grace_s < 0:
            raise ValueError("shutdown_grace_s must be >= 0")


@dataclass(frozen=True)
class StorageServerConfig(ServerConfig):
    """What the object, container and account servers share."""

    devices: Path = Path("/srv/node")
    mount_check: bool = True  # refuse (507) a device that is not a mount point
    conn_timeout_s: float = 0.5  # connect, on every backend call
    node_timeout_s: float = 3.0  # whole call, on every backend call
    max_batch: int = 256  # writes per LMDB transaction (group commit)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.conn_timeout_s <= 0 or self.node_timeout_s <= 0:
            raise ValueError("conn_timeout_s and node_timeout_s must be > 0")
        if self.max_batch < 1:
            raise ValueError("max_batch must be >= 1")


@dataclass(frozen=True)
class ObjectServerConfig(StorageServerConfig):
    bind_port: int = 6200
    inline_max_bytes: int = 65536  # bodies up to this size live in LMDB
    block_size_bytes: int = 1 << 20  # a body carries one checksum per block
    container_update_timeout_s: float = 1.0  # then the update is saved as an async_pending
    client_timeout_s: float = 60.0  # longest wait for the next chunk of a PUT body (then 408)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inline_max_bytes < 0 or self.block_size_bytes < 1:
            raise ValueError("inline_max_bytes must be >= 0 and block_size_bytes >= 1")
        if self.container_update_timeout_s <= 0 or self.client_timeout_s <= 0:
            raise ValueError("container_update_timeout_s and client_timeout_s must be > 0")


@dataclass(frozen=True)
class ContainerServerConfig(StorageServerConfig):
    bind_port: int = 6201


@dataclass(frozen=True)
class AccountServerConfig(StorageServerConfig):
    bind_port: int = 6202


def load_toml(path: str | Path) -> dict[str, Any]:
    """The parsed file; a missing file or bad TOML is a ``ConfigError``."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc


def load_section(
    source: str | Path | Mapping[str, Any],
    section: str,
    cls: type[C],
    *,
    env: Mapping[str, str] | None = None,
) -> C:
    """Build ``cls`` from table ``[section]`` of a TOML file (or an already parsed document).

    A missing table means all defaults.  ``env`` overrides as the module docstring says.
    """
    document = source if isinstance(source, Mapping) else load_toml(source)
    table = document.get(section, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{section}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"[{section}] unknown key {unknown[0]!r}; known keys: {', '.join(sorted(fields))}"
        )
    values = {key: _coerce(section, key, hints[key], value) for key, value in table.items()}
    for key in fields:
        text = (env or {}).get(f"{ENV_PREFIX}{section}_{key}".upper())
        if text is not None:
            values[key] = _from_text(section, key, hints[key], text)
    missing = [k for k, f in fields.items() if k not in values and _required(f)]
    if missing:
        raise ConfigError(f"[{section}] {missing[0]} is required")
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {exc}") from exc


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _coerce(section: str, key: str, kind: Any, value: Any) -> Any:
    """Check a TOML value against the field's type, converting only where nothing is lost."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:  # `timeout_s = 3` is as good as `3.0`
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    elif kind is Path:
        ok = isinstance(value, str) and bool(value)
        value = Path(value) if ok else value
    elif _is_str_table(kind):
        ok = isinstance(value, Mapping)
        if ok:
            for name, item in value.items():
                if not isinstance(item, str):
                    raise ConfigError(f"[{section}] {key}.{name} must be a string, got {item!r}")
            value = dict(value)  # a copy: the config never shares the parsed document's table
    else:
        raise ConfigError(f"[{section}] {key}: unsupported field type {kind!r}")
    if not ok:
        raise ConfigError(f"[{section}] {key} must be {_describe(kind)}, got {value!r}")
    return value


def _from_text(section: str, key: str, kind: Any, text: str) -> Any:
    """An environment variable's text as the field's type."""
    name = f"{ENV_PREFIX}{section}_{key}".upper()
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"{name} ([{section}] {key}) must be true or false, got {text!r}")
        return text.lower() == "true"
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(
                f"{name} ([{section}] {key}) must be {_describe(kind)}, got {text!r}"
            ) from None
    if _is_str_table(kind):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(
                f"{name} ([{section}] {key}) must be a JSON object of strings, got {text!r}"
            )
        return _coerce(section, key, kind, value)
    return _coerce(section, key, kind, text)


def _is_str_table(kind: Any) -> bool:
    """``dict[str, str]``: a TOML table whose values are all strings (TOML keys always are)."""
    return typing.get_origin(kind) is dict and typing.get_args(kind) == (str, str)


def _describe(kind: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if _is_str_table(kind):
        return "a table of strings"
    return names.get(kind, "a non-empty path string")
