"""The container broker: every container of a device in one LMDB environment.

``<devices_root>/<device>/containers.lmdb`` holds four tables, keyed by the container id
(the 16-byte ``hash_path(secret, account, container)``):

- ``containers``: id → the info record (names, timestamps, metadata; ``info.py``);
- ``totals``: id → object count and bytes used, updated with every row change;
- ``objects``: id | name → the live object row (``rows.py``), in byte order of the names;
- ``tombstones``: the same for deleted rows, kept apart so listings never walk them.

Reads run in the caller's thread; writes go through the device's group-commit writer, each
in a nested transaction, so a row, the totals it changes and nothing else commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import lmdb

from service.listing_tables import ListingTable, LmdbCursor
from service.lmdb_devices import DEFAULT_MAP_SIZE_BYTES, DeviceEnvs

from . import rows
from .broker_base import ContainerBrokerBase, ContainerStore
from .info import ContainerInfo, decode_record, decode_totals, encode_record, encode_totals
from .rows import ObjectRow

T = TypeVar("T")
TABLES = ("containers", "totals", "objects", "tombstones")


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

    def close(self) -> None:
        self._envs.close()


def _decode_row(name: bytes, value: bytes) -> ObjectRow:
    return rows.decode(name.decode("utf-8"), value)


class _LmdbStore:
    def __init__(self, txn: lmdb.Transaction, tables: dict[str, Any]) -> None:
        self._txn = txn
        self._records = tables["containers"]
        self._totals = tables["totals"]
        self._objects = ListingTable(tables["objects"])
        self._tombstones = ListingTable(tables["tombstones"])

    def get_info(self, cid: bytes) -> ContainerInfo | None:
        record = self._txn.get(cid, db=self._records)
        if record is None:
            return None
        return decode_record(record, self.get_totals(cid) or (0, 0))

    def put_info(self, cid: bytes, info: ContainerInfo) -> None:
        self._txn.put(cid, encode_record(info), db=self._records)

    def get_totals(self, cid: bytes) -> tuple[int, int] | None:
        value = self._txn.get(cid, db=self._totals)
        return None if value is None else decode_totals(value)

    def put_totals(self, cid: bytes, object_count: int, bytes_used: int) -> None:
        self._txn.put(cid, encode_totals(object_count, bytes_used), db=self._totals)

    def get_row(self, cid: bytes, name: bytes) -> ObjectRow | None:
        value = self._objects.get(self._txn, cid, name)
        if value is None:
            value = self._tombstones.get(self._txn, cid, name)
        return None if value is None else _decode_row(name, value)

    def put_row(self, cid: bytes, name: bytes, old: ObjectRow | None, new: ObjectRow) -> None:
        table, other = (
            (self._tombstones, self._objects) if new.deleted else (self._objects, self._tombstones)
        )
        table.put(self._txn, cid, name, rows.encode(new))
        if old is not None and old.deleted != new.deleted:
            other.delete(self._txn, cid, name)

    def cursor(self, cid: bytes) -> LmdbCursor[ObjectRow]:
        return self._objects.cursor(self._txn, cid, _decode_row)
