"""A container's info: who it is, its PUT/DELETE timestamps, totals and metadata.

Stored as two values per container: the record (``0x01`` then UTF-8 JSON: names, timestamps,
metadata), rewritten only by container PUT/DELETE/POST; and the totals (``u64 object_count |
u64 bytes_used | u64 stats raw | u64 stats offset``), rewritten with every row change, so an
object update never rewrites the metadata.  Totals of 16 bytes (no stats timestamp: the first
format) still decode, with the stats timestamp at zero.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from service.db_metadata import Metadata, metadata_from_json, metadata_to_json, visible_metadata
from service.timestamp import Timestamp

RECORD_VERSION = 1
NEVER = Timestamp(0)  # a delete_timestamp that never happened (Swift's "0")
_TOTALS_V0 = struct.Struct(">QQ")
_TOTALS = struct.Struct(">QQQQ")

# object_count, bytes_used, stats_timestamp
Totals = tuple[int, int, Timestamp]
NO_TOTALS: Totals = (0, 0, NEVER)


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
    # The newest object write (data timestamp) the totals reflect: the account keeps the
    # report with the newest one, so a replica that missed writes cannot undo a fresher one's
    # totals, and replicas that saw the same rows report the same timestamp.
    stats_timestamp: Timestamp = NEVER
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
    record = {
        "account": info.account,
        "container": info.container,
        "put_timestamp": info.put_timestamp.internal,
        "delete_timestamp": info.delete_timestamp.internal,
        "status_changed_at": info.status_changed_at.internal,
        "created_at": info.created_at.internal,
        "metadata": metadata_to_json(info.metadata),
    }
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return bytes([RECORD_VERSION]) + text.encode("utf-8")


def decode_record(data: bytes, totals: Totals) -> ContainerInfo:
    if data[:1] != bytes([RECORD_VERSION]):
        raise ValueError(f"unknown container record version {data[:1]!r}")
    record = json.loads(data[1:].decode("utf-8"))
    return ContainerInfo(
        account=record["account"],
        container=record["container"],
        put_timestamp=Timestamp.parse(record["put_timestamp"]),
        delete_timestamp=Timestamp.parse(record["delete_timestamp"]),
        status_changed_at=Timestamp.parse(record["status_changed_at"]),
        created_at=Timestamp.parse(record["created_at"]),
        object_count=totals[0],
        bytes_used=totals[1],
        stats_timestamp=totals[2],
        metadata=metadata_from_json(record["metadata"]),
    )


def encode_totals(totals: Totals) -> bytes:
    object_count, bytes_used, stats = totals
    return _TOTALS.pack(object_count, bytes_used, stats.raw, stats.offset)


def decode_totals(data: bytes) -> Totals:
    if len(data) == _TOTALS_V0.size:
        object_count, bytes_used = _TOTALS_V0.unpack(data)
        return object_count, bytes_used, NEVER
    object_count, bytes_used, raw, offset = _TOTALS.unpack(data)
    return object_count, bytes_used, Timestamp(raw, offset)
