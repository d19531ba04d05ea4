"""The in-memory twin of service/db_broker_lmdb.py: the same store API over dicts and sorted
lists, devices just names.  The account and container memory brokers are this with their
info, row and totals types (and, for containers, a change log and async_pendings).

Tests take a device away with ``offline_devices`` (DeviceUnavailable) or fill it with
``full_devices`` (DiskFull on writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Generic, TypeVar

from service.db_broker import DbBrokerBase
from service.listing import RowView
from service.listing_tables import SortedCursor, SortedRows
from service.lmdb_devices import DeviceUnavailable, DiskFull, check_device_name

S = TypeVar("S")
T = TypeVar("T")
V = TypeVar("V")
I = TypeVar("I")  # noqa: E741 - the info type
R = TypeVar("R")  # the row type (it has ``deleted``)
Tot = TypeVar("Tot")  # the totals type


class MemoryDbBroker(DbBrokerBase[S]):
    store_type: ClassVar[Callable[[], Any]]

    def __init__(self, hash_secret: bytes) -> None:
        super().__init__(hash_secret)
        self.offline_devices: set[str] = set()
        self.full_devices: set[str] = set()
        self._stores: dict[str, Any] = {}
        self._closed = False

    def _store(self, device: str) -> Any:
        check_device_name(device)
        if self._closed:
            raise RuntimeError("the broker is closed")
        if device in self.offline_devices:
            raise DeviceUnavailable(device, "offline")
        return self._stores.setdefault(device, self.store_type())

    def _read(self, device: str, read: Callable[[S], T]) -> T:
        return read(self._store(device))

    async def _write(self, device: str, write: Callable[[S], T]) -> T:
        self._store(device)
        if device in self.full_devices:
            raise DiskFull(device, "full (simulated)")
        await asyncio.sleep(0)  # the LMDB broker's writes are never done on the spot either
        # Writes raise only before changing anything, so the store needs no rollback.
        return write(self._store(device))

    def close(self) -> None:
        self._closed = True


class MemoryRowsStore(Generic[I, R, Tot]):
    """One device's databases: info records, totals, live rows and tombstones by id."""

    no_totals: Any  # the totals of a database with no rows

    def __init__(self) -> None:
        self._infos: dict[bytes, I] = {}
        self._totals: dict[bytes, Tot] = {}
        self._live: dict[bytes, SortedRows[R]] = {}
        self._tombstones: dict[bytes, dict[bytes, R]] = {}

    def with_totals(self, info: I, totals: Tot) -> I:
        """``info`` with the counts of ``totals`` (the LMDB store decodes them together)."""
        raise NotImplementedError

    def get_info(self, scope: bytes) -> I | None:
        info = self._infos.get(scope)
        if info is None:
            return None
        # A copy of the metadata, as the LMDB broker decodes a fresh one every time.
        info = replace(info, metadata=dict(info.metadata))  # type: ignore[type-var, attr-defined]
        return self.with_totals(info, self._totals.get(scope, self.no_totals))

    def put_info(self, scope: bytes, info: I) -> None:
        self._infos[scope] = replace(info, metadata=dict(info.metadata))  # type: ignore[type-var, attr-defined]

    def get_totals(self, scope: bytes) -> Tot | None:
        return self._totals.get(scope)

    def put_totals(self, scope: bytes, totals: Tot) -> None:
        self._totals[scope] = totals

    def get_row(self, scope: bytes, name: bytes) -> R | None:
        row = self._live.setdefault(scope, SortedRows()).get(name)
        return row if row is not None else self._tombstones.setdefault(scope, {}).get(name)

    def put_row(self, scope: bytes, name: bytes, old: R | None, new: R) -> None:
        live = self._live.setdefault(scope, SortedRows())
        dead = self._tombstones.setdefault(scope, {})
        if new.deleted:  # type: ignore[attr-defined]
            dead[name] = new
            live.delete(name)
        else:
            live.put(name, new)
            dead.pop(name, None)

    def cursor(self, scope: bytes, view: RowView[R, V]) -> SortedCursor[V]:
        return self._live.get(scope, SortedRows()).cursor(view.from_row)

    def rows_after(self, scope: bytes, after: bytes | None, limit: int) -> list[R]:
        live = self._live.get(scope, SortedRows())
        dead = self._tombstones.get(scope, {})
        names = sorted({*(n for n, _ in live.cursor().ascending(b"")), *dead})
        chosen = [n for n in names if after is None or n > after][:limit]
        return [row for n in chosen for row in (live.get(n) or dead[n],)]

    def scope_ids(self, after: bytes, limit: int) -> list[bytes]:
        """The ids of the device's databases after ``after``, a page of ``limit``."""
        return sorted(scope for scope in self._infos if scope > after)[:limit]

    def drop(self, scope: bytes) -> None:
        for table in (self._infos, self._totals, self._live, self._tombstones):
            table.pop(scope, None)  # type: ignore[attr-defined]
