"""The container replicator's pass in one process: four container servers (real apps over real
LMDB brokers) and a 3-replica container ring over them; the daemon of one node shares that
node's broker, as its process shares the device's environment with the server.

What is checked: a primary fills in the primaries that missed rows and a record; a handoff's
container goes home and is dropped only once every primary has it, never while a primary is
down; a pass with nothing changed sends no row.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from aiohttp import web
from replication_helpers import ServerCluster, running, ts

from containerd_.broker import ContainerBroker
from containerd_.errors import ContainerNotFound
from containerd_.server import build_app
from replicator.container_replicator import ContainerReplicator, ContainerReplicatorStats
from replicator.container_replicator_config import ContainerReplicatorConfig
from service.config import ClusterConfig, ContainerServerConfig

SECRET = "unit-secret"
ACCOUNT, CONTAINER = "AUTH_a", "c"


class Cluster(ServerCluster):
    ring_name = "container.ring"

    def __init__(self, root: Path) -> None:
        super().__init__(root, SECRET.encode())
        self.brokers: list[ContainerBroker] = self.stores
        self.primaries = self.nodes(self.ring.get_nodes(ACCOUNT, CONTAINER)[1])
        self.handoff = self.others(self.primaries)[0]

    def open_store(self, devices: str) -> ContainerBroker:
        return ContainerBroker(devices, SECRET.encode())

    def app(self, node: int) -> web.Application:
        return build_app(
            ContainerServerConfig(mount_check=False),
            ClusterConfig(SECRET),
            broker=self.brokers[node],
            rng=random.Random(node),
        )

    async def create(self, node: int, when: int = 1) -> None:
        await self.brokers[node].create(f"d{node}", ACCOUNT, CONTAINER, ts(when))

    async def put(self, node: int, name: str, when: int, size: int = 1) -> None:
        await self.brokers[node].put_object(
            f"d{node}", ACCOUNT, CONTAINER, name, ts(when), size, "text/plain", "e"
        )

    def listed(self, node: int) -> tuple[int, int, list[str]] | None:
        broker = self.brokers[node]
        try:
            info = broker.info(f"d{node}", ACCOUNT, CONTAINER)
        except ContainerNotFound:
            return None
        cid = broker._cid(ACCOUNT, CONTAINER)
        rows = broker.rows_after(f"d{node}", cid, None, 1000)
        return info.object_count, info.bytes_used, [r.name for r in rows if not r.deleted]

    async def replicate(self, node: int) -> ContainerReplicatorStats:
        config = ContainerReplicatorConfig(
            **self.daemon_options(node), containers_per_s=0, node_timeout_s=5.0, page_rows=2
        )
        return await self.run_db_replicator(ContainerReplicator, config, node)


def test_a_primary_fills_in_the_primaries_that_missed_rows(tmp_path: Path) -> None:
    async def test() -> None:
        async with running(Cluster(tmp_path)) as cluster:
            first, second, third = cluster.primaries
            for node in cluster.primaries:
                await cluster.create(node)
            for i in range(5):
                await cluster.put(first, f"o{i}", 10 + i, size=i)
            await cluster.put(second, "late", 30, size=7)  # only the second has it
            stats = await cluster.replicate(first)
            assert (stats.databases, stats.pushes, stats.full_copies) == (1, 2, 2)
            assert stats.rows_pushed == 10 and stats.failures == stats.errors == 0
            assert cluster.listed(third) == (5, 10, [f"o{i}" for i in range(5)])
            await cluster.replicate(second)
            expected = (6, 17, ["late", *(f"o{i}" for i in range(5))])
            assert all(cluster.listed(node) == expected for node in cluster.primaries)
            assert cluster.listed(cluster.handoff) is None
            stats = await cluster.replicate(first)  # echoes what it merged from second
            assert stats.rows_pushed == 2 and stats.full_copies == 0  # "late", to each
            stats = await cluster.replicate(first)
            assert stats.rows_pushed == 0 and stats.pushes == 2

    asyncio.run(test())


def test_a_handoff_goes_home_and_is_dropped_only_once_every_primary_has_it(
    tmp_path: Path,
) -> None:
    async def test() -> None:
        async with running(Cluster(tmp_path)) as cluster:
            handoff = cluster.handoff
            await cluster.create(handoff)
            for i in range(3):
                await cluster.put(handoff, f"o{i}", 10 + i)
            await cluster.stop(cluster.primaries[2])
            stats = await cluster.replicate(handoff)
            assert (stats.handoffs, stats.handoffs_removed, stats.failures) == (1, 0, 1)
            assert cluster.listed(handoff) == (3, 3, ["o0", "o1", "o2"])  # kept
            assert cluster.listed(cluster.primaries[0]) == (3, 3, ["o0", "o1", "o2"])

            await cluster.start(cluster.primaries[2])
            stats = await cluster.replicate(handoff)
            assert (stats.handoffs, stats.handoffs_removed, stats.failures) == (1, 1, 0)
            for node in cluster.primaries:
                assert cluster.listed(node) == (3, 3, ["o0", "o1", "o2"])
            assert cluster.listed(handoff) is None
            assert cluster.brokers[handoff].container_ids(f"d{handoff}") == []
            stats = await cluster.replicate(handoff)
            assert stats.databases == 0

    asyncio.run(test())
