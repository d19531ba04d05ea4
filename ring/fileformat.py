"""Framing shared by the ring and builder file formats.

Both files are ``magic (8 bytes) | version (u16, big-endian) | payload``.
What the payload holds is up to each format version; version 1 of both
formats uses the same recipe, kept here so it is written once:

    payload = zlib(body, level 6)
    body    = header length (u32, big-endian) | header JSON (UTF-8) | sections

where the header is canonical JSON (sorted keys, no spaces) and the sections
are raw arrays whose lengths the header gives.  Assignment rows are stored
as little-endian uint32 whatever the host's byte order.

Decoding never trusts the file: every fault becomes a ``RingFormatError``
that names the file kind and what is wrong, so an operator sees "ring file:
truncated" rather than a ``struct.error``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import struct
import sys
import tempfile
import zlib
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from ring.device import Device
from ring.errors import RingFormatError
from ring.state import DEV_ID_TYPECODE, NONE_DEV_ID

MAGIC_BYTES = 8
_VERSION = struct.Struct(">H")
_HEADER_LENGTH = struct.Struct(">I")
FRAME_PREFIX_BYTES = MAGIC_BYTES + _VERSION.size
# Fixed so the same data always gives the same bytes (for a given zlib build).  Level 6,
# not 9: on a part_power 18, 3-replica ring with random assignments 9 took 3 s to save
# 11% (1.16 vs 1.30 MB), and the builder file is saved after every admin command.
ZLIB_LEVEL = 6
DEV_ID_BYTES = 4
_BIG_ENDIAN_HOST = sys.byteorder == "big"


def frame(magic: bytes, version: int, payload: bytes) -> bytes:
    """``magic | version | payload``: the outermost layer of both formats."""
    assert len(magic) == MAGIC_BYTES, magic
    return magic + _VERSION.pack(version) + payload


def unframe(data: bytes, magic: bytes, kind: str) -> tuple[int, memoryview]:
    """Check the magic and return ``(format version, payload)``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{kind}: expected bytes, not {type(data).__name__}")
    view = memoryview(data)
    if len(view) < FRAME_PREFIX_BYTES:
        raise RingFormatError(f"{kind}: truncated ({len(view)} bytes, no header)")
    found = bytes(view[:MAGIC_BYTES])
    if found != magic:
        raise RingFormatError(f"{kind}: bad magic {found!r}, expected {magic!r}")
    (version,) = _VERSION.unpack_from(view, MAGIC_BYTES)
    return version, view[FRAME_PREFIX_BYTES:]


def deflate(body: bytes) -> bytes:
    return zlib.compress(body, ZLIB_LEVEL)


def inflate(payload: bytes | memoryview, kind: str) -> bytes:
    """Decompress exactly one zlib stream; a short or padded stream is an error."""
    decompressor = zlib.decompressobj()
    try:
        body = decompressor.decompress(payload)
    except zlib.error as exc:
        raise RingFormatError(f"{kind}: corrupt compressed body ({exc})") from None
    if not decompressor.eof:
        raise RingFormatError(f"{kind}: truncated compressed body")
    if decompressor.unused_data:
        raise RingFormatError(
            f"{kind}: {len(decompressor.unused_data)} unexpected bytes after the body"
        )
    return body


