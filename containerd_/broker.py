"""The container broker: every container of a device in one LMDB environment.

``<devices_root>/<device>/containers.lmdb`` holds four tables keyed by the container id
(the 16-byte ``hash_path(secret, account, container)``), and one more:

- ``containers``: id → the info record (names, timestamps, metadata; ``info.py``);
- ``totals``: id → object count, bytes used and stats version, updated with every row change;
- ``objects``: id | name → the live object row (``rows.py``), in byte order of the names;
- ``tombstones``: the same for deleted rows, kept apart so listings never walk them;
- ``async_pending``: account updates that failed (service/async_pending.py), for the updater;
- ``changes``, ``change_index``, ``sync_points``, ``replica``: what replication resumes from
  (containerd_/changes.py).

Reads run in the caller's thread (a server runs a listing in a thread of its own,
``run_read``, and opens the device off the event loop first, ``prepare_device``); writes go
through the device's group-commit writer, each in a nested transaction, so a row, the totals
it changes and nothing else commit together.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any, TypeVar

import lmdb

from service import async_pending
from service.async_pending import AsyncPending
from service.db_scope import drop_scope, keys_after
from service.listing import RowView
from service.listing_tables import ListingTable, LmdbCursor
from service.lmdb_devices import DEFAULT_MAP_SIZE_BYTES, DeviceEnvs

from . import rows
from .broker_base import ContainerBrokerBase, ContainerStore
from .changes import CHANGE_TABLES, ChangeLog
from .info import (
    NO_TOTALS,
    ContainerInfo,
    Totals,
    decode_record,
    decode_totals,
    encode_record,
    encode_totals,
)
from .listing_views import decode_stored
from .rows import ObjectRow

T = TypeVar("T")
V = TypeVar("V")
PENDING = async_pending.TABLE.decode("ascii")
TABLES = ("containers", "totals", "objects", "tombstones", PENDING, *CHANGE_TABLES)


class ContainerBroker(ContainerBrokerBase):
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
            "containers.lmdb",
            TABLES,
            max_batch=max_batch,
            map_size_bytes=map_size_bytes,
            mount_check=mount_check,
        )

    def _read(self, device: str, read: Callable[[ContainerStore], T]) -> T:
        with self._envs.reading(device) as (txn, opened):
            return read(_LmdbStore(txn, opened.tables))

    async def _write(self, device: str, write: Callable[[ContainerStore], T]) -> T:
        return await self._envs.write(
            device, lambda txn, opened: write(_LmdbStore(txn, opened.tables))
        )

    async def save_async_pending(
        self, device: str, pending: AsyncPending, rng: random.Random
    ) -> bytes:
        key = async_pending.make_key(pending.timestamp, rng.getrandbits(64))
        value = async_pending.encode(pending)
        await self._envs.write(
            device, lambda txn, opened: txn.put(key, value, db=opened.tables[PENDING])
        )
        return key

    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]:
        opened = self._envs.get(device)
        return async_pending.list_pending(
            opened.env, opened.tables[PENDING], after=after, limit=limit
        )

    async def delete_async_pending(self, device: str, key: bytes) -> bool:
        return await self._envs.write(
            device, lambda txn, opened: txn.delete(key, db=opened.tables[PENDING])
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
        self._records = tables["containers"]
        self._totals = tables["totals"]
        self._objects = ListingTable(tables["objects"])
        self._tombstones = ListingTable(tables["tombstones"])
        self._tables = tables
        self.changes = ChangeLog(txn, tables)

    def get_info(self, cid: bytes) -> ContainerInfo | None:
        record = self._txn.get(cid, db=self._records)
        if record is None:
            return None
        return decode_record(record, self.get_totals(cid) or NO_TOTALS)

    def put_info(self, cid: bytes, info: ContainerInfo) -> None:
        self._txn.put(cid, encode_record(info), db=self._records)

    def get_totals(self, cid: bytes) -> Totals | None:
        value = self._txn.get(cid, db=self._totals)
        return None if value is None else decode_totals(value)

    def put_totals(self, cid: bytes, totals: Totals) -> None:
        self._txn.put(cid, encode_totals(totals), db=self._totals)

    def get_row(self, cid: bytes, name: bytes) -> ObjectRow | None:
        value = self._objects.get(self._txn, cid, name)
        if value is None:
            value = self._tombstones.get(self._txn, cid, name)
        return None if value is None else decode_stored(name, value)

    def put_row(self, cid: bytes, name: bytes, old: ObjectRow | None, new: ObjectRow) -> None:
        table, other = (
            (self._tombstones, self._objects) if new.deleted else (self._objects, self._tombstones)
        )
        table.put(self._txn, cid, name, rows.encode(new))
        if old is not None and old.deleted != new.deleted:
            other.delete(self._txn, cid, name)
        self.changes.note(cid, name)

    def cursor(self, cid: bytes, view: RowView[ObjectRow, V]) -> LmdbCursor[V]:
        return self._objects.cursor(self._txn, cid, view.from_stored)

    def rows_after(self, cid: bytes, after: bytes | None, limit: int) -> list[ObjectRow]:
        """Up to ``limit`` rows, live and deleted, named after ``after``, in name order."""
        start = b"" if after is None else after + b"\x00"
        found: list[tuple[bytes, ObjectRow]] = []
        for table in (self._objects, self._tombstones):
            # The first ``limit`` of the union are among the first ``limit`` of each table.
            rows_of_table = table.cursor(self._txn, cid, decode_stored).ascending(start)
            found += itertools.islice(rows_of_table, limit)
        found.sort(key=lambda entry: entry[0])
        return [row for _, row in found[:limit]]

    def container_ids(self, after: bytes, limit: int) -> list[bytes]:
        return keys_after(self._txn, self._records, after, limit)

    def drop(self, cid: bytes) -> None:
        self._txn.delete(cid, db=self._records)
        self._txn.delete(cid, db=self._totals)
        for name in ("objects", "tombstones"):
            drop_scope(self._txn, self._tables[name], cid)
        self.changes.drop(cid)
