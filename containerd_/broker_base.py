"""What a container broker does, written once over a storage view both brokers provide.

``ContainerBroker`` (LMDB) and ``MemoryContainerBroker`` differ only in ``_read``/``_write``
and the ``ContainerStore`` they hand in, so the two cannot disagree on semantics; the
contract suite checks the stores.  Semantics are Swift's container server and broker:

- PUT of a new container creates it (True: 201); of a live one, bumps put_timestamp (False:
  202); of a deleted one, re-creates it if newer than the DELETE (True), else stays deleted
  and raises ``ContainerConflict`` (409).
- DELETE: ``ContainerNotFound`` if never created, ``ContainerNotEmpty`` if it holds objects;
  else records the delete timestamp and clears the metadata older than it.  A DELETE older
  than the PUT leaves the container live (``ContainerConflict``); one of an already deleted
  container is recorded and answered ``ContainerNotFound``, as Swift does.
- Object updates (PUT/DELETE rows) need the container to have been created, deleted or not:
  Swift accepts rows into a deleted container's database, and a row that lands there makes
  the container live again (its object count is no longer zero), so an object PUT racing a
  container DELETE is never lost from listings.  Never created: ``ContainerNotFound``, and
  the object server keeps an async_pending.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from ring.placement import hash_path
from service.async_pending import AsyncPending
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

from .errors import ContainerConflict, ContainerNotEmpty, ContainerNotFound
from .info import NO_TOTALS, ContainerInfo, Totals
from .listing_views import ROWS
from .reclaim import ContainerReclaimMixin
from .replication_broker import ChangeView, ContainerReplicaMixin
from .rows import ObjectRow, check_row, merge, stats_key


class ContainerStore(DbStore[ContainerInfo, ObjectRow, Totals], Protocol):
    """One device's container tables, inside one transaction."""

    # replication (containerd_/replication_broker.py): the change log, and whole containers
    changes: ChangeView

    def container_ids(self, after: bytes, limit: int) -> list[bytes]: ...

    # reclaim (containerd_/reclaim.py): old tombstones, by name
    def tombstones_after(self, cid: bytes, start: bytes, limit: int) -> list[ObjectRow]: ...
    def delete_tombstone(self, cid: bytes, name: bytes) -> None: ...


class NotedRows:
    """What both container stores add to service/db_broker_lmdb.py's and db_broker_memory.py's:
    each row change noted in the change log (changes.py), in the same transaction as the row,
    and the log dropped with the container."""

    changes: Any  # changes.py's ChangeLog, or the memory twin's

    def put_row(self, cid: bytes, name: bytes, old: ObjectRow | None, new: ObjectRow) -> None:
        super().put_row(cid, name, old, new)  # type: ignore[misc]
        self.changes.note(cid, name)

    def container_ids(self, after: bytes, limit: int) -> list[bytes]:
        return self.scope_ids(after, limit)  # type: ignore[attr-defined, no-any-return]

    def drop(self, cid: bytes) -> None:
        super().drop(cid)  # type: ignore[misc]
        self.changes.drop(cid)


