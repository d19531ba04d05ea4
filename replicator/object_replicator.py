"""The object replicator: keeps every partition's replicas the same, and moves handoffs home.

Each pass walks every local device's partitions (replicator/object_replication_store.py) in a
random order, ``partitions_per_s`` at most, ``concurrency`` at once:

- **A primary partition** (this device is one of its primaries in the object ring): REPLICATE
  to each other primary for its suffix hashes; the suffixes whose local hash differs are
  rehashed locally (a cached hash may be stale only by a write in flight, as in Swift) and
  compared again; the versions of those still differing are pushed (the missing check, then
  one streamed updates request: replicator/object_replication_push.py).  Suffixes only the
  other side holds are its replicator's to push.
- **A handoff partition** (not a primary here: a write that landed while a primary was down,
  or a partition a rebalance moved away): the same against every primary; once every primary
  took everything (or held newer), the versions pushed are dropped here, each only if still
  stored as it was read.  A handoff never counts as pushed on a quorum: a primary that misses
  a version would lose it when the handoff goes.

The local suffix hashes come from the engine in this process (it shares the device's LMDB
environment with the object server beside it), with this daemon's ``reclaim_age_s``: rehashing
a suffix drops its tombstones older than that.  Every ``full_rehash_every_passes`` passes
(and on the first pass, so ``--once`` always does) every suffix is rehashed.

Cancellation is safe at any await: an update is durable at the receiver before it is
counted, and a handoff version is dropped only after every primary acknowledged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from objectd.device import Device
from objectd.engine import ObjectEngine
from ring.device import Device as RingDevice
from ring.ring import Ring
from service.backend_client import BackendClient, BackendUnavailable
from service.config import ClusterConfig
from service.http11 import ConnectionPool

from . import object_replication_store as store
from .daemon import Daemon
from .devices import local_devices
from .object_replication_local import is_local_device, local_ips
from .object_replication_push import Pusher
from .object_replicator_config import ObjectReplicatorConfig
from .rings import RingFile
from .throttle import Throttle

INDEX_FILE = "objects.lmdb"


@dataclass
class ObjectReplicatorStats:
    devices: int = 0  # devices visited
    partitions: int = 0  # partitions visited (primaries and handoffs)
    handoffs: int = 0  # of which handoffs
    suffixes_pushed: int = 0  # (partition, replica, suffix) found differing and pushed
    objects_pushed: int = 0  # updates sent: PUTs, DELETEs, POSTs
    bytes_pushed: int = 0  # body bytes sent
    handoffs_removed: int = 0  # handoff partitions every primary holds, dropped here
    failures: int = 0  # replicas that could not be compared or pushed to
    errors: int = 0  # devices or partitions whose work raised


class ObjectReplicator(Daemon[ObjectReplicatorStats]):
    name = "object-replicator"

    def __init__(
        self,
        config: ObjectReplicatorConfig,
        engine: ObjectEngine,
        client: BackendClient,
        pool: ConnectionPool,
        ring: RingFile,
        *,
        partition_throttle: Throttle | None = None,
        byte_throttle: Throttle | None = None,
        my_ips: frozenset[str] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._engine = engine
        self._client = client
        self._ring = ring
        self._my_ips = local_ips() if my_ips is None else my_ips  # for bind_ip 0.0.0.0
        self._partitions = partition_throttle or Throttle(config.partitions_per_s)
        self._rng = random.Random()
        bytes_throttle = byte_throttle or Throttle(config.bytes_per_s)
        self._pusher = Pusher(engine, client, pool, bytes_throttle, user_agent=self.name)

    async def sweep(self) -> ObjectReplicatorStats:
        stats = ObjectReplicatorStats()
        ring = self._ring.get()
        if ring is None:
            self.log.warning("%s: no object ring; nothing to do", self.name)
            stats.errors += 1
            return stats
        devices, stats.errors = await asyncio.to_thread(
            local_devices, self.config.devices, INDEX_FILE, mount_check=self.config.mount_check
        )
        full_rehash = self.passes % self.config.full_rehash_every_passes == 0
        progress = _Progress(self, stats)
        for device in devices:
            stats.devices += 1
            try:
                dev = await store.device(self._engine, device)
                partitions = await asyncio.to_thread(store.partitions, dev)
                # In a random order, as Swift's replicator shuffles its jobs: passes start
                # together on every node, and in one order the surviving primaries of a
                # partition reach a wiped device together and push it the same data twice
                # (bench/restore.py measured 1.2-1.9x the bytes needed).
                self._rng.shuffle(partitions)
                progress.total += len(partitions)
                await self._device_pass(ring, device, dev, partitions, full_rehash, stats, progress)
            except Exception:
                stats.errors += 1
                self.log.exception("%s: device %s failed", self.name, device)
        return stats

    async def _device_pass(
        self,
        ring: Ring,
        device: str,
        dev: Device,
        partitions: list[int],
        full_rehash: bool,
        stats: ObjectReplicatorStats,
        progress: _Progress,
    ) -> None:
        slots = asyncio.Semaphore(self.config.concurrency)

        async def one(partition: int) -> None:
            try:
                await self.replicate_partition(ring, device, dev, partition, full_rehash, stats)
            except Exception:
                stats.errors += 1
                self.log.exception("%s: %s/%d failed", self.name, device, partition)
            finally:
                slots.release()
            progress.done += 1
            progress.maybe_log()

        async with asyncio.TaskGroup() as tasks:
            for partition in partitions:
                if partition >= ring.partition_count:
                    continue  # the ring shrank?  Nothing to push it to: left alone
                await slots.acquire()  # released by the task: never more tasks than slots
                await self._partitions.wait()
                tasks.create_task(one(partition))

    async def replicate_partition(
        self,
        ring: Ring,
        device: str,
        dev: Device,
        partition: int,
        full_rehash: bool,
        stats: ObjectReplicatorStats,
    ) -> None:
        stats.partitions += 1
        primaries = ring.get_part_nodes(partition)
        is_local = [self._is_local(node, device) for node in primaries]
        handoff = not any(is_local)
        # A handoff's versions are read before anything is compared: what is dropped at the
        # end is at most what was there then, and only if unchanged since.
        snapshot = await asyncio.to_thread(store.versions, dev, partition) if handoff else []
        recalculate: list[str] = []
        if full_rehash:
            recalculate = list(await self._engine.suffix_hashes(device, partition))
        local = await self._engine.suffix_hashes(device, partition, recalculate)
        targets = [n for n, mine in zip(primaries, is_local, strict=True) if not mine]
        results = await asyncio.gather(
            *(self._sync(node, device, dev, partition, local, stats) for node in targets)
        )
        if handoff:
            stats.handoffs += 1
            if all(results) and await store.remove_pushed(dev, partition, snapshot):
                stats.handoffs_removed += 1

    async def _sync(
        self,
        node: RingDevice,
        device: str,
        dev: Device,
        partition: int,
        local: dict[str, str],
        stats: ObjectReplicatorStats,
    ) -> bool:
        """Bring ``node``'s replica of the partition up to the local one; whether it is."""
        remote = await self._remote_hashes(node, partition)
        if remote is None:
            stats.failures += 1
            return False
        differ = [s for s, h in local.items() if remote.get(s) != h]
        if not differ:
            return True
        local = await self._engine.suffix_hashes(device, partition, differ)
        suffixes = {int(s, 16) for s in differ if s in local and remote.get(s) != local[s]}
        if not suffixes:
            return True
        versions = await asyncio.to_thread(store.versions, dev, partition, suffixes)
        result = await self._pusher.push(node, device, partition, [v.meta for v in versions])
        stats.suffixes_pushed += len(suffixes)
        stats.objects_pushed += result.objects
        stats.bytes_pushed += result.bytes
        if not result.ok:
            stats.failures += 1
        return result.ok

    async def _remote_hashes(self, node: RingDevice, partition: int) -> dict[str, str] | None:
        where = f"{node.replication_ip}:{node.replication_port}/{node.device}/{partition}"
        try:
            response = await self._client.request(
                "REPLICATE", node.replication_ip, node.replication_port, node.device, partition, ""
            )
        except BackendUnavailable as exc:
            self.log.warning("REPLICATE %s failed: %s", where, exc)
            return None
        if response.status != 200:
            self.log.warning("REPLICATE %s: %d", where, response.status)
            return None
        try:
            hashes = json.loads(response.body)
        except ValueError:
            hashes = None
        if not isinstance(hashes, dict):
            self.log.warning("REPLICATE %s: not a JSON object", where)
            return None
        return {str(k): str(v) for k, v in hashes.items()}

    def _is_local(self, node: RingDevice, device: str) -> bool:
        config = self.config
        return is_local_device(
            node, device, bind_ip=config.bind_ip, bind_port=config.bind_port, my_ips=self._my_ips
        )