def canonical_json(header: dict[str, Any]) -> bytes:
    """The one byte form of a header: sorted keys, fixed separators, no NaN."""
    return json.dumps(
        header, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def pack_body(header: dict[str, Any], sections: Iterable[bytes]) -> bytes:
    """``header length | header JSON | sections...`` (see the module docstring)."""
    header_bytes = canonical_json(header)
    return b"".join([_HEADER_LENGTH.pack(len(header_bytes)), header_bytes, *sections])


def unpack_body(body: bytes, kind: str) -> tuple[dict[str, Any], memoryview]:
    """Split a body into its parsed header and the raw sections after it."""
    view = memoryview(body)
    if len(view) < _HEADER_LENGTH.size:
        raise RingFormatError(f"{kind}: truncated body (no header length)")
    (length,) = _HEADER_LENGTH.unpack_from(view)
    end = _HEADER_LENGTH.size + length
    if len(view) < end:
        raise RingFormatError(f"{kind}: truncated header ({len(view) - 4} of {length} bytes)")
    try:
        header = json.loads(bytes(view[_HEADER_LENGTH.size : end]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RingFormatError(f"{kind}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise RingFormatError(f"{kind}: header is {type(header).__name__}, not an object")
    return header, view[end:]


def pack_rows(rows: Iterable[array]) -> list[bytes]:
    """Each row as little-endian uint32 bytes."""
    packed = []
    for row in rows:
        if row.typecode != DEV_ID_TYPECODE:
            raise ValueError(f"rows must be array({DEV_ID_TYPECODE!r}), not {row.typecode!r}")
        if _BIG_ENDIAN_HOST:
            row = array(DEV_ID_TYPECODE, row)
            row.byteswap()
        packed.append(row.tobytes())
    return packed


def unpack_rows(raw: memoryview, lengths: Sequence[int], kind: str) -> tuple[list[array], int]:
    """Read rows of the given lengths from the front of ``raw``.

    Returns the rows and the number of bytes they used, so a format can keep
    further sections after them.
    """
    needed = DEV_ID_BYTES * sum(lengths)
    if len(raw) < needed:
        raise RingFormatError(f"{kind}: truncated rows ({len(raw)} of {needed} bytes)")
    rows = []
    offset = 0
    for length in lengths:
        row = array(DEV_ID_TYPECODE)
        row.frombytes(raw[offset : offset + DEV_ID_BYTES * length])
        if _BIG_ENDIAN_HOST:
            row.byteswap()
        rows.append(row)
        offset += DEV_ID_BYTES * length
    return rows, needed


def check_keys(header: dict[str, Any], expected: frozenset[str], kind: str) -> None:
    """Exactly the expected keys: a new field means a new format version."""
    if header.keys() != expected:
        missing = sorted(expected - header.keys())
        unknown = sorted(header.keys() - expected)
        raise RingFormatError(f"{kind}: header fields missing {missing}, unknown {unknown}")


def get_int(
    header: dict[str, Any], key: str, kind: str, error: type[Exception] = RingFormatError
) -> int:
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise error(f"{kind}: {key} must be a non-negative integer, not {value!r}")
    return value


def get_float(
    header: dict[str, Any], key: str, kind: str, error: type[Exception] = RingFormatError
) -> float:
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise error(f"{kind}: {key} must be a finite number >= 0, not {value!r}")
    return float(value)


def get_str(
    header: dict[str, Any], key: str, kind: str, error: type[Exception] = RingFormatError
) -> str:
    value = header[key]
    if not isinstance(value, str):
        raise error(f"{kind}: {key} must be a string, not {value!r}")
    return value


def get_bool(
    header: dict[str, Any], key: str, kind: str, error: type[Exception] = RingFormatError
) -> bool:
    value = header[key]
    if not isinstance(value, bool):
        raise error(f"{kind}: {key} must be true or false, not {value!r}")
    return value


def get_int_list(
    header: dict[str, Any], key: str, kind: str, error: type[Exception] = RingFormatError
) -> list[int]:
    value = header[key]
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
    ):
        raise error(f"{kind}: {key} must be a list of non-negative integers")
    return value


def encode_devices(devices: Iterable[Device | None]) -> list[dict[str, Any] | None]:
    return [None if dev is None else dev.to_dict() for dev in devices]


def decode_devices(value: Any, kind: str) -> list[Device | None]:
    """Devices from their header form (the caller checks that ids match indexes)."""
    if not isinstance(value, list):
        raise RingFormatError(f"{kind}: devices must be a list")
    devices: list[Device | None] = []
    for index, item in enumerate(value):
        if item is None:
            devices.append(None)
            continue
        if not isinstance(item, dict):
            raise RingFormatError(f"{kind}: device {index} is not an object")
        try:
            dev = Device.from_dict(item)
        except (TypeError, ValueError) as exc:
            raise RingFormatError(f"{kind}: device {index} is invalid: {exc}") from None
        devices.append(dev)
    return devices


def check_row_dev_ids(
    rows: Iterable[array],
    devices: Sequence[Device | None],
    error: type[Exception],
    kind: str,
    allow_none: bool = False,
) -> None:
    """Every id in the rows names a real device (``NONE_DEV_ID`` only if allowed)."""
    used: set[int] = set()
    for row in rows:
        used.update(row)
    if allow_none:
        used.discard(NONE_DEV_ID)
    bad = sorted(dev_id for dev_id in used if dev_id >= len(devices) or devices[dev_id] is None)
    if bad:
        raise error(f"{kind}: partitions assigned to unknown device ids {bad[:10]}")


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or new file, never half.

    Temp file in the same directory (so the rename stays on one filesystem),
    fsync it, rename over the target, then fsync the directory so the rename
    itself survives a crash.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        # mkstemp makes the file 0600; servers under another user must read rings.
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _mode_for(path: str) -> int:
    """Keep the mode of the file being replaced; a new file gets rw-r--r--."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o644


def read_file(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        return f.read()
