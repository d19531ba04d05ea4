"""A container's info: who it is, its PUT/DELETE timestamps, totals and metadata.

Stored as two values per container: the record (``0x01`` then UTF-8 JSON: names, timestamps,
metadata), rewritten only by container PUT/DELETE/POST; and the totals (``u64 object_count |
u64 bytes_used | u64 stats raw | u64 stats offset | u192 stats sum``, 56 bytes), rewritten with
every row change, so an object update never rewrites the metadata.  The earlier formats still
decode: 16 bytes (no stats timestamp) with the stats timestamp and sum at zero, 32 bytes (no
stats sum) with the sum at zero.

The **stats version** ``(stats_timestamp, stats_sum)`` is what the account orders a
container's reports by (accountd/rows.py), both functions of the SET of rows the container
holds, live and deleted, so replicas holding the same rows report the same version:

- ``stats_timestamp``: the newest data timestamp of any row (zero: no row);
- ``stats_sum``: the sum over the rows of ``rows.stats_key(row) = raw·2**65 + offset·2 +
  deleted`` of the row's data register, kept running (``+= key(new) - key(old)`` per change).

A change of a row's data register raises its ``(timestamp, deleted)``, hence the sum, unless
only its size or ETag grew at the same timestamp and deletion state: then the bytes used grow
(or, for a tombstone, nothing counted changes).  So every row change that changes the totals
makes ``(stats_timestamp, stats_sum, object_count, bytes_used)`` strictly greater: a report of
fresher totals always wins in the account, however late or out of order rows arrived.  A
container whose totals predate the sum counts it from zero at its first change after the
upgrade: its reports still grow with each change, but two such replicas may report
different versions for the same rows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from service import db_info_record
from service.db_info_record import NEVER
from service.db_metadata import Metadata, visible_metadata
from service.timestamp import Timestamp

_NAMES = (
    "account",
    "container",
)  # the record's fields before the timestamps (service/db_info_record.py)
_TOTALS_V0 = struct.Struct(">QQ")
_TOTALS_V1 = struct.Struct(">QQQQ")
SUM_BYTES = 24  # a row's key is below 2**115 and rows are fewer than 2**63
_TOTALS_SIZE = _TOTALS_V1.size + SUM_BYTES

# object_count, bytes_used, stats_timestamp, stats_sum
Totals = tuple[int, int, Timestamp, int]
NO_TOTALS: Totals = (0, 0, NEVER, 0)


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    account: str
    container: str
    put_timestamp: Timestamp
    delete_timestamp: Timestamp = NEVER
    status_changed_at: Timestamp = NEVER
    created_at: Timestamp = NEVER  # the first PUT's timestamp here: Swift's X-Timestamp
    object_count: int = 0
    bytes_used: int = 0
    # The stats version (module docstring): the account keeps the report with the greatest
    # one, so a replica that missed writes cannot undo a fresher one's totals, and replicas
    # that hold the same rows report the same version.
    stats_timestamp: Timestamp = NEVER
    stats_sum: int = 0
    # Every key Swift keeps (X-Container-Meta-*, -Read, -Write, -Sync-*, sysmeta), deleted
    # keys included as ("", timestamp); ``visible_metadata`` is what a HEAD shows.
    metadata: Metadata = field(default_factory=dict)

    @property
    def deleted(self) -> bool:
        """Swift's rule: deleted once the DELETE is newer than the PUT and no object is left
        (rows replicated into a deleted container bring it back, so no object is lost)."""
        return self.object_count == 0 and self.delete_timestamp > self.put_timestamp

    @property
    def visible_metadata(self) -> dict[str, str]:
        return visible_metadata(self.metadata)


def encode_record(info: ContainerInfo) -> bytes:
    return db_info_record.encode_record(info, _NAMES)


def decode_record(data: bytes, totals: Totals) -> ContainerInfo:
    return ContainerInfo(
        **db_info_record.decode_record(data, "container", _NAMES),
        object_count=totals[0],
        bytes_used=totals[1],
        stats_timestamp=totals[2],
        stats_sum=totals[3],
    )


def encode_totals(totals: Totals) -> bytes:
    object_count, bytes_used, stats, stats_sum = totals
    head = _TOTALS_V1.pack(object_count, bytes_used, stats.raw, stats.offset)
    return head + stats_sum.to_bytes(SUM_BYTES, "big")


def decode_totals(data: bytes) -> Totals:
    if len(data) == _TOTALS_V0.size:
        object_count, bytes_used = _TOTALS_V0.unpack(data)
        return object_count, bytes_used, NEVER, 0
    if len(data) not in (_TOTALS_V1.size, _TOTALS_SIZE):
        raise ValueError(f"unknown container totals format ({len(data)} bytes)")
    object_count, bytes_used, raw, offset = _TOTALS_V1.unpack_from(data)
    stats_sum = int.from_bytes(data[_TOTALS_V1.size :], "big")
    return object_count, bytes_used, Timestamp(raw, offset), stats_sum