class _Progress:
    """A log line every ``progress_interval_s`` of a long pass (a rebalance's moves)."""

    def __init__(self, daemon: ObjectReplicator, stats: ObjectReplicatorStats) -> None:
        self._daemon = daemon
        self._stats = stats
        self.total = 0
        self.done = 0
        self._started = self._last = time.monotonic()

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last < self._daemon.config.progress_interval_s:
            return
        self._last = now
        s = self._stats
        self._daemon.log.info(
            "%s: %d/%d partitions in %.0fs; %d suffixes, %d objects, %d bytes pushed, "
            "%d handoffs removed, %d failures",
            self._daemon.name,
            self.done,
            self.total,
            now - self._started,
            s.suffixes_pushed,
            s.objects_pushed,
            s.bytes_pushed,
            s.handoffs_removed,
            s.failures,
        )


@contextlib.asynccontextmanager
async def open_object_replicator(
    config: ObjectReplicatorConfig, cluster: ClusterConfig
) -> AsyncIterator[ObjectReplicator]:
    """The daemon with its engine, client and ring, closed on exit
    (``torus serve object-replicator``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    engine = ObjectEngine(
        str(config.devices),
        secret,
        mount_check=config.mount_check,
        reclaim_age_s=config.reclaim_age_s,
    )
    pool = ConnectionPool(max_connections=4 * config.concurrency)
    try:
        client = BackendClient(
            pool, conn_timeout_s=config.conn_timeout_s, node_timeout_s=config.node_timeout_s
        )
        ring = RingFile(cluster.ring_dir / "object.ring", secret)
        yield ObjectReplicator(config, engine, client, pool, ring)
    finally:
        await pool.close()
        await asyncio.to_thread(engine.close)
