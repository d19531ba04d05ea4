"""A device's container databases as the container updater reads them.

The container broker (containerd_/broker.py) keeps every container of a device in one LMDB
environment, ``<device>/containers.lmdb``, and offers no way to walk its containers; the
updater needs one, and a process must not open an environment twice.  So the updater opens
the environment itself, with the broker's table names and ``service.lmdb_devices`` as the
broker does, and reads the records and totals with containerd_/info.py's decoders: it writes
nothing there but the async_pending table (records it replayed), as the broker would.

Should containerd_ grow a public ``iter_containers(device, after, limit)`` (and the broker be
usable beside it), this module shrinks to a call of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import xxhash

from containerd_.broker import TABLES
from containerd_.info import NO_TOTALS, ContainerInfo, decode_record, decode_totals
from service import async_pending
from service.async_pending import AsyncPending
from service.lmdb_devices import DeviceEnvs

DB_FILE = "containers.lmdb"  # containerd_/broker.py's name for a device's environment
RECORDS, TOTALS, PENDING = "containers", "totals", async_pending.TABLE.decode("ascii")


@dataclass(frozen=True, slots=True)
class ContainerEntry:
    """One container as stored: its id (the 16-byte name hash), info record and totals."""

    cid: bytes
    record: bytes
    totals: bytes | None

    def info(self) -> ContainerInfo:
        """Decoded (ValueError if this code cannot read it)."""
        totals = NO_TOTALS if self.totals is None else decode_totals(self.totals)
        return decode_record(self.record, totals)

    def fingerprint(self) -> bytes:
        """8 bytes that change when anything stored for the container changes: comparing
        them finds the containers to report without decoding the others."""
        totals = self.totals or b""
        digest = xxhash.xxh3_64(len(self.record).to_bytes(4, "big") + self.record + totals)
        return digest.digest()


class ContainerDbs:
    def __init__(self, devices_root: str, *, mount_check: bool, max_batch: int = 64) -> None:
        self._envs = DeviceEnvs(
            devices_root, DB_FILE, TABLES, max_batch=max_batch, mount_check=mount_check
        )

    def scan(self, device: str, *, after: bytes = b"", limit: int = 1000) -> list[ContainerEntry]:
        """Up to ``limit`` containers with ids after ``after``, in id order.  A page at a time,
        so no read transaction stays open while the updater talks to account servers."""
        page: list[ContainerEntry] = []
        with self._envs.reading(device) as (txn, opened):
            totals_table = opened.tables[TOTALS]
            cursor = txn.cursor(db=opened.tables[RECORDS])
            found = cursor.set_range(after)
            if found and after and cursor.key() == after:
                found = cursor.next()
            while found and len(page) < limit:
                cid, record = cursor.item()
                page.append(ContainerEntry(cid, record, txn.get(cid, db=totals_table)))
                found = cursor.next()
        return page

    # -- the container servers' async_pendings (failed account reports): a PendingStore --

    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]:
        opened = self._envs.get(device)
        return async_pending.list_pending(
            opened.env, opened.tables[PENDING], after=after, limit=limit
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

    async def delete_async_pending(self, device: str, key: bytes) -> bool:
        return await self._envs.write(
            device, lambda txn, opened: txn.delete(key, db=opened.tables[PENDING])
        )

    def close(self) -> None:
        self._envs.close()
