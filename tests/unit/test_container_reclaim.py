"""Reclaim (containerd_/reclaim.py): a container's tombstones older than reclaim_age go, in
bounded write transactions, and replication stays whole: totals unchanged, the change log
and sync points still right, a reclaimed row never pushed back.

The broker tests run over the real LMDB broker and its memory twin; the replicator tests
over real container servers (replication_helpers.ServerCluster), with the daemon's wall
clock set by the test.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from replication_helpers import ServerCluster, running, ts

from containerd_.broker import TABLES, ContainerBroker
from containerd_.broker_base import ContainerBrokerBase
from containerd_.errors import ContainerNotEmpty
from containerd_.memory import MemoryContainerBroker
from containerd_.reclaim import old_tombstones, reclaim_rows
from containerd_.server import build_app
from replicator import db_audit_checks
from replicator.container_auditor import DB_FILE, ContainerKind
from replicator.container_replicator import ContainerReplicator, ContainerReplicatorStats
from replicator.container_replicator_config import ContainerReplicatorConfig
from ring.placement import hash_path
from service.config import ClusterConfig, ContainerServerConfig
from service.lmdb_devices import DeviceEnvs

SECRET = b"unit-secret"
ACCOUNT, CONTAINER = "AUTH_a", "c"
DEVICE = "d0"
LONG = "L" * 600  # past the 494 bytes a short LMDB key holds: a long-name bucket


@pytest.fixture(params=["lmdb", "memory"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryContainerBroker(SECRET)
        return
    (tmp_path / DEVICE).mkdir()
    opened = ContainerBroker(str(tmp_path), SECRET)
    yield opened
    opened.close()


async def _fill(broker: ContainerBrokerBase) -> bytes:
    """o0..o4 deleted at 10..14, live at 20..22, a long name deleted at 12: the container id."""
    await broker.create(DEVICE, ACCOUNT, CONTAINER, ts(1))
    for i in range(8):
        await broker.put_object(DEVICE, ACCOUNT, CONTAINER, f"o{i}", ts(5), 3, "t", "e")
    for i in range(5):
        await broker.delete_object(DEVICE, ACCOUNT, CONTAINER, f"o{i}", ts(10 + i))
    for i in range(5, 8):
        await broker.put_object(DEVICE, ACCOUNT, CONTAINER, f"o{i}", ts(15 + i), 4, "t", "e")
    await broker.delete_object(DEVICE, ACCOUNT, CONTAINER, LONG, ts(12))
    return broker._cid(ACCOUNT, CONTAINER)  # type: ignore[attr-defined, no-any-return]


def _names(broker: ContainerBrokerBase, cid: bytes) -> list[tuple[str, bool]]:
    return [(r.name, r.deleted) for r in broker.rows_after(DEVICE, cid, None, 100)]


def test_reclaim_removes_only_tombstones_older_than_before(broker: ContainerBrokerBase) -> None:
    async def test() -> None:
        cid = await _fill(broker)
        info = broker.info(DEVICE, ACCOUNT, CONTAINER)
        assert await broker.reclaim(DEVICE, cid, ts(13), batch=1000) == 4  # o0..o2, LONG
        assert _names(broker, cid) == [
            ("o3", True),
            ("o4", True),
            ("o5", False),
            ("o6", False),
            ("o7", False),
        ]
        # Tombstones are not counted, and the stats version is over every row ever merged.
        assert broker.info(DEVICE, ACCOUNT, CONTAINER) == info
        assert await broker.reclaim(DEVICE, cid, ts(13), batch=1000) == 0  # a replay
        assert await broker.reclaim(DEVICE, cid, ts(100), batch=1000) == 2
        assert [n for n, _ in _names(broker, cid)] == ["o5", "o6", "o7"]
        assert broker.info(DEVICE, ACCOUNT, CONTAINER) == info

    asyncio.run(test())


def test_reclaim_writes_a_bounded_page_per_transaction(broker: ContainerBrokerBase) -> None:
    writes: list[int] = []  # rows reclaimed by each write transaction
    real_write = broker._write

    async def counting_write(device: str, write: Callable[[Any], Any]) -> Any:
        done = await real_write(device, write)
        writes.append(done)
        return done

    async def test() -> None:
        cid = await _fill(broker)
        broker._write = counting_write  # type: ignore[method-assign]
        assert await broker.reclaim(DEVICE, cid, ts(0), batch=2) == 0
        assert writes == []  # nothing old: read only, the writer is never asked
        assert await broker.reclaim(DEVICE, cid, ts(100), batch=2) == 6
        assert writes == [2, 2, 2]  # 6 tombstones, 2 read per page
        assert [n for n, _ in _names(broker, cid)] == ["o5", "o6", "o7"]
        with pytest.raises(ValueError):
            await broker.reclaim(DEVICE, cid, ts(100), batch=0)

    asyncio.run(test())


def test_a_row_written_after_the_page_was_read_is_kept(broker: ContainerBrokerBase) -> None:
    async def test() -> None:
        cid = await _fill(broker)
        find = partial(old_tombstones, cid=cid, before=ts(100), start=b"", limit=100)
        old, _ = broker._read(DEVICE, find)  # type: ignore[attr-defined]
        assert len(old) == 6
        await broker.put_object(DEVICE, ACCOUNT, CONTAINER, "o1", ts(50), 2, "t", "e")
        await broker.delete_object(DEVICE, ACCOUNT, CONTAINER, "o2", ts(150))
        reclaim = partial(reclaim_rows, cid=cid, before=ts(100), names=old)
        assert await broker._write(DEVICE, reclaim) == 4  # o1 is live, o2 deleted too late
        assert _names(broker, cid)[:2] == [("o1", False), ("o2", True)]

    asyncio.run(test())


def test_a_sync_point_past_a_reclaimed_change_still_works(broker: ContainerBrokerBase) -> None:
    async def test() -> None:
        cid = await _fill(broker)
        _, newest = broker.replication_source(DEVICE, cid)
        before_rows, _ = broker.changed_rows(DEVICE, cid, 0, 100)
        assert len(before_rows) == 9
        await broker.reclaim(DEVICE, cid, ts(100), batch=3)
        rows, reached = broker.changed_rows(DEVICE, cid, 0, 100)
        assert sorted(r.name for r in rows) == ["o5", "o6", "o7"]  # no reclaimed change
        assert reached < newest  # the newest change (LONG's) was reclaimed
        # A peer whose point is past every reclaimed change (``newest``) gets nothing, then
        # exactly what changes next: sequences are never reused.
        assert broker.changed_rows(DEVICE, cid, newest, 100) == ([], newest)
        await broker.put_object(DEVICE, ACCOUNT, CONTAINER, "o0", ts(50), 1, "t", "e")
        rows, reached = broker.changed_rows(DEVICE, cid, newest, 100)
        assert [r.name for r in rows] == ["o0"] and reached > newest
        _, last = broker.replication_source(DEVICE, cid)
        assert last == reached

    asyncio.run(test())


def test_a_reclaimed_name_can_be_written_again(broker: ContainerBrokerBase) -> None:
    async def test() -> None:
        cid = await _fill(broker)
        await broker.reclaim(DEVICE, cid, ts(100), batch=1000)
        await broker.delete_object(DEVICE, ACCOUNT, CONTAINER, "o1", ts(200))
        await broker.put_object(DEVICE, ACCOUNT, CONTAINER, LONG, ts(201), 5, "t", "e")
        assert ("o1", True) in _names(broker, cid) and (LONG, False) in _names(broker, cid)
        info = broker.info(DEVICE, ACCOUNT, CONTAINER)
        assert (info.object_count, info.bytes_used) == (4, 17)

    asyncio.run(test())


def test_reclaim_of_a_dropped_container_finds_nothing(broker: ContainerBrokerBase) -> None:
    async def test() -> None:
        cid = await _fill(broker)
        info, seq = broker.replication_source(DEVICE, cid)
        assert info is not None and await broker.drop_container(DEVICE, cid, info, seq)
        assert await broker.reclaim(DEVICE, cid, ts(100), batch=10) == 0

    asyncio.run(test())


# -- the replicator's pass --


class Cluster(ServerCluster):
    ring_name = "container.ring"

    def __init__(self, root: Path) -> None:
        super().__init__(root, SECRET)
        self.primaries = self.nodes(self.ring.get_nodes(ACCOUNT, CONTAINER)[1])
        self.cid = self.stores[0]._cid(ACCOUNT, CONTAINER)

    def open_store(self, devices: str) -> ContainerBroker:
        return ContainerBroker(devices, SECRET)

    def app(self, node: int) -> web.Application:
        return build_app(
            ContainerServerConfig(mount_check=False),
            ClusterConfig(SECRET.decode()),
            broker=self.stores[node],
            rng=random.Random(node),
        )

    def rows(self, node: int) -> list[tuple[str, bool]]:
        rows = self.stores[node].rows_after(f"d{node}", self.cid, None, 100)
        return [(r.name, r.deleted) for r in rows]

    async def replicate(self, node: int, now_s: float) -> ContainerReplicatorStats:
        config = ContainerReplicatorConfig(
            **self.daemon_options(node),
            containers_per_s=0,
            node_timeout_s=5.0,
            reclaim_age_s=100.0,
            reclaim_batch_rows=2,
        )
        async with self.backend() as (_pool, client):
            daemon = ContainerReplicator(
                config, self.stores[node], client, self.ring_file(), wall_clock=lambda: now_s
            )
            return await daemon.run_once()


def test_the_pass_reclaims_and_never_pushes_a_reclaimed_row_back(tmp_path: Path) -> None:
    async def test() -> None:
        async with running(Cluster(tmp_path)) as cluster:
            first, second, third = cluster.primaries
            store = cluster.stores[first]
            await store.create(f"d{first}", ACCOUNT, CONTAINER, ts(1))
            await store.put_object(f"d{first}", ACCOUNT, CONTAINER, "live", ts(2), 1, "t", "e")
            for i in range(3):
                await store.delete_object(f"d{first}", ACCOUNT, CONTAINER, f"old{i}", ts(3))
            young = ts(100 * 100_000)  # 100 s later
            await store.delete_object(f"d{first}", ACCOUNT, CONTAINER, "young", young)
            everything = [("live", False), *((f"old{i}", True) for i in range(3)), ("young", True)]

            # Within reclaim_age of every row: nothing is reclaimed, everything is pushed.
            stats = await cluster.replicate(first, now_s=ts(3).seconds + 50)
            assert stats.rows_reclaimed == 0 and stats.rows_pushed == 10
            assert all(cluster.rows(node) == everything for node in cluster.primaries)

            # Past the old tombstones' reclaim_age: the second reclaims them before it pushes
            # (a full copy: it never pushed before), so the others are sent only the rest.
            now_s = ts(3).seconds + 101
            stats = await cluster.replicate(second, now_s)
            assert (stats.rows_reclaimed, stats.full_copies, stats.rows_pushed) == (3, 2, 4)
            assert cluster.rows(second) == [("live", False), ("young", True)]
            assert cluster.rows(first) == everything  # not reclaimed there yet
            info = store.info(f"d{first}", ACCOUNT, CONTAINER)
            stats = await cluster.replicate(first, now_s)  # from its sync points: nothing
            assert (stats.rows_reclaimed, stats.full_copies, stats.rows_pushed) == (3, 0, 0)
            stats = await cluster.replicate(third, now_s)
            assert (stats.rows_reclaimed, stats.full_copies, stats.rows_pushed) == (3, 2, 4)
            for node in cluster.primaries:
                assert cluster.rows(node) == [("live", False), ("young", True)]
                held = cluster.stores[node].info(f"d{node}", ACCOUNT, CONTAINER)
                assert held == info  # totals and stats version as before

            # A new row after the reclaim still goes out from the sync point.
            await store.put_object(f"d{first}", ACCOUNT, CONTAINER, "new", ts(300), 1, "t", "e")
            stats = await cluster.replicate(first, now_s)
            assert stats.rows_pushed == 2 and stats.full_copies == 0
            assert all(("new", False) in cluster.rows(node) for node in cluster.primaries)

    asyncio.run(test())


def test_a_deleted_container_past_reclaim_age_is_dropped_not_pushed(tmp_path: Path) -> None:
    async def test() -> None:
        async with running(Cluster(tmp_path)) as cluster:
            first, second, third = cluster.primaries
            for node in cluster.primaries:
                store = cluster.stores[node]
                await store.create(f"d{node}", ACCOUNT, CONTAINER, ts(1))
                await store.delete_object(f"d{node}", ACCOUNT, CONTAINER, "gone", ts(2))
                await store.delete(f"d{node}", ACCOUNT, CONTAINER, ts(3))

            def held(node: int) -> bool:
                info, _ = cluster.stores[node].replication_source(f"d{node}", cluster.cid)
                return info is not None

            # Deleted, but not longer ago than reclaim_age: kept, and pushed as ever.
            stats = await cluster.replicate(first, now_s=ts(3).seconds + 50)
            assert (stats.databases_reclaimed, stats.rows_reclaimed, stats.pushes) == (0, 0, 2)
            assert all(held(node) for node in cluster.primaries)

            # Past it: each primary drops its own in its pass, and pushes nothing, so the
            # others' copies (not yet dropped) are not recreated.
            now_s = ts(3).seconds + 101
            stats = await cluster.replicate(first, now_s)
            assert (stats.databases_reclaimed, stats.rows_reclaimed, stats.pushes) == (1, 1, 0)
            assert [held(node) for node in cluster.primaries] == [False, True, True]
            for node in (second, third):
                stats = await cluster.replicate(node, now_s)
                assert stats.databases_reclaimed == 1 and stats.pushes == 0
            assert not any(held(node) for node in cluster.primaries)

    asyncio.run(test())


def test_a_container_holding_objects_is_never_dropped(tmp_path: Path) -> None:
    async def test() -> None:
        async with running(Cluster(tmp_path)) as cluster:
            first = cluster.primaries[0]
            store = cluster.stores[first]
            await store.create(f"d{first}", ACCOUNT, CONTAINER, ts(1))
            await store.put_object(f"d{first}", ACCOUNT, CONTAINER, "o", ts(2), 1, "t", "e")
            with pytest.raises(ContainerNotEmpty):
                await store.delete(f"d{first}", ACCOUNT, CONTAINER, ts(3))
            stats = await cluster.replicate(first, now_s=ts(3).seconds + 1000)
            assert stats.databases_reclaimed == 0 and stats.pushes == 2
            assert cluster.rows(first) == [("o", False)]

    asyncio.run(test())


def test_the_auditor_takes_reclaimed_totals_as_they_are(tmp_path: Path) -> None:
    """The stats version keeps counting reclaimed tombstones (it only grows): the container
    auditor must not take it for damage and rewrite it lower."""
    (tmp_path / "d0").mkdir()

    async def fill_and_reclaim() -> None:
        broker = ContainerBroker(str(tmp_path), b"s")
        try:
            await broker.create("d0", "a", "c", ts(1))
            await broker.put_object("d0", "a", "c", "kept", ts(2), 5, "t", "e")
            await broker.put_object("d0", "a", "c", "gone", ts(2), 1, "t", "e")
            await broker.delete_object("d0", "a", "c", "gone", ts(3))
            assert await broker.reclaim("d0", broker._cid("a", "c"), ts(10), 100) == 1
        finally:
            broker.close()

    asyncio.run(fill_and_reclaim())
    envs = DeviceEnvs(str(tmp_path), DB_FILE, TABLES, max_batch=8)
    try:
        with envs.reading("d0") as (txn, opened):
            found = db_audit_checks.audit(
                ContainerKind(b"s"), txn, opened.tables, hash_path(b"s", "a", "c")
            )
    finally:
        envs.close()
    assert found.totals_problem is None
    assert found.totals_found[:2] == (1, 5)
