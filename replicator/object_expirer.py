"""The object expirer: deletes objects whose X-Delete-At has passed, and their listing rows.

Object servers record every object written with an X-Delete-At in the expirer's queue, rows
in the container servers (objectd/container_update.py; an async_pending, replayed by the
object updater, when a queue replica is down).  Each pass, per local device holding a
``containers.lmdb``:

1. the queue buckets (one a day) it holds whose day has begun (replicator/object_expirer_queue.py);
2. for each, the due rows (``delete_at <= now``), a page at a time from the bucket's
   replicas, the local one first;
3. each row is handled by one of the bucket's replicas, the one its name hashes to, so the
   nodes holding a bucket share its rows instead of each deleting every object; a row overdue
   by more than ``takeover_s`` is handled by every replica that lists it (the chosen one's
   node may be down for good; deleting twice is harmless);
4. handling a row: a DELETE of the object on every replica at the delete-at time with
   ``X-If-Delete-At`` (replicator/object_expirer_delete.py), then, once no replica failed,
   the row's removal from every replica of the bucket.

Cancellation-safe at every await: the row goes only after every object replica answered, so
a pass cut short leaves rows that the next pass handles again (a second DELETE is a 409 or a
412, which counts as done).  At most ``tasks_per_s`` rows a second, ``concurrency`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import xxhash

from ring.device import Device
from ring.ring import Ring
from service.backend_client import BackendClient, open_backend_client
from service.config import ClusterConfig
from service.update_targets import EXPIRING_ACCOUNT

from .container_dbs import DB_FILE, ContainerDbs
from .daemon import Daemon
from .devices import local_devices
from .object_expirer_config import ObjectExpirerConfig
from .object_expirer_delete import Outcome, delete_headers, delete_object
from .object_expirer_queue import QueueRow, list_page, local_buckets, parse_row, remove_row
from .object_replication_local import is_local_device, local_ips
from .rings import RingFile
from .throttle import Throttle


@dataclass
class ObjectExpirerStats:
    devices: int = 0  # devices visited
    buckets: int = 0  # due queue buckets listed
    found: int = 0  # due rows this node handled
    deleted: int = 0  # objects deleted (a tombstone on at least one replica)
    stale: int = 0  # rows whose object was overwritten, deleted or never there
    failures: int = 0  # rows kept: some object replica did not take the DELETE
    removed: int = 0  # rows removed from every replica of their bucket
    remove_failures: int = 0  # rows whose removal some bucket replica did not take
    skipped: int = 0  # due rows left to another replica of their bucket
    bad: int = 0  # rows whose name is not a queue row's (left alone)
    errors: int = 0  # devices or buckets that could not be read


@dataclass(frozen=True)
class Rings:
    obj: Ring
    container: Ring


class ObjectExpirer(Daemon[ObjectExpirerStats]):
    name = "object-expirer"

    def __init__(
        self,
        config: ObjectExpirerConfig,
        dbs: ContainerDbs,
        client: BackendClient,
        object_ring: RingFile,
        container_ring: RingFile,
        *,
        throttle: Throttle | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.config = config
        self.throttle = throttle if throttle is not None else Throttle(config.tasks_per_s)
        self._dbs = dbs
        self._client = client
        self._object_ring = object_ring
        self._container_ring = container_ring
        self._now = now
        self._user_agent = f"{self.name} {os.getpid()}"
        self._my_ips = local_ips()

    async def sweep(self) -> ObjectExpirerStats:
        stats = ObjectExpirerStats()
        object_ring, container_ring = self._object_ring.get(), self._container_ring.get()
        if object_ring is None or container_ring is None:
            self.log.error("object-expirer: no object or container ring; nothing done")
            stats.errors += 1
            return stats
        rings = Rings(object_ring, container_ring)
        devices, stats.errors = await asyncio.to_thread(
            local_devices, self.config.devices, DB_FILE, mount_check=self.config.mount_check
        )
        now_s = self._now()
        done: set[str] = set()  # buckets listed already (two local devices may hold one)
        for device in devices:
            stats.devices += 1
            try:
                buckets = await asyncio.to_thread(local_buckets, self._dbs, device, now_s)
            except Exception:
                stats.errors += 1
                self.log.exception("object-expirer: device %s failed", device)
                continue
            for bucket in buckets:
                if bucket in done:
                    continue
                done.add(bucket)
                try:
                    await self._expire_bucket(rings, device, bucket, now_s, stats)
                except Exception:
                    stats.errors += 1
                    self.log.exception("object-expirer: bucket %s failed", bucket)
        return stats

    async def _expire_bucket(
        self, rings: Rings, device: str, bucket: str, now_s: float, stats: ObjectExpirerStats
    ) -> None:
        partition, nodes = rings.container.get_nodes(EXPIRING_ACCOUNT, bucket)
        mine = [i for i, node in enumerate(nodes) if self._is_local(node)]
        ordered = [nodes[i] for i in mine] + [n for i, n in enumerate(nodes) if i not in mine]
        stats.buckets += 1
        slots = asyncio.Semaphore(self.config.concurrency)
        marker = ""
        while True:
            names = await list_page(self._client, partition, ordered, bucket, marker)
            if names is None:
                stats.errors += 1
                return
            if not names:
                return
            marker = names[-1]
            async with asyncio.TaskGroup() as group:
                for name in names:
                    row = parse_row(name)
                    if row is None:
                        stats.bad += 1
                        continue
                    if row.delete_at > now_s:
                        return  # rows list in delete-at order: the rest are not due
                    if not self._is_mine(row, len(nodes), mine, now_s):
                        stats.skipped += 1
                        continue
                    stats.found += 1
                    await self.throttle.wait()
                    await slots.acquire()
                    task = group.create_task(
                        self._expire_row(rings, partition, nodes, bucket, row, stats)
                    )
                    task.add_done_callback(lambda _: slots.release())

    def _is_local(self, node: Device) -> bool:
        """Whether ``node`` is one of this node's container devices (bind_ip, bind_port)."""
        return is_local_device(
            node,
            node.device,
            bind_ip=self.config.bind_ip,
            bind_port=self.config.bind_port,
            my_ips=self._my_ips,
        )

    def _is_mine(self, row: QueueRow, replicas: int, mine: list[int], now_s: float) -> bool:
        if now_s - row.delete_at > self.config.takeover_s:
            return True
        if not mine:  # no local primary (a handoff, or bind_* not set): only overdue rows
            return False
        chosen = xxhash.xxh3_64_intdigest(row.name.encode("utf-8")) % replicas
        return chosen in mine

    async def _expire_row(
        self,
        rings: Rings,
        queue_partition: int,
        queue_nodes: list[Device],
        bucket: str,
        row: QueueRow,
        stats: ObjectExpirerStats,
    ) -> None:
        partition, nodes = rings.obj.get_nodes(row.account, row.container, row.obj)
        cpart, cnodes = rings.container.get_nodes(row.account, row.container)
        headers = delete_headers(row, cpart, cnodes, len(nodes))
        for h in headers:
            h["User-Agent"] = self._user_agent
        outcome = await delete_object(self._client, row, partition, nodes, headers)
        if outcome is Outcome.FAILED:
            stats.failures += 1
            return
        if outcome is Outcome.DELETED:
            stats.deleted += 1
        else:
            stats.stale += 1
        removed = await remove_row(
            self._client,
            queue_partition,
            queue_nodes,
            bucket,
            row.name,
            user_agent=self._user_agent,
        )
        if removed:
            stats.removed += 1
        else:
            stats.remove_failures += 1


@contextlib.asynccontextmanager
async def open_object_expirer(
    config: ObjectExpirerConfig, cluster: ClusterConfig
) -> AsyncIterator[ObjectExpirer]:
    """The daemon with its container databases, client and rings, closed on exit
    (``torus serve object-expirer``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    dbs = ContainerDbs(str(config.devices), mount_check=config.mount_check)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            object_ring = RingFile(cluster.ring_dir / "object.ring", secret)
            container_ring = RingFile(cluster.ring_dir / "container.ring", secret)
            yield ObjectExpirer(config, dbs, client, object_ring, container_ring)
    finally:
        await asyncio.to_thread(dbs.close)
