"""The pass the container and account replicators share: Swift's db_replicator walk.

Per local device (one that holds the kind's LMDB file), per database (a container, an
account) in id order, ``per_s`` at most, ``concurrency`` at once: the database's partition
is its id's top ``part_power`` bits (the id is its placement digest); this device is one of
the partition's primaries if the ring names it at ``bind_ip``/``bind_port``.

- **A primary's database** is pushed to each other primary (replicator/db_replication.py).
  Rows only the other side holds are its replicator's to push, as in Swift: a round of every
  node's replicator converges.
- **A handoff's database** (not a primary here: a write that landed while a primary was down,
  or a partition a rebalance moved away) is pushed to every primary, and dropped here once
  all took everything, only if unchanged since it was read.

What differs per kind (how ids are listed, what a source and a peer are, how a database is
dropped) is a ``Databases`` (replicator/container_replicator.py, account_replicator.py); a
kind's daemon is a ``DbReplicator`` subclass naming it, its ``Databases`` and its ring, opened
by ``open_db_replicator`` with its broker (the same for both kinds: only those differ).
Before a database is read to push, the kind may ``reclaim`` what is past its reclaim age
(containers do: replicator/container_replicator.py), so what is reclaimed is never pushed.
Cancellation is safe at any await: a receiver commits each page with the point it reaches,
and a handoff's database is dropped only after every primary acknowledged all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from ring.device import Device as RingDevice
from ring.ring import Ring
from service.backend_client import BackendClient, open_backend_client
from service.config import ClusterConfig

from . import db_replication
from .config import DaemonConfig
from .daemon import Daemon
from .devices import local_devices
from .object_replication_local import is_local_device, local_ips
from .rings import RingFile
from .throttle import Throttle

R = TypeVar("R", bound="DbReplicator")
SCAN_PAGE = 1000  # database ids read per read transaction
HASH_BITS = 128


class ReplicatorConfig(Protocol):
    """What the pass reads of a db replicator's config (a ``DaemonConfig`` with these)."""

    bind_ip: str
    bind_port: int
    page_rows: int
    rows_per_s: float

    @property
    def databases_per_s(self) -> float:
        """Databases visited per second (``accounts_per_s``, ``containers_per_s``)."""


class Databases(Protocol):
    """One kind of database on this node's devices, as the pass needs it."""

    db_file: str  # the device's LMDB file: a device without it is skipped

    async def sender(self, device: str) -> str:
        """This device's replica id, hex (opens the device first)."""

    def ids(self, device: str, after: bytes, limit: int) -> list[bytes]: ...

    def snapshot(self, device: str, db_id: bytes) -> tuple[Any, int] | None:
        """(the database's info, its newest change) to push from; None if gone."""

    def source(self, device: str, db_id: bytes) -> db_replication.Source: ...

    def peer(self, node: RingDevice, partition: int, info: Any) -> db_replication.Peer: ...

    async def drop(self, device: str, db_id: bytes, seen: tuple[Any, int]) -> bool:
        """Remove a handoff's database if still as ``seen``; whether it was removed."""


class BrokerDatabases:
    """What a kind's ``Databases`` does alike over its broker: the rest (how ids are listed,
    the source, the peer, the drop: other broker methods) is the kind's subclass."""

    def __init__(self, broker: Any, client: BackendClient) -> None:
        self._broker = broker
        self._client = client

    def snapshot(self, device: str, db_id: bytes) -> tuple[Any, Any] | None:
        info, newest = self._broker.replication_source(device, db_id)
        return None if info is None else (info, newest)


@dataclass
class DbReplicatorStats:
    devices: int = 0  # devices visited
    databases: int = 0  # containers (accounts) visited, primaries and handoffs
    handoffs: int = 0  # of which on a handoff device
    pushes: int = 0  # (database, peer) pushes completed
    full_copies: int = 0  # of which full copies (the peer had no sync point for us)
    rows_pushed: int = 0  # rows sent
    handoffs_removed: int = 0  # handoff databases every primary holds, dropped here
    rows_reclaimed: int = 0  # tombstone rows older than reclaim_age removed (containers)
    databases_reclaimed: int = 0  # deleted databases older than reclaim_age dropped (same)
    failures: int = 0  # pushes that did not complete (a peer down, an error answer)
    errors: int = 0  # devices or databases whose work raised


