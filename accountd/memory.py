"""The account broker's in-memory twin: the same API and semantics (both are
``AccountBrokerBase``), rows in sorted lists, devices just names.

Tests take a device away with ``offline_devices`` (DeviceUnavailable) or fill it with
``full_devices`` (DiskFull on writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from service.listing import RowView
from service.listing_tables import SortedCursor, SortedRows
from service.lmdb_devices import check_device_name

from .broker_base import AccountBrokerBase, AccountStore
from .errors import DeviceUnavailable, DiskFull
from .info import AccountInfo, Totals
from .rows import ContainerRow

T = TypeVar("T")
V = TypeVar("V")


class MemoryAccountBroker(AccountBrokerBase):
    def __init__(self, hash_secret: bytes) -> None:
        super().__init__(hash_secret)
        self.offline_devices: set[str] = set()
        self.full_devices: set[str] = set()
        self._stores: dict[str, _MemoryStore] = {}
        self._closed = False

    def _store(self, device: str) -> _MemoryStore:
        check_device_name(device)
        if self._closed:
            raise RuntimeError("the broker is closed")
        if device in self.offline_devices:
            raise DeviceUnavailable(device, "offline")
        return self._stores.setdefault(device, _MemoryStore())

    def _read(self, device: str, read: Callable[[AccountStore], T]) -> T:
        return read(self._store(device))

    async def _write(self, device: str, write: Callable[[AccountStore], T]) -> T:
        self._store(device)
        if device in self.full_devices:
            raise DiskFull(device, "full (simulated)")
        await asyncio.sleep(0)  # the LMDB broker's writes are never done on the spot either
        # Writes raise only before changing anything, so the store needs no rollback.
        return write(self._store(device))

    def close(self) -> None:
        self._closed = True


class _MemoryStore:
    def __init__(self) -> None:
        self._infos: dict[bytes, AccountInfo] = {}
        self._totals: dict[bytes, Totals] = {}
        self._live: dict[bytes, SortedRows[ContainerRow]] = {}
        self._tombstones: dict[bytes, dict[bytes, ContainerRow]] = {}

    def get_info(self, aid: bytes) -> AccountInfo | None:
        info = self._infos.get(aid)
        if info is None:
            return None
        containers, objects, used = self._totals.get(aid, (0, 0, 0))
        return replace(
            info,
            container_count=containers,
            object_count=objects,
            bytes_used=used,
            metadata=dict(info.metadata),  # a copy, as the LMDB broker decodes a fresh one
        )

    def put_info(self, aid: bytes, info: AccountInfo) -> None:
        self._infos[aid] = replace(info, metadata=dict(info.metadata))

    def get_totals(self, aid: bytes) -> Totals | None:
        return self._totals.get(aid)

    def put_totals(self, aid: bytes, totals: Totals) -> None:
        self._totals[aid] = totals

    def get_row(self, aid: bytes, name: bytes) -> ContainerRow | None:
        row = self._live.setdefault(aid, SortedRows()).get(name)
        return row if row is not None else self._tombstones.setdefault(aid, {}).get(name)

    def put_row(self, aid: bytes, name: bytes, old: ContainerRow | None, new: ContainerRow) -> None:
        live = self._live.setdefault(aid, SortedRows())
        dead = self._tombstones.setdefault(aid, {})
        if new.deleted:
            dead[name] = new
            live.delete(name)
        else:
            live.put(name, new)
            dead.pop(name, None)

    def cursor(self, aid: bytes, view: RowView[ContainerRow, V]) -> SortedCursor[V]:
        return self._live.get(aid, SortedRows()).cursor(view.from_row)

    def rows_after(self, aid: bytes, after: bytes | None, limit: int) -> list[ContainerRow]:
        live = self._live.get(aid, SortedRows())
        dead = self._tombstones.get(aid, {})
        names = sorted({*(n for n, _ in live.cursor().ascending(b"")), *dead})
        chosen = [n for n in names if after is None or n > after][:limit]
        return [row for n in chosen for row in (live.get(n) or dead[n],)]

    def account_ids(self, after: bytes, limit: int) -> list[bytes]:
        return sorted(aid for aid in self._infos if aid > after)[:limit]

    def drop(self, aid: bytes) -> None:
        for table in (self._infos, self._totals, self._live, self._tombstones):
            table.pop(aid, None)
