"""What account replication sends, and how a replica merges a peer's account record.

The account replicator (replicator/account_replicator.py) talks to an account server's
``REPLICATE`` (accountd/replication_http.py) in JSON:

- an account record: ``info.py``'s record (name, timestamps, metadata), without totals (each
  replica derives its own from its rows), plus ``rows_digest`` in the sync step;
- a container row: ``[name, put_timestamp, delete_timestamp, stats_timestamp, object_count,
  bytes_used, stats_sum]``, timestamps in their internal form, ``stats_sum`` a decimal string
  (it reaches 192 bits).

``rows_digest`` (xxh3-128 over every row, live and deleted, in name order, in the stored
encoding of ``rows.py``) tells two replicas that hold the same rows apart from two that do
not, without sending them: the account LMDB file keeps no change log (its format stays as
it is; others read it), so a replica that differs gets every row (the full copy), Swift's
hash comparison without its sync points.

``merge_record`` is a max per field, as the container's (containerd_/replication.py): put
and delete timestamps and the status change each take the newest, ``created_at`` the oldest
known, metadata merges key by key; commutative, associative and idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import xxhash

from service.db_metadata import check_metadata, merge_metadata
from service.errors import BadInput
from service.timestamp import Timestamp

from . import rows
from .info import NEVER, AccountInfo, decode_record, encode_record
from .rows import ContainerRow, check_row

_LEN = 4  # bytes of each length prefix in the digest's input


def merge_record(local: AccountInfo | None, remote: AccountInfo) -> AccountInfo:
    """The record a replica keeps once it has seen ``remote`` (totals left as ``local``'s)."""
    if local is None:
        return remote
    if local.account != remote.account:
        raise BadInput("cannot merge the records of two accounts")
    created = [t for t in (local.created_at, remote.created_at) if t != NEVER]
    return replace(
        local,
        put_timestamp=max(local.put_timestamp, remote.put_timestamp),
        delete_timestamp=max(local.delete_timestamp, remote.delete_timestamp),
        status_changed_at=max(local.status_changed_at, remote.status_changed_at),
        created_at=min(created) if created else NEVER,
        metadata=merge_metadata(local.metadata, remote.metadata),
    )


def rows_digest(all_rows: Iterable[ContainerRow]) -> str:
    """Hex xxh3-128 of ``all_rows`` (name order, live and deleted), as each replica stores
    them: equal digests, equal rows."""
    digest = xxhash.xxh3_128()
    for row in all_rows:
        name = row.name.encode("utf-8")
        value = rows.encode(row)
        digest.update(len(name).to_bytes(_LEN, "big") + name)
        digest.update(len(value).to_bytes(_LEN, "big") + value)
    return digest.hexdigest()


def record_to_wire(info: AccountInfo) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_record(info)[1:].decode("utf-8"))
    return result


def record_from_wire(data: Any) -> AccountInfo:
    """The record a peer sent (no totals; other keys ignored); BadInput if it is not one."""
    if not isinstance(data, dict):
        raise BadInput("an account record must be a JSON object")
    try:
        text = json.dumps(data, ensure_ascii=False).encode("utf-8")
        info = decode_record(b"\x01" + text, (0, 0, 0))
        return replace(info, metadata=check_metadata(info.metadata))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"bad account record: {exc}") from None


def row_to_wire(row: ContainerRow) -> list[Any]:
    return [
        row.name,
        row.put_timestamp.internal,
        row.delete_timestamp.internal,
        row.stats_timestamp.internal,
        row.object_count,
        row.bytes_used,
        str(row.stats_sum),
    ]


def row_from_wire(data: Any) -> ContainerRow:
    """The row a peer sent, checked as any row from the network is; BadInput if bad."""
    if not isinstance(data, list) or len(data) != 7:
        raise BadInput(f"a container row must be a list of 7 fields, not {data!r}")
    name, put_ts, delete_ts, stats_ts, object_count, bytes_used, stats_sum = data
    try:
        stamps = [Timestamp.parse(t) for t in (put_ts, delete_ts, stats_ts)]
        if not isinstance(stats_sum, str) or not stats_sum.isdigit():
            raise ValueError(f"stats_sum {stats_sum!r} is not a decimal string")
        total = int(stats_sum)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"bad container row: {exc}") from None
    return check_row(ContainerRow(name, *stamps, object_count, bytes_used, total))