class ContainerBrokerBase(
    DbBrokerBase[ContainerStore], ContainerReplicaMixin, ContainerReclaimMixin
):
    """The container semantics over service/db_broker.py's plumbing; the LMDB broker and its
    memory twin add ``_read``/``_write`` (service/db_broker_lmdb.py, db_broker_memory.py) and
    the async_pendings."""

    # -- async_pendings: account updates that failed, kept on the container's device for
    # the container updater (service/async_pending.py) --

    @abstractmethod
    async def save_async_pending(
        self, device: str, pending: AsyncPending, rng: random.Random
    ) -> bytes:
        """Store ``pending`` durably; its key.  ``rng``: the process's seeded random source."""

    @abstractmethod
    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]:
        """Oldest first, keys after ``after``; None for a record that cannot be decoded."""

    @abstractmethod
    async def delete_async_pending(self, device: str, key: bytes) -> bool:
        """Forget ``key``; False if it was already gone."""

    async def create(
        self,
        device: str,
        account: str,
        container: str,
        timestamp: Timestamp,
        metadata: Metadata | None = None,
    ) -> bool:
        cid = self._cid(account, container)
        check_timestamp(timestamp)
        updates = check_metadata(metadata)

        def write(store: ContainerStore) -> str:
            info = store.get_info(cid)
            if info is None:
                info = ContainerInfo(
                    account, container, timestamp, status_changed_at=timestamp, created_at=timestamp
                )
                store.put_info(cid, replace(info, metadata=merged_metadata({}, updates)))
                store.put_totals(cid, NO_TOTALS)
                return "created"
            was_deleted = info.deleted
            info = replace(info, put_timestamp=max(info.put_timestamp, timestamp))
            if info.deleted:
                store.put_info(cid, info)
                return "conflict"
            if was_deleted:
                info = replace(info, status_changed_at=max(info.status_changed_at, timestamp))
            store.put_info(cid, replace(info, metadata=merged_metadata(info.metadata, updates)))
            return "created" if was_deleted else "accepted"

        outcome = await self._write(device, write)
        if outcome == "conflict":
            raise ContainerConflict(f"/{account}/{container} was deleted after {timestamp}")
        return outcome == "created"

    async def delete(self, device: str, account: str, container: str, timestamp: Timestamp) -> None:
        cid = self._cid(account, container)
        check_timestamp(timestamp)

        def write(store: ContainerStore) -> str:
            info = store.get_info(cid)
            if info is None:
                raise ContainerNotFound(account, container)
            if info.object_count:
                raise ContainerNotEmpty(account, container, info.object_count)
            new = replace(
                info,
                delete_timestamp=max(info.delete_timestamp, timestamp),
                metadata=cleared_metadata(info.metadata, timestamp),
            )
            if new.deleted and not info.deleted:
                new = replace(new, status_changed_at=max(new.status_changed_at, timestamp))
            store.put_info(cid, new)
            return "conflict" if not new.deleted else "already" if info.deleted else "deleted"

        outcome = await self._write(device, write)
        if outcome == "conflict":
            raise ContainerConflict(f"/{account}/{container} was put after {timestamp}")
        if outcome == "already":
            raise ContainerNotFound(account, container)

    def info(
        self, device: str, account: str, container: str, *, include_deleted: bool = False
    ) -> ContainerInfo:
        cid = self._cid(account, container)
        not_found = lambda: ContainerNotFound(account, container)  # noqa: E731
        return self._info(device, cid, not_found, include_deleted)

    async def update_metadata(
        self, device: str, account: str, container: str, metadata: Metadata
    ) -> None:
        cid = self._cid(account, container)
        not_found = lambda: ContainerNotFound(account, container)  # noqa: E731
        await self._update_metadata(device, cid, metadata, not_found)

    async def put_object(
        self,
        device: str,
        account: str,
        container: str,
        name: str,
        timestamp: Timestamp,
        size: int,
        content_type: str,
        etag: str,
        ctype_timestamp: Timestamp | None = None,
        meta_timestamp: Timestamp | None = None,
    ) -> None:
        row = ObjectRow.put(
            name, timestamp, size, content_type, etag, ctype_timestamp, meta_timestamp
        )
        await self.merge_rows(device, account, container, [row])

    async def delete_object(
        self, device: str, account: str, container: str, name: str, timestamp: Timestamp
    ) -> None:
        await self.merge_rows(device, account, container, [ObjectRow.tombstone(name, timestamp)])

    async def merge_rows(
        self, device: str, account: str, container: str, rows: Iterable[ObjectRow]
    ) -> None:
        """Merge rows (from object updates or a replicator) in one transaction."""
        cid = self._cid(account, container)
        checked = [check_row(row) for row in rows]
        await self._write(
            device, lambda store: _merge_rows(store, cid, account, container, checked)
        )

    def list_objects(
        self,
        device: str,
        account: str,
        container: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = MAX_LIMIT,
        reverse: bool = False,
        path: str | None = None,
        view: RowView[ObjectRow, Any] = ROWS,
    ) -> list[Any]:
        """A page of the listing, each object read through ``view`` (listing_views.py):
        ``ObjectRow`` by default; ``Subdir`` for a collapsed run of names."""
        cid = self._cid(account, container)
        query = ListingQuery.build(
            prefix=prefix,
            delimiter=delimiter,
            marker=marker,
            end_marker=end_marker,
            limit=limit,
            reverse=reverse,
            path=path,
        )

        return self._list(device, cid, query, view, lambda: ContainerNotFound(account, container))

    def _merge_into(
        self, store: ContainerStore, cid: bytes, account: str, container: str, rows: list[ObjectRow]
    ) -> None:
        _merge_rows(store, cid, account, container, rows)

    def _cid(self, account: str, container: str) -> bytes:
        check_db_name(account, "account")
        check_db_name(container, "container")
        return hash_path(self._secret, account, container)


def _merge_rows(
    store: ContainerStore, cid: bytes, account: str, container: str, rows: list[ObjectRow]
) -> None:
    """Merge each row into the stored one; totals follow the change of the winning row.

    The stats version (``containerd_/info.py``) follows every change: the stats timestamp is
    the newest data timestamp merged, and the stats sum adds the change of the row's
    ``stats_key``, so both end as functions of the rows held, whatever order they came in.
    """
    totals = store.get_totals(cid)
    if totals is None:
        raise ContainerNotFound(account, container)
    object_count, bytes_used, stats_timestamp, stats_sum = totals
    for old, new in merge_each(store, cid, rows, merge):
        stats_timestamp = max(stats_timestamp, new.timestamp)
        stats_sum += stats_key(new) - (0 if old is None else stats_key(old))
        for counted, sign in ((old, -1), (new, 1)):
            if counted is not None and not counted.deleted:
                object_count += sign
                bytes_used += sign * counted.size
    updated = (object_count, bytes_used, stats_timestamp, stats_sum)
    if updated != totals:
        store.put_totals(cid, updated)
