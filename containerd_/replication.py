"""What container replication sends, and how a replica merges a peer's container record.

The container replicator (replicator/container_replicator.py) talks to a container server's
``REPLICATE`` (containerd_/replication_http.py) in JSON:

- a container record: ``info.py``'s record (names, timestamps, metadata), without totals:
  totals are a function of the rows and each replica keeps its own;
- an object row: ``[name, timestamp, size, etag, deleted, ctype_timestamp, content_type,
  meta_timestamp]``, timestamps in their internal form (``Timestamp.internal``).

``merge_record`` is a max per field, like ``rows.merge``: put and delete timestamps and the
status change each take the newest, ``created_at`` the oldest known, metadata merges key by
key (``service.db_metadata``).  So it is commutative, associative and idempotent, and
replaying a record twice or in any order converges (tests/contract/test_container_broker.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from service.db_metadata import check_metadata, merge_metadata
from service.errors import BadInput
from service.timestamp import Timestamp

from .info import NEVER, NO_TOTALS, ContainerInfo, decode_record, encode_record
from .rows import ObjectRow, check_row

ROWS_PER_PAGE = 1000  # rows per merge request: ~150 KiB of JSON at typical row sizes


def merge_record(local: ContainerInfo | None, remote: ContainerInfo) -> ContainerInfo:
    """The record a replica keeps once it has seen ``remote`` (totals left as ``local``'s)."""
    if local is None:
        return remote
    if (local.account, local.container) != (remote.account, remote.container):
        raise BadInput("cannot merge the records of two containers")
    created = [t for t in (local.created_at, remote.created_at) if t != NEVER]
    return replace(
        local,
        put_timestamp=max(local.put_timestamp, remote.put_timestamp),
        delete_timestamp=max(local.delete_timestamp, remote.delete_timestamp),
        status_changed_at=max(local.status_changed_at, remote.status_changed_at),
        created_at=min(created) if created else NEVER,
        metadata=merge_metadata(local.metadata, remote.metadata),
    )


def record_to_wire(info: ContainerInfo) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_record(info)[1:].decode("utf-8"))
    return result


def record_from_wire(data: Any) -> ContainerInfo:
    """The record a peer sent (no totals); BadInput if it is not one."""
    if not isinstance(data, dict):
        raise BadInput("a container record must be a JSON object")
    try:
        text = json.dumps(data, ensure_ascii=False).encode("utf-8")
        info = decode_record(b"\x01" + text, NO_TOTALS)
        return replace(info, metadata=check_metadata(info.metadata))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"bad container record: {exc}") from None


def row_to_wire(row: ObjectRow) -> list[Any]:
    return [
        row.name,
        row.timestamp.internal,
        row.size,
        row.etag,
        row.deleted,
        row.ctype_timestamp.internal,
        row.content_type,
        row.meta_timestamp.internal,
    ]


def row_from_wire(data: Any) -> ObjectRow:
    """The row a peer sent, checked as any row from the network is; BadInput if bad."""
    if not isinstance(data, list) or len(data) != 8:
        raise BadInput(f"an object row must be a list of 8 fields, not {data!r}")
    name, timestamp, size, etag, deleted, ctype_ts, ctype, meta_ts = data
    try:
        stamps = [Timestamp.parse(t) for t in (timestamp, ctype_ts, meta_ts)]
    except (TypeError, ValueError) as exc:
        raise BadInput(f"bad row timestamp: {exc}") from None
    row = ObjectRow(name, stamps[0], size, etag, deleted, stamps[1], ctype, stamps[2])
    return check_row(row)
