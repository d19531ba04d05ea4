"""The LMDB side of the account and container brokers: every database of a device in one
LMDB environment, four tables keyed by the database's 16-byte id (service/db_broker.py):

- the info table: id → the info record (names, timestamps, metadata);
- ``totals``: id → the totals, rewritten with every row change (not with the record);
- the rows table: id | name → the live row, in byte order of the names;
- ``tombstones``: the same for deleted rows, kept apart so listings never walk them.

A subclass names the environment's file and tables and gives the store its codecs; what it
stores besides (the container's change log and async_pendings) it adds itself.

Reads run in the caller's thread (a server runs a listing in a thread of its own,
``run_read``, and opens the device off the event loop first, ``prepare_device``); writes go
through the device's group-commit writer, each in a nested transaction, so a row and the
totals it changes commit together.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import lmdb

from service.db_broker import DbBrokerBase
from service.db_scope import drop_scope, keys_after
from service.listing import RowView
from service.listing_tables import ListingTable, LmdbCursor
from service.lmdb_devices import DEFAULT_MAP_SIZE_BYTES, DeviceEnvs

S = TypeVar("S")
T = TypeVar("T")
V = TypeVar("V")
I = TypeVar("I")  # noqa: E741 - the info type
R = TypeVar("R")  # the row type (it has ``deleted``)
Tot = TypeVar("Tot")  # the totals type


class LmdbDbBroker(DbBrokerBase[S]):
    file_name: ClassVar[str]  # the device's environment, e.g. "accounts.lmdb"
    tables: ClassVar[tuple[str, ...]]
    store_type: ClassVar[Callable[[lmdb.Transaction, dict[str, Any]], Any]]

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
            self.file_name,
            self.tables,
            max_batch=max_batch,
            map_size_bytes=map_size_bytes,
            mount_check=mount_check,
        )

    def _read(self, device: str, read: Callable[[S], T]) -> T:
        with self._envs.reading(device) as (txn, opened):
            return read(self.store_type(txn, opened.tables))

    async def _write(self, device: str, write: Callable[[S], T]) -> T:
        return await self._envs.write(
            device, lambda txn, opened: write(self.store_type(txn, opened.tables))
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


class LmdbRowsStore(Generic[I, R, Tot]):
    """One device's tables inside one transaction; a subclass sets the table names and codecs."""

    info_table: ClassVar[str]
    rows_table: ClassVar[str]
    no_totals: Any  # the totals of a database with no rows

    def __init__(self, txn: lmdb.Transaction, tables: dict[str, Any]) -> None:
        self._txn = txn
        self._records = tables[self.info_table]
        self._totals = tables["totals"]
        self._live = ListingTable(tables[self.rows_table])
        self._tombstones = ListingTable(tables["tombstones"])
        self._tables = tables

    # The codecs (each server's info.py, rows.py and listing_views.py), as staticmethods.
    decode_record: Callable[[bytes, Any], I]  # (record, totals) → info
    encode_record: Callable[[I], bytes]
    decode_totals: Callable[[bytes], Tot]
    encode_totals: Callable[[Tot], bytes]
    decode_row: Callable[[bytes, bytes], R]  # (name, stored row) → row
    encode_row: Callable[[R], bytes]

    # -- the store --

    def get_info(self, scope: bytes) -> I | None:
        record = self._txn.get(scope, db=self._records)
        if record is None:
            return None
        return self.decode_record(record, self.get_totals(scope) or self.no_totals)

    def put_info(self, scope: bytes, info: I) -> None:
        self._txn.put(scope, self.encode_record(info), db=self._records)

    def get_totals(self, scope: bytes) -> Tot | None:
        value = self._txn.get(scope, db=self._totals)
        return None if value is None else self.decode_totals(value)

    def put_totals(self, scope: bytes, totals: Tot) -> None:
        self._txn.put(scope, self.encode_totals(totals), db=self._totals)

    def get_row(self, scope: bytes, name: bytes) -> R | None:
        value = self._live.get(self._txn, scope, name)
        if value is None:
            value = self._tombstones.get(self._txn, scope, name)
        return None if value is None else self.decode_row(name, value)

    def put_row(self, scope: bytes, name: bytes, old: R | None, new: R) -> None:
        deleted = new.deleted  # type: ignore[attr-defined]
        table, other = (self._tombstones, self._live) if deleted else (self._live, self._tombstones)
        table.put(self._txn, scope, name, self.encode_row(new))
        if old is not None and old.deleted != deleted:  # type: ignore[attr-defined]
            other.delete(self._txn, scope, name)

    def cursor(self, scope: bytes, view: RowView[R, V]) -> LmdbCursor[V]:
        return self._live.cursor(self._txn, scope, view.from_stored)

    def rows_after(self, scope: bytes, after: bytes | None, limit: int) -> list[R]:
        """Up to ``limit`` rows, live and deleted, named after ``after``, in name order."""
        start = b"" if after is None else after + b"\x00"
        found: list[tuple[bytes, R]] = []
        for table in (self._live, self._tombstones):
            # The first ``limit`` of the union are among the first ``limit`` of each table.
            rows_of_table = table.cursor(self._txn, scope, self.decode_row).ascending(start)
            found += itertools.islice(rows_of_table, limit)
        found.sort(key=lambda entry: entry[0])
        return [row for _, row in found[:limit]]

    def scope_ids(self, after: bytes, limit: int) -> list[bytes]:
        """The ids of the device's databases after ``after``, a page of ``limit``."""
        return keys_after(self._txn, self._records, after, limit)

    def drop(self, scope: bytes) -> None:
        self._txn.delete(scope, db=self._records)
        self._txn.delete(scope, db=self._totals)
        for name in (self.rows_table, "tombstones"):
            drop_scope(self._txn, self._tables[name], scope)
