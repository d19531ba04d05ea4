"""An account's info: its PUT/DELETE timestamps, totals over its live containers, metadata.

Stored as two values per account: the record (``0x01`` then UTF-8 JSON: name, timestamps,
metadata), rewritten only by account PUT/DELETE/POST; and the totals (``u64 container_count
| u64 object_count | u64 bytes_used``), rewritten with every container row change.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from service import db_info_record
from service.db_info_record import NEVER
from service.db_metadata import Metadata, visible_metadata
from service.timestamp import Timestamp

_NAMES = ("account",)  # the record's fields before the timestamps (service/db_info_record.py)
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
    return db_info_record.encode_record(info, _NAMES)


def decode_record(data: bytes, totals: Totals) -> AccountInfo:
    return AccountInfo(
        **db_info_record.decode_record(data, "account", _NAMES),
        container_count=totals[0],
        object_count=totals[1],
        bytes_used=totals[2],
    )


def encode_totals(totals: Totals) -> bytes:
    return _TOTALS.pack(*totals)


def decode_totals(data: bytes) -> Totals:
    return _TOTALS.unpack(data)
