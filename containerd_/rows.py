"""The object row of a container listing: a product of registers that merges by timestamp.

- data register: ``(timestamp, deleted, size, etag)``, set by an object PUT or DELETE;
- content-type register: ``(ctype_timestamp, content_type)``, set by a PUT or a POST that
  changes the content type (Swift's fast-POST);
- metadata register: ``meta_timestamp``, the newest metadata change (a listing's
  last_modified, as Swift shows it).

Each register is won by its newest timestamp; a tie goes to the greater value, so ``merge``
is a max over a total order: commutative, associative and idempotent, and replaying updates
twice or out of order converges.  A DELETE says nothing about content type or metadata, so a
tombstone's other registers are at their least value.

Stored format (the row value; the name is the key): ``0x01 | flags | u64 raw | [u64 offset] |
u64 size | [ctype u64 raw | [u64 offset]] | [meta u64 raw | [u64 offset]] | u16 len | etag |
u16 len | content type``; flags: 1 deleted, 2 data offset, 4 ctype timestamp present (else
the data timestamp), 8 its offset, 16 meta timestamp present (else the data timestamp), 32
its offset.  Offsets are absent when zero: almost always.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from service.errors import BadInput
from service.listing import encode_name
from service.timestamp import Timestamp

VERSION = 1
MAX_SIZE = (1 << 63) - 1
MAX_TEXT_BYTES = (1 << 16) - 1
ZERO = Timestamp(0)
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_DELETED, _DATA_OFFSET, _CTYPE, _CTYPE_OFFSET, _META, _META_OFFSET = (1 << i for i in range(6))


@dataclass(frozen=True, slots=True)
class ObjectRow:
    name: str
    timestamp: Timestamp
    size: int
    etag: str
    deleted: bool
    ctype_timestamp: Timestamp
    content_type: str
    meta_timestamp: Timestamp

    @classmethod
    def put(
        cls,
        name: str,
        timestamp: Timestamp,
        size: int,
        content_type: str,
        etag: str,
        ctype_timestamp: Timestamp | None = None,
        meta_timestamp: Timestamp | None = None,
    ) -> ObjectRow:
        """The row an object PUT (or a POST's update, with newer ctype/meta) reports."""
        ctype_timestamp = timestamp if ctype_timestamp is None else ctype_timestamp
        # As Swift: a newer content type is a metadata change too.
        meta_timestamp = ctype_timestamp if meta_timestamp is None else meta_timestamp
        return cls(
            name, timestamp, size, etag, False, ctype_timestamp, content_type, meta_timestamp
        )

    @classmethod
    def tombstone(cls, name: str, timestamp: Timestamp) -> ObjectRow:
        return cls(name, timestamp, 0, "", True, ZERO, "", ZERO)

    @property
    def last_modified(self) -> Timestamp:
        return max(self.timestamp, self.ctype_timestamp, self.meta_timestamp)


def check_row(row: ObjectRow) -> ObjectRow:
    """``row`` if every field can be stored, else BadInput (rows come from the network)."""
    if not isinstance(row, ObjectRow):
        raise BadInput(f"expected an ObjectRow, not {type(row).__name__}")
    encode_name(row.name, "object name")
    for ts in (row.timestamp, row.ctype_timestamp, row.meta_timestamp):
        if not isinstance(ts, Timestamp):
            raise BadInput(f"timestamps must be Timestamps, not {ts!r}")
    if isinstance(row.size, bool) or not isinstance(row.size, int) or not 0 <= row.size <= MAX_SIZE:
        raise BadInput(f"size must be an integer in 0..{MAX_SIZE}, not {row.size!r}")
    if not isinstance(row.deleted, bool):
        raise BadInput(f"deleted must be a bool, not {row.deleted!r}")
    for what, text in (("etag", row.etag), ("content type", row.content_type)):
        if not isinstance(text, str):
            raise BadInput(f"{what} must be a str, not {text!r}")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise BadInput(f"{what} {text!r} is not valid UTF-8") from None
        if size > MAX_TEXT_BYTES:
            raise BadInput(f"{what} is {size} bytes long; at most {MAX_TEXT_BYTES}")
    return row


def merge(a: ObjectRow, b: ObjectRow) -> ObjectRow:
    if a.name != b.name:
        raise ValueError(f"cannot merge rows of {a.name!r} and {b.name!r}")
    data = max((a.timestamp, a.deleted, a.size, a.etag), (b.timestamp, b.deleted, b.size, b.etag))
    ctype = max((a.ctype_timestamp, a.content_type), (b.ctype_timestamp, b.content_type))
    meta = max(a.meta_timestamp, b.meta_timestamp)
    timestamp, deleted, size, etag = data
    return ObjectRow(a.name, timestamp, size, etag, deleted, ctype[0], ctype[1], meta)


def stats_key(row: ObjectRow) -> int:
    """The row's data register as one integer ordered as ``(timestamp, deleted)``: a
    container's stats sum is the sum of its rows' keys (containerd_/info.py)."""
    return (row.timestamp.raw << 65) | (row.timestamp.offset << 1) | row.deleted


def encode(row: ObjectRow) -> bytes:
    flags = _DELETED if row.deleted else 0
    parts = [b""]  # the header goes first once the flags are known
    flags |= _pack_timestamp(parts, row.timestamp, 0, _DATA_OFFSET)
    parts.append(_U64.pack(row.size))
    if row.ctype_timestamp != row.timestamp:
        flags |= _pack_timestamp(parts, row.ctype_timestamp, _CTYPE, _CTYPE_OFFSET)
    if row.meta_timestamp != row.timestamp:
        flags |= _pack_timestamp(parts, row.meta_timestamp, _META, _META_OFFSET)
    for text in (row.etag, row.content_type):
        raw = text.encode("utf-8")
        parts += [_U16.pack(len(raw)), raw]
    parts[0] = bytes([VERSION, flags])
    return b"".join(parts)


def decode(name: str, data: bytes) -> ObjectRow:
    if data[:1] != bytes([VERSION]):
        raise ValueError(f"unknown object row version {data[:1]!r}")
    flags = data[1]
    timestamp, at = _unpack_timestamp(data, 2, flags & _DATA_OFFSET)
    (size,) = _U64.unpack_from(data, at)
    at += 8
    ctype_ts = meta_ts = timestamp
    if flags & _CTYPE:
        ctype_ts, at = _unpack_timestamp(data, at, flags & _CTYPE_OFFSET)
    if flags & _META:
        meta_ts, at = _unpack_timestamp(data, at, flags & _META_OFFSET)
    etag, at = _unpack_text(data, at)
    content_type, _ = _unpack_text(data, at)
    return ObjectRow(
        name, timestamp, size, etag, bool(flags & _DELETED), ctype_ts, content_type, meta_ts
    )


def _pack_timestamp(parts: list[bytes], ts: Timestamp, present: int, offset_flag: int) -> int:
    parts.append(_U64.pack(ts.raw))
    if not ts.offset:
        return present
    parts.append(_U64.pack(ts.offset))
    return present | offset_flag


def _unpack_timestamp(data: bytes, at: int, has_offset: int) -> tuple[Timestamp, int]:
    (raw,) = _U64.unpack_from(data, at)
    if not has_offset:
        return Timestamp(raw), at + 8
    (offset,) = _U64.unpack_from(data, at + 8)
    return Timestamp(raw, offset), at + 16


def _unpack_text(data: bytes, at: int) -> tuple[str, int]:
    (size,) = _U16.unpack_from(data, at)
    return data[at + 2 : at + 2 + size].decode("utf-8"), at + 2 + size
