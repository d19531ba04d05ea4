"""The account broker's replication side, for both brokers (a mixin of AccountBrokerBase).

The sender (the replicator) reads an account's record, the digest of its rows and its rows
by name (``replication_source``, ``rows_after``); the receiver (the account server's
REPLICATE) merges a record, creating the account if it never saw it, and says whether it
holds the same rows (``receive_record``), then merges pages of rows (``receive_rows``).  Every
merge goes through the rules the servers use (``rows.merge``, ``replication.merge_record``),
so replaying any of it is harmless.  accountd/replication.py says why there is no sync point.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .errors import AccountNotFound
from .info import AccountInfo
from .replication import merge_record, rows_digest
from .rows import ContainerRow

T = TypeVar("T")
DIGEST_PAGE = 1000  # rows read at a time while digesting


class AccountReplicaMixin:
    @abstractmethod
    def _read(self, device: str, read: Callable[[Any], T]) -> T: ...

    @abstractmethod
    async def _write(self, device: str, write: Callable[[Any], T]) -> T: ...

    @abstractmethod
    def _aid(self, account: str) -> bytes: ...

    @abstractmethod
    def _merge_into(self, store: Any, aid: bytes, rows: list[ContainerRow]) -> None: ...

    # -- the sender's reads --

    def account_ids(self, device: str, after: bytes = b"", limit: int = 1000) -> list[bytes]:
        """Ids (placement digests) of the device's accounts after ``after``, in order."""
        return self._read(device, lambda store: store.account_ids(after, limit))

    def replication_source(self, device: str, aid: bytes) -> tuple[AccountInfo | None, str]:
        """The account's info (deleted or not; None if gone) and the digest of its rows."""
        return self._read(device, lambda store: (store.get_info(aid), _digest(store, aid)))

    def rows_after(
        self, device: str, aid: bytes, after: str | None, limit: int
    ) -> list[ContainerRow]:
        """Up to ``limit`` rows, live and deleted, named after ``after``: the full copy."""
        start = None if after is None else after.encode("utf-8")
        return self._read(device, lambda store: store.rows_after(aid, start, limit))

    # -- the receiver's writes --

    async def receive_record(
        self, device: str, account: str, record: AccountInfo, digest: str
    ) -> tuple[AccountInfo, bool]:
        """Merge a peer's record (creating the account if new here); the merged info and
        whether this replica's rows have the sender's ``digest`` (then nothing to send)."""
        aid = self._aid(account)
        if record.account != account:
            raise AccountNotFound(account)  # a record for another path

        def write(store: Any) -> tuple[AccountInfo, bool]:
            local = store.get_info(aid)
            merged = merge_record(local, record)
            if merged != local:
                store.put_info(aid, merged)
            if store.get_totals(aid) is None:
                store.put_totals(aid, (0, 0, 0))
            return store.get_info(aid), _digest(store, aid) == digest

        return await self._write(device, write)

    async def receive_rows(self, device: str, account: str, rows: list[ContainerRow]) -> None:
        """Merge a page of a peer's rows, deleted account or not (the sync step made it)."""
        aid = self._aid(account)

        def write(store: Any) -> None:
            if store.get_info(aid) is None:
                raise AccountNotFound(account)
            self._merge_into(store, aid, rows)

        await self._write(device, write)

    async def drop_account(self, device: str, aid: bytes, seen: AccountInfo, digest: str) -> bool:
        """Remove a handoff's account, only if unchanged since it was read (``seen``,
        ``digest``): a row or record that landed meanwhile keeps it for the next pass."""

        def write(store: Any) -> bool:
            if store.get_info(aid) != seen or _digest(store, aid) != digest:
                return False
            store.drop(aid)
            return True

        return await self._write(device, write)


def _digest(store: Any, aid: bytes) -> str:
    return rows_digest(_all_rows(store, aid))


def _all_rows(store: Any, aid: bytes) -> Iterator[ContainerRow]:
    after: bytes | None = None
    while True:
        page = store.rows_after(aid, after, DIGEST_PAGE)
        yield from page
        if len(page) < DIGEST_PAGE:
            return
        after = page[-1].name.encode("utf-8")
