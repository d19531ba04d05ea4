"""The container updater: keeps the account listings' per-container totals current.

A container server reports a container's row to its account replicas when the container is
PUT or DELETEd (containerd_/account_update.py), not on every object row: an object PUT would
otherwise cost a call to three account servers.  So the account's object count and bytes
used lag until this daemon reports them.  Each pass, for every local device:

1. replays the account reports container servers could not deliver (their async_pendings,
   replicator/replay.py);
2. walks the device's containers and reports each one whose record or totals changed since
   it was last reported (its fingerprint, replicator/reported.py), to every account replica
   of its account, at most ``reports_per_s`` a second.  The reported point is recorded only
   once every replica took the report (no account replicator exists yet to carry it to one
   that missed it); otherwise the next pass tries again.  An unchanged container costs two
   LMDB reads and a hash, no request and no write.

Every replica of a container reports, as in Swift: the account keeps the report with the
greatest stats version (accountd/rows.py), so replicas that hold the same rows agree, and
one that missed rows cannot undo a fresher one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from containerd_.account_update import report_headers
from ring.device import Device as RingDevice
from ring.ring import Ring
from service.backend_client import BackendClient, BackendUnavailable, open_backend_client
from service.config import ClusterConfig

from .config import ContainerUpdaterConfig
from .container_dbs import DB_FILE, ContainerDbs, ContainerEntry
from .daemon import Daemon
from .devices import local_devices
from .replay import Replayer, ReplayStats
from .reported import ReportedPoints
from .rings import RingFile
from .throttle import Throttle

PAGE_SIZE = 1000  # containers read per transaction


@dataclass
class ContainerUpdaterStats(ReplayStats):  # found ... bad: the async_pendings replayed
    devices: int = 0  # devices visited
    errors: int = 0  # devices that could not be used, or whose pass failed
    containers: int = 0  # containers seen
    unchanged: int = 0  # ...that needed no report
    reported: int = 0  # reports every account replica took
    report_failures: int = 0  # reports some replica did not take: sent again next pass


class ContainerUpdater(Daemon[ContainerUpdaterStats]):
    name = "container-updater"

    def __init__(
        self,
        config: ContainerUpdaterConfig,
        dbs: ContainerDbs,
        reported: ReportedPoints,
        client: BackendClient,
        account_ring: RingFile,
        *,
        rng: random.Random | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._dbs = dbs
        self._reported = reported
        self._client = client
        self._account_ring = account_ring
        self.throttle = throttle if throttle is not None else Throttle(config.reports_per_s)
        self._user_agent = f"{self.name} {os.getpid()}"
        self._replayer = Replayer(
            dbs,
            client,
            self.throttle,
            user_agent=self.name,
            concurrency=config.concurrency,
            ring=account_ring.get,
            rng=rng,
        )

    async def sweep(self) -> ContainerUpdaterStats:
        stats = ContainerUpdaterStats()
        devices, stats.errors = await asyncio.to_thread(
            local_devices, self.config.devices, DB_FILE, mount_check=self.config.mount_check
        )
        for device in devices:
            stats.devices += 1
            try:
                stats.add(await self._replayer.replay_device(device))
                await self._report_device(device, stats)
            except Exception:
                stats.errors += 1
                self.log.exception("container-updater: device %s failed", device)
        return stats

    async def _report_device(self, device: str, stats: ContainerUpdaterStats) -> None:
        ring = self._account_ring.get()
        if ring is None:
            raise RuntimeError(f"no account ring at {self._account_ring.path}")
        slots = asyncio.Semaphore(self.config.concurrency)
        after = b""
        while True:
            page = await asyncio.to_thread(self._dbs.scan, device, after=after, limit=PAGE_SIZE)
            if not page:
                return
            after = page[-1].cid
            fingerprints = {entry.cid: entry.fingerprint() for entry in page}
            known = await asyncio.to_thread(self._reported.get_many, device, fingerprints)
            changed = [entry for entry in page if known.get(entry.cid) != fingerprints[entry.cid]]
            stats.containers += len(page)
            stats.unchanged += len(page) - len(changed)
            landed: dict[bytes, bytes] = {}
            async with asyncio.TaskGroup() as group:
                for entry in changed:
                    await self.throttle.wait()
                    await slots.acquire()
                    task = group.create_task(self._report(entry, ring, stats, landed))
                    task.add_done_callback(lambda _: slots.release())
            if landed:
                await self._reported.put_many(device, landed)

    async def _report(
        self,
        entry: ContainerEntry,
        ring: Ring,
        stats: ContainerUpdaterStats,
        landed: dict[bytes, bytes],
    ) -> None:
        try:
            info = entry.info()
        except ValueError as exc:
            self.log.error("container %s cannot be read: %s", entry.cid.hex(), exc)
            stats.report_failures += 1
            return
        partition, nodes = ring.get_nodes(info.account)
        headers = {**report_headers(info, {}), "User-Agent": self._user_agent}
        path = f"/{info.account}/{info.container}"
        async with asyncio.TaskGroup() as group:
            sends = [
                group.create_task(self._send(node, partition, path, headers)) for node in nodes
            ]
        if all(send.result() for send in sends):
            landed[entry.cid] = entry.fingerprint()
            stats.reported += 1
        else:
            stats.report_failures += 1

    async def _send(
        self, node: RingDevice, partition: int, path: str, headers: dict[str, str]
    ) -> bool:
        ip, port, device = node.ip, node.port, node.device
        try:
            response = await self._client.request("PUT", ip, port, device, partition, path, headers)
        except BackendUnavailable as exc:
            self.log.info("report of %s not sent: %s", path, exc)
            return False
        if 200 <= response.status < 300:
            return True
        self.log.info(
            "report of %s refused: %d from %s:%d/%s", path, response.status, ip, port, device
        )
        return False


@contextlib.asynccontextmanager
async def open_container_updater(
    config: ContainerUpdaterConfig, cluster: ClusterConfig
) -> AsyncIterator[ContainerUpdater]:
    """The daemon with its databases and client, closed on exit
    (``torus serve container-updater``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    dbs = ContainerDbs(str(config.devices), mount_check=config.mount_check)
    reported = ReportedPoints(str(config.devices), mount_check=config.mount_check)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            ring = RingFile(cluster.ring_dir / "account.ring", secret)
            yield ContainerUpdater(config, dbs, reported, client, ring)
    finally:
        await asyncio.to_thread(dbs.close)
        await asyncio.to_thread(reported.close)
