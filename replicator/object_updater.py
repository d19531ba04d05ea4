"""The object updater: replays the container updates object servers could not deliver.

An object server that cannot tell every container replica about a PUT or DELETE in time keeps
the update as an async_pending on the object's device (objectd/container_update.py); until it
lands, the object is missing from some listings.  Each pass walks every local device's
async_pendings, oldest first, and replays them (replicator/replay.py: the targets, when a
record is deleted and why), at most ``updates_per_s`` a second.

It opens the devices through ``ObjectEngine`` — in its own process, which LMDB allows: its
writes wait for the object server's behind the environment's write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from objectd.engine import ObjectEngine
from service.backend_client import BackendClient, open_backend_client
from service.config import ClusterConfig

from .config import ObjectUpdaterConfig
from .daemon import Daemon
from .devices import local_devices
from .replay import PendingStore, Replayer, ReplayStats
from .rings import RingFile
from .throttle import Throttle

INDEX_FILE = "objects.lmdb"  # objectd/device.py: a device the object server has used


@dataclass
class ObjectUpdaterStats(ReplayStats):
    devices: int = 0  # devices visited
    errors: int = 0  # devices that could not be used, or whose pass failed


class ObjectUpdater(Daemon[ObjectUpdaterStats]):
    name = "object-updater"

    def __init__(
        self,
        config: ObjectUpdaterConfig,
        store: PendingStore,
        client: BackendClient,
        *,
        container_ring: RingFile | None = None,
        rng: random.Random | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.throttle = throttle if throttle is not None else Throttle(config.updates_per_s)
        self._replayer = Replayer(
            store,
            client,
            self.throttle,
            user_agent=self.name,
            concurrency=config.concurrency,
            ring=container_ring.get if container_ring is not None else lambda: None,
            rng=rng,
        )

    async def sweep(self) -> ObjectUpdaterStats:
        stats = ObjectUpdaterStats()
        devices, stats.errors = await asyncio.to_thread(
            local_devices, self.config.devices, INDEX_FILE, mount_check=self.config.mount_check
        )
        for device in devices:
            stats.devices += 1
            try:
                stats.add(await self._replayer.replay_device(device))
            except Exception:
                stats.errors += 1
                self.log.exception("object-updater: device %s failed", device)
        return stats


@contextlib.asynccontextmanager
async def open_object_updater(
    config: ObjectUpdaterConfig, cluster: ClusterConfig
) -> AsyncIterator[ObjectUpdater]:
    """The daemon with its engine and client, closed on exit (``torus serve object-updater``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    engine = ObjectEngine(str(config.devices), secret, mount_check=config.mount_check)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            ring = RingFile(cluster.ring_dir / "container.ring", secret)
            yield ObjectUpdater(config, engine, client, container_ring=ring)
    finally:
        await asyncio.to_thread(engine.close)
