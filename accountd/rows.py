"""The container row of an account listing: what a container server last reported.

A product of registers, each won by the newest timestamp, ties going to the greater value,
so ``merge`` is a max over a total order (commutative, associative, idempotent):

- ``put_timestamp`` and ``delete_timestamp``: each a max register;
- stats register: ``(stats_timestamp, stats_sum, object_count, bytes_used)``, the report with
  the greatest stats version ``(stats_timestamp, stats_sum)`` (containerd_/info.py defines
  it: it grows with every change of the container's rows that changes its totals, and
  replicas holding the same rows report the same one), a tie going to the greater totals.

A row is deleted when its DELETE is newer than its PUT and it holds no object: Swift's rule
(swift/account/backend.py), so a container that object rows brought back after a DELETE
stays listed while it holds them.

Stored format (the row value; the name is the key): ``0x02 | flags | u64 put raw | [u64
offset] | u64 delete raw | [u64 offset] | u64 stats raw | [u64 offset] | u64 object_count |
u64 bytes_used | u8 len | stats_sum (len bytes, big-endian)``; flag bits 1, 2, 4: the put,
delete, stats timestamp has an offset.  Version 1 rows (no stats sum) decode with it at zero.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from service.errors import BadInput
from service.listing import encode_name
from service.timestamp import Timestamp

VERSION = 2
MAX_COUNT = (1 << 63) - 1
MAX_STATS_SUM = (1 << 192) - 1  # what a container keeps (containerd_/info.py)
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
    stats_sum: int = 0  # 0 from a sender that keeps none (Swift, or before the stats sum)

    @property
    def deleted(self) -> bool:
        return self.object_count == 0 and self.delete_timestamp > self.put_timestamp

    @property
    def last_modified(self) -> Timestamp:
        return self.put_timestamp


def check_row(row: ContainerRow) -> ContainerRow:
    """``row`` if every field can be stored, else BadInput (rows come from the network)."""
    if not isinstance(row, ContainerRow):
        raise BadInput(f"expected a ContainerRow, not {type(row).__name__}")
    encode_name(row.name, "container name")
    if "/" in row.name:
        raise BadInput(f"container name {row.name!r} must not hold '/'")
    for ts in (row.put_timestamp, row.delete_timestamp, row.stats_timestamp):
        if not isinstance(ts, Timestamp):
            raise BadInput(f"timestamps must be Timestamps, not {ts!r}")
    for what, count, most in (
        ("object_count", row.object_count, MAX_COUNT),
        ("bytes_used", row.bytes_used, MAX_COUNT),
        ("stats_sum", row.stats_sum, MAX_STATS_SUM),
    ):
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= most:
            raise BadInput(f"{what} must be an integer in 0..{most}, not {count!r}")
    return row


def merge(a: ContainerRow, b: ContainerRow) -> ContainerRow:
    if a.name != b.name:
        raise ValueError(f"cannot merge rows of {a.name!r} and {b.name!r}")
    stats_timestamp, stats_sum, object_count, bytes_used = max(
        (a.stats_timestamp, a.stats_sum, a.object_count, a.bytes_used),
        (b.stats_timestamp, b.stats_sum, b.object_count, b.bytes_used),
    )
    return ContainerRow(
        a.name,
        max(a.put_timestamp, b.put_timestamp),
        max(a.delete_timestamp, b.delete_timestamp),
        stats_timestamp,
        object_count,
        bytes_used,
        stats_sum,
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
    stats_sum = row.stats_sum.to_bytes((row.stats_sum.bit_length() + 7) // 8, "big")
    parts += [bytes([len(stats_sum)]), stats_sum]
    parts[0] = bytes([VERSION, flags])
    return b"".join(parts)


def decode(name: str, data: bytes) -> ContainerRow:
    version = data[:1]
    if version not in (b"\x01", b"\x02"):
        raise ValueError(f"unknown container row version {version!r}")
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
    stats_sum = 0
    if version == b"\x02":
        at += _COUNTS.size
        size = data[at]
        stats_sum = int.from_bytes(data[at + 1 : at + 1 + size], "big")
    return ContainerRow(name, *stamps, object_count, bytes_used, stats_sum)
