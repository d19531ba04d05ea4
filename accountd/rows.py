"""The container row of an account listing: what a container server last reported.

A product of registers, each won by the newest timestamp, ties going to the greater value,
so ``merge`` is a max over a total order (commutative, associative, idempotent):

- ``put_timestamp`` and ``delete_timestamp``: each a max register;
- stats register: ``(stats_timestamp, object_count, bytes_used)``, the newest report's.

A row is deleted when its DELETE is newer than its PUT and it holds no object: Swift's rule
(swift/account/backend.py), so a container that object rows brought back after a DELETE
stays listed while it holds them.

Stored format (the row value; the name is the key): ``0x01 | flags | u64 put raw | [u64
offset] | u64 delete raw | [u64 offset] | u64 stats raw | [u64 offset] | u64 object_count |
u64 bytes_used``; flag bits 1, 2, 4: the put, delete, stats timestamp has an offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from service.listing import encode_name
from service.timestamp import Timestamp

VERSION = 1
MAX_COUNT = (1 << 63) - 1
_U64 = struct.Struct(">Q")
_COUNTS = struct.Struct(">QQ")


@dataclass(frozen=True, slots=True)
class ContainerRow:
    name: str
    put_timestamp: Timestamp
    delete_timestamp: Timestamp
    stats_timestamp: Timestamp
    object_count: int
    bytes_used: int

    @property
    def deleted(self) -> bool:
        return self.object_count == 0 and self.delete_timestamp > self.put_timestamp

    @property
    def last_modified(self) -> Timestamp:
        return self.put_timestamp


def check_row(row: ContainerRow) -> ContainerRow:
    """``row`` if every field can be stored, else ValueError (rows come from the network)."""
    if not isinstance(row, ContainerRow):
        raise ValueError(f"expected a ContainerRow, not {type(row).__name__}")
    encode_name(row.name, "container name")
    if "/" in row.name:
        raise ValueError(f"container name {row.name!r} must not hold '/'")
    for ts in (row.put_timestamp, row.delete_timestamp, row.stats_timestamp):
        if not isinstance(ts, Timestamp):
            raise ValueError(f"timestamps must be Timestamps, not {ts!r}")
    for what, count in (("object_count", row.object_count), ("bytes_used", row.bytes_used)):
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
            raise ValueError(f"{what} must be an integer in 0..{MAX_COUNT}, not {count!r}")
    return row


def merge(a: ContainerRow, b: ContainerRow) -> ContainerRow:
    if a.name != b.name:
        raise ValueError(f"cannot merge rows of {a.name!r} and {b.name!r}")
    stats = max(
        (a.stats_timestamp, a.object_count, a.bytes_used),
        (b.stats_timestamp, b.object_count, b.bytes_used),
    )
    return ContainerRow(
        a.name,
        max(a.put_timestamp, b.put_timestamp),
        max(a.delete_timestamp, b.delete_timestamp),
        *stats,
    )


def encode(row: ContainerRow) -> bytes:
    flags = 0
    parts = [b""]  # the header goes first once the flags are known
    for bit, ts in enumerate((row.put_timestamp, row.delete_timestamp, row.stats_timestamp)):
        parts.append(_U64.pack(ts.raw))
        if ts.offset:
            flags |= 1 << bit
            parts.append(_U64.pack(ts.offset))
    parts.append(_COUNTS.pack(row.object_count, row.bytes_used))
    parts[0] = bytes([VERSION, flags])
    return b"".join(parts)


def decode(name: str, data: bytes) -> ContainerRow:
    if data[:1] != bytes([VERSION]):
        raise ValueError(f"unknown container row version {data[:1]!r}")
    flags = data[1]
    at = 2
    stamps = []
    for bit in range(3):
        (raw,) = _U64.unpack_from(data, at)
        offset = 0
        if flags & (1 << bit):
            (offset,) = _U64.unpack_from(data, at + 8)
            at += 8
        stamps.append(Timestamp(raw, offset))
        at += 8
    object_count, bytes_used = _COUNTS.unpack_from(data, at)
    return ContainerRow(name, *stamps, object_count, bytes_used)
