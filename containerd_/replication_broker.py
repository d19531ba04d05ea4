"""The container broker's replication side, for both brokers (a mixin of ContainerBrokerBase).

The sender (the replicator) reads a container's record and its rows, either those changed
after a sequence (``changed_rows``: the sync point path) or all of them by name
(``rows_after``: the full copy, for a peer that has no sync point for this replica); the
receiver (the container server's REPLICATE) merges a record (``receive_record``, which creates
the container if it never saw it) and then rows with the sender's new sync point
(``receive_rows``: rows and point commit together, so a point never runs ahead of the rows).
Every merge goes through the rules the servers use (``rows.merge``, ``replication.merge_record``):
replaying any of it is harmless.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .errors import ContainerNotFound
from .info import NO_TOTALS, ContainerInfo
from .replication import merge_record
from .rows import ObjectRow

T = TypeVar("T")


class ChangeView(Protocol):
    """containerd_/changes.py's ``ChangeLog`` (and the memory twin's)."""

    def last(self, cid: bytes) -> int: ...
    def since(self, cid: bytes, after: int, limit: int) -> list[tuple[int, bytes]]: ...
    def replica_id(self, *, create: bool) -> bytes | None: ...
    def get_sync_point(self, cid: bytes, sender: bytes) -> int | None: ...
    def put_sync_point(self, cid: bytes, sender: bytes, seq: int) -> None: ...
    def forget(self, cid: bytes, name: bytes) -> None: ...  # reclaim.py


class ContainerReplicaMixin:
    @abstractmethod
    def _read(self, device: str, read: Callable[[Any], T]) -> T: ...

    @abstractmethod
    async def _write(self, device: str, write: Callable[[Any], T]) -> T: ...

    @abstractmethod
    def _cid(self, account: str, container: str) -> bytes: ...

    @abstractmethod
    def _merge_into(
        self, store: Any, cid: bytes, account: str, container: str, rows: list[ObjectRow]
    ) -> None: ...

    # -- the sender's reads --

    async def replica_id(self, device: str) -> bytes:
        """This device's replica id (made on first use): what peers key our sync points by."""
        found = self._read(device, lambda store: store.changes.replica_id(create=False))
        if found is not None:
            return bytes(found)
        made = await self._write(device, lambda store: store.changes.replica_id(create=True))
        return bytes(made)

    def container_ids(self, device: str, after: bytes = b"", limit: int = 1000) -> list[bytes]:
        """Ids (placement digests) of the device's containers after ``after``, in order."""
        return self._read(device, lambda store: store.container_ids(after, limit))

    def replication_source(self, device: str, cid: bytes) -> tuple[ContainerInfo | None, int]:
        """The container's info (deleted or not; None if gone) and newest change sequence."""
        return self._read(device, lambda store: (store.get_info(cid), store.changes.last(cid)))

    def changed_rows(
        self, device: str, cid: bytes, after_seq: int, limit: int
    ) -> tuple[list[ObjectRow], int]:
        """The current rows of up to ``limit`` names changed after ``after_seq``, and the
        sequence they bring a peer to (``after_seq`` if none changed)."""

        def read(store: Any) -> tuple[list[ObjectRow], int]:
            changed = store.changes.since(cid, after_seq, limit)
            found = [store.get_row(cid, name) for _, name in changed]
            rows = [row for row in found if row is not None]
            return rows, changed[-1][0] if changed else after_seq

        return self._read(device, read)

    def rows_after(self, device: str, cid: bytes, after: str | None, limit: int) -> list[ObjectRow]:
        """Up to ``limit`` rows, live and deleted, named after ``after``: the full copy."""
        start = None if after is None else after.encode("utf-8")
        return self._read(device, lambda store: store.rows_after(cid, start, limit))

    # -- the receiver's writes --

    async def receive_record(
        self, device: str, account: str, container: str, record: ContainerInfo, sender: bytes
    ) -> tuple[ContainerInfo, int | None]:
        """Merge a peer's record (creating the container if new here); the merged info and
        the sync point this replica holds for ``sender`` (None: none, send everything)."""
        cid = self._cid(account, container)
        if (record.account, record.container) != (account, container):
            raise ContainerNotFound(account, container)  # a record for another path

        def write(store: Any) -> tuple[ContainerInfo, int | None]:
            local = store.get_info(cid)
            merged = merge_record(local, record)
            if merged != local:
                store.put_info(cid, merged)
            if store.get_totals(cid) is None:
                store.put_totals(cid, NO_TOTALS)
            return store.get_info(cid), store.changes.get_sync_point(cid, sender)

        return await self._write(device, write)

    async def receive_rows(
        self,
        device: str,
        account: str,
        container: str,
        sender: bytes,
        rows: list[ObjectRow],
        point: int | None,
    ) -> None:
        """Merge a page of a peer's rows and, if given, its new sync point, in one commit."""
        cid = self._cid(account, container)

        def write(store: Any) -> None:
            self._merge_into(store, cid, account, container, rows)
            if point is not None:
                held = store.changes.get_sync_point(cid, sender)
                if held is None or point > held:
                    store.changes.put_sync_point(cid, sender, point)

        await self._write(device, write)

    async def drop_container(
        self, device: str, cid: bytes, seen: ContainerInfo, seen_seq: int
    ) -> bool:
        """Remove a handoff's container, only if unchanged since it was read (``seen``,
        ``seen_seq``): a row or record that landed meanwhile keeps it for the next pass."""

        def write(store: Any) -> bool:
            if store.get_info(cid) != seen or store.changes.last(cid) != seen_seq:
                return False
            store.drop(cid)
            return True

        return await self._write(device, write)
