"""The account broker: every account of a device in one LMDB environment.

``<devices_root>/<device>/accounts.lmdb`` holds four tables, keyed by the account id (the
16-byte ``hash_path(secret, account)``):

- ``accounts``: id → the info record (name, timestamps, metadata; ``info.py``);
- ``totals``: id → container count, object count and bytes used over the live containers;
- ``containers``: id | name → the live container row (``rows.py``), in byte order of the names;
- ``tombstones``: the same for deleted container rows, kept apart so listings never walk them.

Reads run in the caller's thread (a server runs a listing in a thread of its own,
``run_read``, and opens the device off the event loop first, ``prepare_device``); writes go
through the device's group-commit writer, each in a nested transaction, so a row and the
totals it changes commit together.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import lmdb

from service.db_scope import drop_scope, keys_after
from service.listing import RowView
from service.listing_tables import ListingTable, LmdbCursor
from service.lmdb_devices import DEFAULT_MAP_SIZE_BYTES, DeviceEnvs

from . import rows
from .broker_base import AccountBrokerBase, AccountStore
from .info import AccountInfo, Totals, decode_record, decode_totals, encode_record, encode_totals
from .listing_views import decode_stored
from .rows import ContainerRow

T = TypeVar("T")
V = TypeVar("V")
TABLES = ("accounts", "totals", "containers", "tombstones")


class AccountBroker(AccountBrokerBase):
    def __init__(
        self,
        devices_root: str,
        hash_secret: bytes,
        *,
        max_batch: int = 256,
        map_size_bytes: int = DEFAULT_MAP_SIZE_BYTES,
        mount_check: bool = False,
    ) -> None:
        super().__init__(hash_secret)
        self._envs = DeviceEnvs(
            devices_root,
            "accounts.lmdb",
            TABLES,
            max_batch=max_batch,
            map_size_bytes=map_size_bytes,
            mount_check=mount_check,
        )

    def _read(self, device: str, read: Callable[[AccountStore], T]) -> T:
        with self._envs.reading(device) as (txn, opened):
            return read(_LmdbStore(txn, opened.tables))

    async def _write(self, device: str, write: Callable[[AccountStore], T]) -> T:
        return await self._envs.write(
            device, lambda txn, opened: write(_LmdbStore(txn, opened.tables))
        )

    async def prepare_device(self, device: str) -> None:
        await self._envs.prepare(device)

    async def run_read(self, read: Callable[[], T]) -> T:
        return await asyncio.to_thread(read)

    def reader_check(self) -> int:
        """Clear dead processes' reader slots in every open environment (for periodic use)."""
        return self._envs.reader_check()

    def close(self) -> None:
        self._envs.close()


class _LmdbStore:
    def __init__(self, txn: lmdb.Transaction, tables: dict[str, Any]) -> None:
        self._txn = txn
        self._records = tables["accounts"]
        self._totals = tables["totals"]
        self._live = ListingTable(tables["containers"])
        self._tombstones = ListingTable(tables["tombstones"])
        self._tables = tables

    def get_info(self, aid: bytes) -> AccountInfo | None:
        record = self._txn.get(aid, db=self._records)
        if record is None:
            return None
        return decode_record(record, self.get_totals(aid) or (0, 0, 0))

    def put_info(self, aid: bytes, info: AccountInfo) -> None:
        self._txn.put(aid, encode_record(info), db=self._records)

    def get_totals(self, aid: bytes) -> Totals | None:
        value = self._txn.get(aid, db=self._totals)
        return None if value is None else decode_totals(value)

    def put_totals(self, aid: bytes, totals: Totals) -> None:
        self._txn.put(aid, encode_totals(totals), db=self._totals)

    def get_row(self, aid: bytes, name: bytes) -> ContainerRow | None:
        value = self._live.get(self._txn, aid, name)
        if value is None:
            value = self._tombstones.get(self._txn, aid, name)
        return None if value is None else decode_stored(name, value)

    def put_row(self, aid: bytes, name: bytes, old: ContainerRow | None, new: ContainerRow) -> None:
        table, other = (
            (self._tombstones, self._live) if new.deleted else (self._live, self._tombstones)
        )
        table.put(self._txn, aid, name, rows.encode(new))
        if old is not None and old.deleted != new.deleted:
            other.delete(self._txn, aid, name)

    def cursor(self, aid: bytes, view: RowView[ContainerRow, V]) -> LmdbCursor[V]:
        return self._live.cursor(self._txn, aid, view.from_stored)

    def rows_after(self, aid: bytes, after: bytes | None, limit: int) -> list[ContainerRow]:
        """Up to ``limit`` rows, live and deleted, named after ``after``, in name order."""
        start = b"" if after is None else after + b"\x00"
        found: list[tuple[bytes, ContainerRow]] = []
        for table in (self._live, self._tombstones):
            # The first ``limit`` of the union are among the first ``limit`` of each table.
            found += itertools.islice(
                table.cursor(self._txn, aid, decode_stored).ascending(start), limit
            )
        found.sort(key=lambda entry: entry[0])
        return [row for _, row in found[:limit]]

    def account_ids(self, after: bytes, limit: int) -> list[bytes]:
        return keys_after(self._txn, self._records, after, limit)

    def drop(self, aid: bytes) -> None:
        self._txn.delete(aid, db=self._records)
        self._txn.delete(aid, db=self._totals)
        for name in ("containers", "tombstones"):
            drop_scope(self._txn, self._tables[name], aid)
