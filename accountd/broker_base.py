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

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from ring.placement import hash_path
from service.db_metadata import (
    Metadata,
    check_metadata,
    check_metadata_limits,
    cleared_metadata,
    merge_metadata,
)
from service.errors import BadInput
from service.listing import (
    MAX_LIMIT,
    ListingQuery,
    RowView,
    ScopeCursor,
    encode_name,
    list_page,
)
from service.timestamp import Timestamp

from .errors import AccountConflict, AccountDeleted, AccountNotFound
from .info import AccountInfo, Totals
from .listing_views import ROWS
from .replication_broker import AccountReplicaMixin
from .rows import ContainerRow, check_row, merge

T = TypeVar("T")
V = TypeVar("V")


class AccountStore(Protocol):
    """One device's account tables, inside one transaction."""

    def get_info(self, aid: bytes) -> AccountInfo | None: ...
    def put_info(self, aid: bytes, info: AccountInfo) -> None: ...  # all but the totals
    def get_totals(self, aid: bytes) -> Totals | None: ...
    def put_totals(self, aid: bytes, totals: Totals) -> None: ...
    def get_row(self, aid: bytes, name: bytes) -> ContainerRow | None: ...
    def put_row(
        self, aid: bytes, name: bytes, old: ContainerRow | None, new: ContainerRow
    ) -> None: ...
    def cursor(self, aid: bytes, view: RowView[ContainerRow, V]) -> ScopeCursor[V]: ...
    # replication (accountd/replication_broker.py): whole accounts, rows by name
    def rows_after(self, aid: bytes, after: bytes | None, limit: int) -> list[ContainerRow]: ...
    def account_ids(self, after: bytes, limit: int) -> list[bytes]: ...
    def drop(self, aid: bytes) -> None: ...


class AccountBrokerBase(ABC, AccountReplicaMixin):
    def __init__(self, hash_secret: bytes) -> None:
        if not isinstance(hash_secret, bytes) or not hash_secret:
            raise ValueError("hash_secret must be non-empty bytes")
        self._secret = hash_secret
        self.listing_steps = 0  # rows visited by listings, for tests and benchmarks
        self._steps_lock = threading.Lock()  # listings may run in threads (run_read)

    @abstractmethod
    def _read(self, device: str, read: Callable[[AccountStore], T]) -> T: ...

    @abstractmethod
    async def _write(self, device: str, write: Callable[[AccountStore], T]) -> T: ...

    def close(self) -> None:  # not abstract: only the LMDB broker holds anything
        """Release what the broker holds; further calls are an error."""

    async def prepare_device(self, device: str) -> None:  # not abstract: the LMDB broker's
        """Open and check ``device`` off the event loop; errors are left to the next call."""

    async def run_read(self, read: Callable[[], T]) -> T:
        """Run ``read`` (a listing page, rendered) in a thread if the broker is thread-safe
        (LMDB); the memory twin runs it inline."""
        return read()

    async def create(
        self, device: str, account: str, timestamp: Timestamp, metadata: Metadata | None = None
    ) -> bool:
        aid = self._aid(account)
        _check_timestamp(timestamp)
        updates = check_metadata(metadata)

        def write(store: AccountStore) -> bool:
            info = store.get_info(aid)
            if info is None:
                info = AccountInfo(
                    account, timestamp, status_changed_at=timestamp, created_at=timestamp
                )
                store.put_info(aid, replace(info, metadata=_merged({}, updates)))
                store.put_totals(aid, (0, 0, 0))
                return True
            if info.deleted:
                raise AccountDeleted(account)
            put_timestamp = max(info.put_timestamp, timestamp)
            metadata = _merged(info.metadata, updates)
            store.put_info(aid, replace(info, put_timestamp=put_timestamp, metadata=metadata))
            return False

        return await self._write(device, write)

    async def delete(self, device: str, account: str, timestamp: Timestamp) -> None:
        aid = self._aid(account)
        _check_timestamp(timestamp)

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
        info = self._read(device, lambda store: store.get_info(aid))
        if info is None or (info.deleted and not include_deleted):
            raise AccountNotFound(account)
        return info

    async def update_metadata(self, device: str, account: str, metadata: Metadata) -> None:
        aid = self._aid(account)
        updates = check_metadata(metadata)

        def write(store: AccountStore) -> None:
            info = store.get_info(aid)
            if info is None or info.deleted:
                raise AccountNotFound(account)
            store.put_info(aid, replace(info, metadata=_merged(info.metadata, updates)))

        await self._write(device, write)

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

        def read(store: AccountStore) -> list[Any]:
            info = store.get_info(aid)
            if info is None or info.deleted:
                raise AccountNotFound(account)
            cursor = store.cursor(aid, view)
            try:
                return list_page(cursor, query)
            finally:
                with self._steps_lock:
                    self.listing_steps += cursor.steps

        return self._read(device, read)

    def _merge_into(self, store: AccountStore, aid: bytes, rows: list[ContainerRow]) -> None:
        _merge_rows(store, aid, [check_row(row) for row in rows])

    def _aid(self, account: str) -> bytes:
        encode_name(account, "account name")
        if "/" in account:
            raise BadInput(f"account name {account!r} must not hold '/'")
        return hash_path(self._secret, account)


def _merged(current: Metadata, updates: Metadata) -> Metadata:
    merged = merge_metadata(current, updates)
    check_metadata_limits(merged)  # raised in the write: it aborts, nothing is stored
    return merged


def _check_timestamp(timestamp: Timestamp) -> None:
    if not isinstance(timestamp, Timestamp):
        raise BadInput(f"expected a Timestamp, not {timestamp!r}")


def _merge_rows(store: AccountStore, aid: bytes, rows: list[ContainerRow]) -> None:
    """Merge each row into the stored one; totals follow the change of the winning row."""
    totals = store.get_totals(aid) or (0, 0, 0)
    container_count, object_count, bytes_used = totals
    for row in rows:
        name = row.name.encode("utf-8")
        old = store.get_row(aid, name)
        new = row if old is None else merge(old, row)
        if new == old:
            continue  # a replay: nothing to write
        store.put_row(aid, name, old, new)
        for counted, sign in ((old, -1), (new, 1)):
            if counted is not None and not counted.deleted:
                container_count += sign
                object_count += sign * counted.object_count
                bytes_used += sign * counted.bytes_used
    if (container_count, object_count, bytes_used) != totals:
        store.put_totals(aid, (container_count, object_count, bytes_used))
