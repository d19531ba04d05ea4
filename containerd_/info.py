"""A container's info: who it is, its PUT/DELETE timestamps, totals and metadata.

Stored as two values per container: the record (``0x01`` then UTF-8 JSON: names, timestamps,
metadata), rewritten only by container PUT/DELETE/POST; and the totals (``u64 object_count |
u64 bytes_used``), rewritten with every row change, so an object update never rewrites the
metadata.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from service.db_metadata import Metadata, metadata_from_json, metadata_to_json, visible_metadata
from service.timestamp import Timestamp

RECORD_VERSION = 1
NEVER = Timestamp(0)  # a delete_timestamp that never happened (Swift's "0")
_TOTALS = struct.Struct(">QQ")


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


def decode_record(data: bytes, totals: tuple[int, int]) -> ContainerInfo:
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
        metadata=metadata_from_json(record["metadata"]),
    )


def encode_totals(object_count: int, bytes_used: int) -> bytes:
    return _TOTALS.pack(object_count, bytes_used)


def decode_totals(data: bytes) -> tuple[int, int]:
    return _TOTALS.unpack(data)
