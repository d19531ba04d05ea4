"""What an account broker does, written once over a storage view both brokers provide.

``AccountBroker`` (LMDB) and ``MemoryAccountBroker`` differ only in ``_read``/``_write`` and
the ``AccountStore`` they hand in.  Semantics are Swift's account server and broker:

- PUT of a new account creates it (True: 201); of a live one bumps put_timestamp (False:
  202); of a deleted one raises ``AccountDeleted`` (403 "Recently deleted") until the
  replicator reclaims it.
- DELETE of a live account records the delete timestamp and clears the metadata older than
  it, whether or not it still holds containers (the reaper empties it afterwards).  Never
  created or already deleted: ``AccountNotFound``; older than its PUT: ``AccountConflict``.
- A container server's report (``put_container``) needs a live account, else
  ``AccountNotFound`` (the proxy auto-creates accounts; the container updater retries).
  ``override_deleted`` is Swift's ``X-Account-Override-Deleted: yes``, which the reaper
  sends to record the containers it deletes in a deleted account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from ring.placement import hash_path
from service.db_broker import (
    DbBrokerBase,
    DbStore,
    check_db_name,
    check_timestamp,
    merge_each,
    merged_metadata,
)
from service.db_metadata import Metadata, check_metadata, cleared_metadata
from service.listing import MAX_LIMIT, ListingQuery, RowView
from service.timestamp import Timestamp

from .errors import AccountConflict, AccountDeleted, AccountNotFound
from .info import AccountInfo, Totals
from .listing_views import ROWS
from .replication_broker import AccountReplicaMixin
from .rows import ContainerRow, check_row, merge


class AccountStore(DbStore[AccountInfo, ContainerRow, Totals], Protocol):
    """One device's account tables, inside one transaction."""

    # replication (accountd/replication_broker.py): the accounts of a device
    def account_ids(self, after: bytes, limit: int) -> list[bytes]: ...


class AccountBrokerBase(DbBrokerBase[AccountStore], AccountReplicaMixin):
    """The account semantics over service/db_broker.py's plumbing; the LMDB broker and its
    memory twin add ``_read``/``_write`` (service/db_broker_lmdb.py, db_broker_memory.py)."""

    async def create(
        self, device: str, account: str, timestamp: Timestamp, metadata: Metadata | None = None
    ) -> bool:
        aid = self._aid(account)
        check_timestamp(timestamp)
        updates = check_metadata(metadata)

        def write(store: AccountStore) -> bool:
            info = store.get_info(aid)
            if info is None:
                info = AccountInfo(
                    account, timestamp, status_changed_at=timestamp, created_at=timestamp
                )
                store.put_info(aid, replace(info, metadata=merged_metadata({}, updates)))
                store.put_totals(aid, (0, 0, 0))
                return True
            if info.deleted:
                raise AccountDeleted(account)
            put_timestamp = max(info.put_timestamp, timestamp)
            metadata = merged_metadata(info.metadata, updates)
            store.put_info(aid, replace(info, put_timestamp=put_timestamp, metadata=metadata))
            return False

        return await self._write(device, write)

    async def delete(self, device: str, account: str, timestamp: Timestamp) -> None:
        aid = self._aid(account)
        check_timestamp(timestamp)

        def write(store: AccountStore) -> bool:
            info = store.get_info(aid)
            if info is None or info.deleted:
                raise AccountNotFound(account)
            new = replace(
                info,
                delete_timestamp=max(info.delete_timestamp, timestamp),
                metadata=cleared_metadata(info.metadata, timestamp),
            )
            if new.deleted:
                new = replace(new, status_changed_at=max(new.status_changed_at, timestamp))
            store.put_info(aid, new)
            return new.deleted

        if not await self._write(device, write):
            raise AccountConflict(f"/{account} was put after {timestamp}")

    def info(self, device: str, account: str, *, include_deleted: bool = False) -> AccountInfo:
        aid = self._aid(account)
        return self._info(device, aid, lambda: AccountNotFound(account), include_deleted)

    async def update_metadata(self, device: str, account: str, metadata: Metadata) -> None:
        aid = self._aid(account)
        await self._update_metadata(device, aid, metadata, lambda: AccountNotFound(account))

    async def put_container(
        self,
        device: str,
        account: str,
        container: str,
        put_timestamp: Timestamp,
        delete_timestamp: Timestamp,
        stats_timestamp: Timestamp,
        object_count: int,
        bytes_used: int,
        *,
        stats_sum: int = 0,
        override_deleted: bool = False,
    ) -> None:
        """Merge a container server's report of ``container`` into the account; its stats
        version is ``(stats_timestamp, stats_sum)`` (accountd/rows.py)."""
        row = ContainerRow(
            container,
            put_timestamp,
            delete_timestamp,
            stats_timestamp,
            object_count,
            bytes_used,
            stats_sum,
        )
        await self.merge_rows(device, account, [row], override_deleted=override_deleted)

    async def merge_rows(
        self,
        device: str,
        account: str,
        rows: Iterable[ContainerRow],
        *,
        override_deleted: bool = False,
    ) -> None:
        """Merge rows (from container reports or a replicator) in one transaction."""
        aid = self._aid(account)
        checked = [check_row(row) for row in rows]

        def write(store: AccountStore) -> None:
            info = store.get_info(aid)
            if info is None or (info.deleted and not override_deleted):
                raise AccountNotFound(account)
            _merge_rows(store, aid, checked)

        await self._write(device, write)

    def list_containers(
        self,
        device: str,
        account: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = MAX_LIMIT,
        reverse: bool = False,
        view: RowView[ContainerRow, Any] = ROWS,
    ) -> list[Any]:
        """A page of the listing, each container read through ``view`` (listing_views.py):
        ``ContainerRow`` by default; ``Subdir`` for a collapsed run of names."""
        aid = self._aid(account)
        query = ListingQuery.build(
            prefix=prefix,
            delimiter=delimiter,
            marker=marker,
            end_marker=end_marker,
            limit=limit,
            reverse=reverse,
        )

        return self._list(device, aid, query, view, lambda: AccountNotFound(account))

    def _merge_into(self, store: AccountStore, aid: bytes, rows: list[ContainerRow]) -> None:
        _merge_rows(store, aid, [check_row(row) for row in rows])

    def _aid(self, account: str) -> bytes:
        check_db_name(account, "account")
        return hash_path(self._secret, account)


def _merge_rows(store: AccountStore, aid: bytes, rows: list[ContainerRow]) -> None:
    """Merge each row into the stored one; totals follow the change of the winning row."""
    totals = store.get_totals(aid) or (0, 0, 0)
    container_count, object_count, bytes_used = totals
    for old, new in merge_each(store, aid, rows, merge):
        for counted, sign in ((old, -1), (new, 1)):
            if counted is not None and not counted.deleted:
                container_count += sign
                object_count += sign * counted.object_count
                bytes_used += sign * counted.bytes_used
    if (container_count, object_count, bytes_used) != totals:
        store.put_totals(aid, (container_count, object_count, bytes_used))
