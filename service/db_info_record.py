"""The info record the account and container servers store per database (accountd/info.py,
containerd_/info.py): ``0x01`` then UTF-8 JSON of its names, then its timestamps and
metadata, in that order (the bytes on disk depend on it).  The totals are stored apart, in
each server's own format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from service.db_metadata import metadata_from_json, metadata_to_json
from service.timestamp import Timestamp

RECORD_VERSION = 1
NEVER = Timestamp(0)  # a delete_timestamp that never happened (Swift's "0")
_TIMESTAMPS = ("put_timestamp", "delete_timestamp", "status_changed_at", "created_at")


def encode_record(info: Any, names: Sequence[str]) -> bytes:
    """``info``'s record: the fields ``names`` (strings) first, then the timestamps and
    metadata every info has."""
    record: dict[str, Any] = {name: getattr(info, name) for name in names}
    record.update((field, getattr(info, field).internal) for field in _TIMESTAMPS)
    record["metadata"] = metadata_to_json(info.metadata)
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return bytes([RECORD_VERSION]) + text.encode("utf-8")


def decode_record(data: bytes, what: str, names: Sequence[str]) -> dict[str, Any]:
    """The fields of a record ``encode_record`` wrote, as keyword arguments of the info;
    ValueError for another version (``what``: "account", "container")."""
    if data[:1] != bytes([RECORD_VERSION]):
        raise ValueError(f"unknown {what} record version {data[:1]!r}")
    record = json.loads(data[1:].decode("utf-8"))
    fields: dict[str, Any] = {name: record[name] for name in names}
    fields.update((field, Timestamp.parse(record[field])) for field in _TIMESTAMPS)
    fields["metadata"] = metadata_from_json(record["metadata"])
    return fields
