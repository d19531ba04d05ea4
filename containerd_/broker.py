"""The container broker: every container of a device in one LMDB environment.

``<devices_root>/<device>/containers.lmdb`` holds four tables keyed by the container id
(the 16-byte ``hash_path(secret, account, container)``), read and written as
service/db_broker_lmdb.py says, and more:

- ``containers``: id → the info record (names, timestamps, metadata; ``info.py``);
- ``totals``: id → object count, bytes used and stats version, updated with every row change;
- ``objects``: id | name → the live object row (``rows.py``), in byte order of the names;
- ``tombstones``: the same for deleted rows, kept apart so listings never walk them;
- ``async_pending``: account updates that failed (service/async_pending.py), for the updater;
- ``changes``, ``change_index``, ``sync_points``, ``replica``: what replication resumes from
  (containerd_/changes.py), noted in the same transaction as the row change.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import lmdb

from service import async_pending
from service.async_pending import AsyncPending
from service.db_broker_lmdb import LmdbDbBroker, LmdbRowsStore

from . import info, rows
from .broker_base import ContainerBrokerBase, ContainerStore, NotedRows
from .changes import CHANGE_TABLES, ChangeLog
from .info import NO_TOTALS, ContainerInfo, Totals
from .listing_views import decode_stored
from .rows import ObjectRow

PENDING = async_pending.TABLE.decode("ascii")
TABLES = ("containers", "totals", "objects", "tombstones", PENDING, *CHANGE_TABLES)


class _LmdbStore(NotedRows, LmdbRowsStore[ContainerInfo, ObjectRow, Totals]):
    info_table, rows_table = TABLES[0], TABLES[2]
    no_totals = NO_TOTALS
    decode_record = staticmethod(info.decode_record)
    encode_record = staticmethod(info.encode_record)
    decode_totals = staticmethod(info.decode_totals)
    encode_totals = staticmethod(info.encode_totals)
    decode_row = staticmethod(decode_stored)
    encode_row = staticmethod(rows.encode)

    def __init__(self, txn: lmdb.Transaction, tables: dict[str, Any]) -> None:
        super().__init__(txn, tables)
        self.changes = ChangeLog(txn, tables)

    # -- reclaim (reclaim.py) --

    def tombstones_after(self, cid: bytes, start: bytes, limit: int) -> list[ObjectRow]:
        """Up to ``limit`` of the container's tombstones named ``start`` or after, in order."""
        found = self._tombstones.cursor(self._txn, cid, self.decode_row).ascending(start)
        return [row for _, row in itertools.islice(found, limit)]

    def delete_tombstone(self, cid: bytes, name: bytes) -> None:
        self._tombstones.delete(self._txn, cid, name)


class ContainerBroker(LmdbDbBroker[ContainerStore], ContainerBrokerBase):
    file_name = "containers.lmdb"
    tables = TABLES
    store_type = _LmdbStore

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
