"""The object replicator's pass in one process: four object servers (real apps over real LMDB
engines) and a 3-replica ring over them; the daemon of one node shares that node's engine.

What is checked: a handoff partition goes home and is dropped only once every primary has it;
a primary that cannot be reached keeps the handoff; a version written since the handoff was
read stays; a primary's replicator fills in a primary that missed a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from replication_helpers import NODES, ServerCluster, running

from objectd.engine import ObjectEngine
from objectd.errors import ObjectNotFound
from objectd.server import build_app
from replicator import object_replication_local as local
from replicator import object_replication_store as store
from replicator.object_replication_local import is_local_device
from replicator.object_replicator import ObjectReplicator, ObjectReplicatorStats
from replicator.object_replicator_config import ObjectReplicatorConfig
from ring.device import Device as RingDevice
from service.config import ClusterConfig, ObjectServerConfig
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = float(int(time.time()))


class Cluster(ServerCluster):
    ring_name = "object.ring"

    def __init__(self, root: Path) -> None:
        super().__init__(root, SECRET.encode())
        self.engines: list[ObjectEngine] = self.stores

    def open_store(self, devices: str) -> ObjectEngine:
        return ObjectEngine(devices, SECRET.encode())

    def app(self, node: int) -> web.Application:
        return build_app(
            ObjectServerConfig(mount_check=False),
            ClusterConfig(SECRET),
            engine=self.engines[node],
            rng=random.Random(node),
        )

    def placement(self, obj: str) -> tuple[int, list[int], int]:
        """(partition, primary nodes, a handoff node) of /AUTH_a/c/<obj>."""
        partition, primaries = self.ring.get_nodes("AUTH_a", "c", obj)
        nodes = self.nodes(primaries)
        return partition, nodes, self.others(nodes)[0]

    async def put(self, node: int, partition: int, obj: str, at: float, body: bytes) -> None:
        engine = self.engines[node]
        stamp = Timestamp.from_seconds(T0 + at)
        write = await engine.open_write(
            f"d{node}", partition, "AUTH_a", "c", obj, stamp, content_length=len(body)
        )
        await write.write(body)
        await write.commit("text/plain")

    def held(self, node: int, partition: int, obj: str) -> Timestamp | None:
        try:
            meta = self.engines[node].get(f"d{node}", partition, "AUTH_a", "c", obj)
        except ObjectNotFound as exc:
            return exc.timestamp
        return meta.timestamp

    @contextlib.asynccontextmanager
    async def replicator(self, node: int, **options: Any) -> AsyncIterator[ObjectReplicator]:
        config = ObjectReplicatorConfig(
            **self.daemon_options(node), partitions_per_s=0, node_timeout_s=5.0, **options
        )
        async with self.backend() as (pool, client):
            yield ObjectReplicator(config, self.engines[node], client, pool, self.ring_file())


def cluster_of(root: Path, up: range = range(NODES)) -> AbstractAsyncContextManager[Cluster]:
    return running(Cluster(root), up)


async def replicate(cluster: Cluster, node: int) -> ObjectReplicatorStats:
    async with cluster.replicator(node) as daemon:
        return await daemon.run_once()


def test_a_handoff_goes_home_and_is_dropped_once_every_primary_has_it(tmp_path: Path) -> None:
    async def test() -> None:
        async with cluster_of(tmp_path) as cluster:
            partition, primaries, handoff = cluster.placement("o")
            await cluster.put(handoff, partition, "o", 1, b"landed on a handoff")
            await cluster.put(primaries[0], partition, "o", 1, b"landed on a handoff")
            await cluster.stop(primaries[2])

            stats = await replicate(cluster, handoff)
            assert (stats.partitions, stats.handoffs, stats.handoffs_removed) == (1, 1, 0)
            assert stats.failures == 1  # the primary that is down
            assert cluster.held(handoff, partition, "o") is not None  # kept: not home yet
            assert cluster.held(primaries[1], partition, "o") is not None

            await cluster.start(primaries[2])
            stats = await replicate(cluster, handoff)
            assert (stats.handoffs, stats.handoffs_removed, stats.failures) == (1, 1, 0)
            for node in primaries:
                assert cluster.held(node, partition, "o") == Timestamp.from_seconds(T0 + 1)
            assert cluster.held(handoff, partition, "o") is None
            dev = await store.device(cluster.engines[handoff], f"d{handoff}")
            assert await asyncio.to_thread(store.partitions, dev) == []
            stats = await replicate(cluster, handoff)
            assert stats.partitions == 0

    asyncio.run(test())


def test_a_primary_fills_in_a_primary_that_missed_a_write(tmp_path: Path) -> None:
    async def test() -> None:
        async with cluster_of(tmp_path) as cluster:
            partition, primaries, handoff = cluster.placement("o")
            await cluster.put(primaries[0], partition, "o", 1, b"x" * 100_000)  # a data file
            stats = await replicate(cluster, primaries[0])
            assert stats.handoffs == 0 and stats.failures == 0
            assert stats.objects_pushed == 2 and stats.bytes_pushed == 200_000
            for node in primaries:
                assert cluster.held(node, partition, "o") is not None
            assert cluster.held(handoff, partition, "o") is None
            stats = await replicate(cluster, primaries[1])
            assert stats.objects_pushed == 0 and stats.suffixes_pushed == 0

    asyncio.run(test())


def test_a_handoff_version_written_since_it_was_read_stays(tmp_path: Path) -> None:
    async def test() -> None:
        async with cluster_of(tmp_path, up=range(0)) as cluster:
            partition, _primaries, handoff = cluster.placement("o")
            await cluster.put(handoff, partition, "o", 1, b"first")
            await cluster.put(handoff, partition, "p", 1, b"other")
            dev = await store.device(cluster.engines[handoff], f"d{handoff}")
            snapshot = await asyncio.to_thread(store.versions, dev, partition)
            await cluster.put(handoff, partition, "o", 2, b"newer, since the snapshot")
            assert not await store.remove_pushed(dev, partition, snapshot)
            assert cluster.held(handoff, partition, "o") == Timestamp.from_seconds(T0 + 2)
            assert cluster.held(handoff, partition, "p") is None

    asyncio.run(test())


def test_a_post_one_primary_missed_travels_alone_and_progress_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        async with cluster_of(tmp_path) as cluster:
            partition, primaries, _handoff = cluster.placement("o")
            for node in primaries:
                await cluster.put(node, partition, "o", 1, b"the same data everywhere")
            posted = Timestamp.from_seconds(T0 + 2)
            names = (f"d{primaries[0]}", partition, "AUTH_a", "c", "o")
            await cluster.engines[primaries[0]].post(
                *names, posted, "image/png", {"X-Object-Meta-Color": "red"}
            )
            async with cluster.replicator(primaries[0], progress_interval_s=1e-9) as daemon:
                with caplog.at_level(logging.INFO, logger="torus.object-replicator"):
                    stats = await daemon.run_once()
            assert stats.objects_pushed == 2 and stats.bytes_pushed == 0  # two POSTs
            for node in primaries:
                meta = cluster.engines[node].get(f"d{node}", partition, "AUTH_a", "c", "o")
                assert (meta.meta_timestamp, meta.content_type) == (posted, "image/png")
                assert meta.user_meta == {"X-Object-Meta-Color": "red"}
            assert "1/1 partitions in" in caplog.text

    asyncio.run(test())


def test_which_ring_devices_are_this_nodes() -> None:
    def dev(ip: str, port: int, name: str = "sda") -> RingDevice:
        return RingDevice(0, 1, 1, ip, port, name, 1.0, ip, port)

    mine = frozenset({"127.0.0.1", "10.0.0.5", "fd00::2"})
    check = functools.partial(is_local_device, bind_port=6200, my_ips=mine)
    assert check(dev("10.0.0.5", 6200), "sda", bind_ip="0.0.0.0")
    assert check(dev("fd00:0::2", 6200), "sda", bind_ip="::")
    assert not check(dev("10.0.0.6", 6200), "sda", bind_ip="0.0.0.0")  # another host's sda
    assert not check(dev("10.0.0.5", 6201), "sda", bind_ip="0.0.0.0")  # another server
    assert not check(dev("10.0.0.5", 6200, "sdb"), "sda", bind_ip="0.0.0.0")
    assert check(dev("10.0.0.6", 6200), "sda", bind_ip="10.0.0.6")  # bound: taken as given
    assert not check(dev("10.0.0.5", 6200), "sda", bind_ip="10.0.0.6")


def test_local_addresses_from_proc() -> None:
    fib_trie = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
           |-- 192.0.2.2
              /32 host LOCAL
"""
    assert local._fib_trie_ipv4(fib_trie) == {"127.0.0.1", "192.0.2.2"}
    if_inet6 = "fd000000000000000000000000000002 04 40 00 82     eth0\n"
    assert {local._normal(ip) for ip in local._if_inet6(if_inet6)} == {"fd00::2"}
    assert "127.0.0.1" in local.local_ips()


def test_a_rebalance_moves_a_drained_devices_partitions_to_their_new_primaries(
    tmp_path: Path,
) -> None:
    async def test() -> None:
        async with cluster_of(tmp_path) as cluster:
            partition, primaries, handoff = cluster.placement("o")
            for node in primaries:
                await cluster.put(node, partition, "o", 1, b"moving house")
            drained = primaries[0]
            cluster.builder.set_dev_weight(drained, 0.0)  # device ids are the node numbers
            cluster.builder.pretend_min_part_hours_passed()
            cluster.builder.rebalance(seed=2)
            cluster.write_ring()
            new_primaries = [
                cluster.ports.index(d.port) for d in cluster.ring.get_part_nodes(partition)
            ]
            assert drained not in new_primaries and handoff in new_primaries

            stats = await replicate(cluster, drained)
            assert (stats.handoffs, stats.handoffs_removed, stats.failures) == (1, 1, 0)
            assert stats.objects_pushed == 1  # only the new primary lacked it
            for node in new_primaries:
                assert cluster.held(node, partition, "o") == Timestamp.from_seconds(T0 + 1)
            assert cluster.held(drained, partition, "o") is None

    asyncio.run(test())
