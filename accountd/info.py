"""An account's info: its PUT/DELETE timestamps, totals over its live containers, metadata.

Stored as two values per account: the record (``0x01`` then UTF-8 JSON: name, timestamps,
metadata), rewritten only by account PUT/DELETE/POST; and the totals (``u64 container_count
| u64 object_count | u64 bytes_used``), rewritten with every container row change.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from service.db_metadata import Metadata, metadata_from_json, metadata_to_json, visible_metadata
from service.timestamp import Timestamp

RECORD_VERSION = 1
NEVER = Timestamp(0)  # a delete_timestamp that never happened (Swift's "0")
_TOTALS = struct.Struct(">QQQ")

Totals = tuple[int, int, int]  # container_count, object_count, bytes_used


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account: str
    put_timestamp: Timestamp
    delete_timestamp: Timestamp = NEVER
    status_changed_at: Timestamp = NEVER
    created_at: Timestamp = NEVER  # the first PUT's timestamp here: Swift's X-Timestamp
    container_count: int = 0
    object_count: int = 0
    bytes_used: int = 0
    metadata: Metadata = field(default_factory=dict)  # deleted keys too, as ("", timestamp)

    @property
    def deleted(self) -> bool:
        """Deleted by a DELETE newer than its PUT, containers or not: the reaper empties it."""
        return self.delete_timestamp > self.put_timestamp

    @property
    def visible_metadata(self) -> dict[str, str]:
        return visible_metadata(self.metadata)


def encode_record(info: AccountInfo) -> bytes:
    record = {
        "account": info.account,
        "put_timestamp": info.put_timestamp.internal,
        "delete_timestamp": info.delete_timestamp.internal,
        "status_changed_at": info.status_changed_at.internal,
        "created_at": info.created_at.internal,
        "metadata": metadata_to_json(info.metadata),
    }
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return bytes([RECORD_VERSION]) + text.encode("utf-8")


def decode_record(data: bytes, totals: Totals) -> AccountInfo:
    if data[:1] != bytes([RECORD_VERSION]):
        raise ValueError(f"unknown account record version {data[:1]!r}")
    record = json.loads(data[1:].decode("utf-8"))
    return AccountInfo(
        account=record["account"],
        put_timestamp=Timestamp.parse(record["put_timestamp"]),
        delete_timestamp=Timestamp.parse(record["delete_timestamp"]),
        status_changed_at=Timestamp.parse(record["status_changed_at"]),
        created_at=Timestamp.parse(record["created_at"]),
        container_count=totals[0],
        object_count=totals[1],
        bytes_used=totals[2],
        metadata=metadata_from_json(record["metadata"]),
    )


def encode_totals(totals: Totals) -> bytes:
    return _TOTALS.pack(*totals)


def decode_totals(data: bytes) -> Totals:
    return _TOTALS.unpack(data)