class DbReplicator(Daemon[DbReplicatorStats]):
    """The daemon of one kind of database: a subclass sets ``name``, ``ring_file`` and
    ``databases`` (how its ``Databases`` are made from the kind's broker and a client)."""

    ring_file: ClassVar[str]  # in the cluster's ring_dir: "account.ring", "container.ring"
    databases: ClassVar[Callable[[Any, BackendClient], Databases]]

    def __init__(
        self,
        config: DaemonConfig,
        broker: Any,
        client: BackendClient,
        ring: RingFile,
        *,
        db_throttle: Throttle | None = None,
        row_throttle: Throttle | None = None,
        my_ips: frozenset[str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(wall_clock=wall_clock)  # also what reclaim ages are measured by
        self.config = config
        self._dbs = self.databases(broker, client)
        self._ring = ring
        self._my_ips = local_ips() if my_ips is None else my_ips
        self._db_throttle = db_throttle or Throttle(self._rconfig.databases_per_s)
        self._row_throttle = row_throttle or Throttle(self._rconfig.rows_per_s)

    @property
    def _rconfig(self) -> ReplicatorConfig:
        return self.config  # type: ignore[return-value]  # every db replicator config has them

    async def sweep(self) -> DbReplicatorStats:
        stats = DbReplicatorStats()
        ring = self._ring.get()
        if ring is None:
            self.log.warning("%s: no ring; nothing to do", self.name)
            stats.errors += 1
            return stats
        devices, stats.errors = await asyncio.to_thread(
            local_devices,
            self.config.devices,
            self._dbs.db_file,
            mount_check=self.config.mount_check,
        )
        for device in devices:
            stats.devices += 1
            try:
                await self._device_pass(ring, device, stats)
            except Exception:
                stats.errors += 1
                self.log.exception("%s: device %s failed", self.name, device)
        return stats

    async def _device_pass(self, ring: Ring, device: str, stats: DbReplicatorStats) -> None:
        sender = await self._dbs.sender(device)
        slots = asyncio.Semaphore(self.config.concurrency)

        async def one(db_id: bytes) -> None:
            try:
                await self.replicate_db(ring, device, sender, db_id, stats)
            except Exception:
                stats.errors += 1
                self.log.exception("%s: %s/%s failed", self.name, device, db_id.hex())
            finally:
                slots.release()

        after = b""
        async with asyncio.TaskGroup() as tasks:
            while True:
                ids = await asyncio.to_thread(self._dbs.ids, device, after, SCAN_PAGE)
                for db_id in ids:
                    await slots.acquire()  # released by the task: never more tasks than slots
                    await self._db_throttle.wait()
                    tasks.create_task(one(db_id))
                if len(ids) < SCAN_PAGE:
                    break
                after = ids[-1]

    async def replicate_db(
        self, ring: Ring, device: str, sender: str, db_id: bytes, stats: DbReplicatorStats
    ) -> None:
        # Before the snapshot, as Swift's _reclaim: what is reclaimed is never pushed.
        if await self.reclaim(device, db_id, stats):
            return  # the whole database was past its reclaim age: nothing left to push
        seen = await asyncio.to_thread(self._dbs.snapshot, device, db_id)
        if seen is None:
            return  # dropped since the scan
        stats.databases += 1
        partition = int.from_bytes(db_id, "big") >> (HASH_BITS - ring.part_power)
        primaries = ring.get_part_nodes(partition)
        is_local = [self._is_local(node, device) for node in primaries]
        targets = [n for n, mine in zip(primaries, is_local, strict=True) if not mine]
        results = await asyncio.gather(
            *(
                self._push(node, device, partition, sender, db_id, seen[0], stats)
                for node in targets
            )
        )
        if not any(is_local):
            stats.handoffs += 1
            if all(results) and await self._dbs.drop(device, db_id, seen):
                stats.handoffs_removed += 1

    async def reclaim(self, device: str, db_id: bytes, stats: DbReplicatorStats) -> bool:
        """Remove what the database keeps past its reclaim age; whether the database itself
        went.  A kind that reclaims (replicator/container_replicator.py) overrides this; the
        others keep everything."""
        return False

    async def _push(
        self,
        node: RingDevice,
        device: str,
        partition: int,
        sender: str,
        db_id: bytes,
        info: Any,
        stats: DbReplicatorStats,
    ) -> bool:
        peer = self._dbs.peer(node, partition, info)
        source = self._dbs.source(device, db_id)
        try:
            pushed = await db_replication.push(
                source,
                peer,
                sender,
                page_rows=self._rconfig.page_rows,
                pace=self._row_throttle.wait,
            )
        except db_replication.PeerFailed as exc:
            stats.failures += 1
            self.log.warning("%s: %s", self.name, exc)
            return False
        if pushed is None:
            return False  # dropped locally meanwhile: nothing to vouch for
        stats.pushes += 1
        stats.full_copies += pushed.full_copy
        stats.rows_pushed += pushed.rows
        return True

    def _is_local(self, node: RingDevice, device: str) -> bool:
        config = self._rconfig
        return is_local_device(
            node, device, bind_ip=config.bind_ip, bind_port=config.bind_port, my_ips=self._my_ips
        )


@contextlib.asynccontextmanager
async def open_db_replicator(
    daemon: type[R],
    open_broker: Callable[..., Any],
    config: DaemonConfig,
    cluster: ClusterConfig,
) -> AsyncIterator[R]:
    """``daemon`` with its broker (``open_broker(devices, secret, mount_check=...)``), client
    and ring, closed on exit: ``torus serve account-replicator|container-replicator``."""
    secret = cluster.hash_path_secret.encode("utf-8")
    broker = open_broker(str(config.devices), secret, mount_check=config.mount_check)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            ring = RingFile(cluster.ring_dir / daemon.ring_file, secret)
            yield daemon(config, broker, client, ring)
    finally:
        await asyncio.to_thread(broker.close)
