"""The object updater over the in-memory object engine, replaying to a real container server
app (MemoryContainerBroker behind aiohttp's TestServer, so every update is a real HTTP call);
a port nobody listens on stands for a container server that is down."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer
from server_process import free_port

from containerd_.memory import MemoryContainerBroker
from containerd_.server import build_app
from objectd.memory import MemoryObjectEngine
from replicator.config import ObjectUpdaterConfig
from replicator.object_updater import ObjectUpdater
from replicator.rings import RingFile
from ring import ringfile
from ring.builder import RingBuilder
from service.async_pending import AsyncPending
from service.backend_client import open_backend_client
from service.config import ClusterConfig, ContainerServerConfig
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
DEVICES = ("sda", "sdb", "sdc")


@dataclass
class Setup:
    updater: ObjectUpdater
    engine: MemoryObjectEngine  # the object node's async_pendings, on device "sda"
    containers: MemoryContainerBroker  # the container server's rows
    live: int  # the container server's port
    dead: int  # a port nobody listens on


@contextlib.asynccontextmanager
async def setup(tmp_path: Path, ring_path: Path | None = None) -> AsyncIterator[Setup]:
    (tmp_path / "sda").mkdir()
    (tmp_path / "sda" / "objects.lmdb").mkdir()  # a device the object server has used
    containers = MemoryContainerBroker(SECRET.encode())
    for device in DEVICES:
        await containers.create(device, "AUTH_a", "c", Timestamp.from_seconds(T0))
    app = build_app(
        ContainerServerConfig(mount_check=False), ClusterConfig(SECRET), broker=containers
    )
    engine = MemoryObjectEngine(["sda"], SECRET.encode())
    config = ObjectUpdaterConfig(devices=tmp_path, mount_check=False, updates_per_s=0)
    async with (
        TestServer(app, host="127.0.0.1") as server,
        open_backend_client(conn_timeout_s=0.5, node_timeout_s=2.0) as client,
    ):
        ring = RingFile(ring_path, SECRET.encode()) if ring_path is not None else None
        updater = ObjectUpdater(config, engine, client, container_ring=ring, rng=random.Random(7))
        assert server.port is not None
        yield Setup(updater, engine, containers, server.port, free_port())


def pending(
    name: str, targets: list[tuple[str, int, str]], at: float = 1, partition: int = 3
) -> AsyncPending:
    timestamp = Timestamp.from_seconds(T0 + at)
    headers = {
        "X-Timestamp": timestamp.internal,
        "X-Size": "5",
        "X-Content-Type": "text/plain",
        "X-Etag": "d41d8cd98f00b204e9800998ecf8427e",
    }
    return AsyncPending("PUT", "AUTH_a", "c", name, tuple(targets), partition, headers, timestamp)


def names(containers: MemoryContainerBroker, device: str) -> list[str]:
    return [row.name for row in containers.list_objects(device, "AUTH_a", "c")]


def kept(engine: MemoryObjectEngine) -> list[AsyncPending | None]:
    return [record for _, record in engine.list_async_pendings("sda")]


def test_an_update_every_target_takes_is_deleted(tmp_path: Path) -> None:
    async def main() -> None:
        async with setup(tmp_path) as s:
            targets = [("127.0.0.1", s.live, "sda"), ("127.0.0.1", s.live, "sdb")]
            await s.engine.save_async_pending("sda", pending("o1", targets), random.Random(1))
            stats = await s.updater.run_once()
            assert (stats.found, stats.successes, stats.failures, stats.devices) == (1, 1, 0, 1)
            assert names(s.containers, "sda") == names(s.containers, "sdb") == ["o1"]
            assert names(s.containers, "sdc") == []  # not a target
            assert kept(s.engine) == []

    asyncio.run(main())


def test_an_update_some_targets_took_is_kept_naming_only_the_others(tmp_path: Path) -> None:
    async def main() -> None:
        async with setup(tmp_path) as s:
            live, dead = ("127.0.0.1", s.live, "sda"), ("127.0.0.1", s.dead, "sdb")
            await s.engine.save_async_pending("sda", pending("o1", [live, dead]), random.Random(1))
            stats = await s.updater.run_once()
            assert (stats.found, stats.partials, stats.successes) == (1, 1, 0)
            assert names(s.containers, "sda") == ["o1"]
            (record,) = kept(s.engine)
            assert record is not None and record.targets == (dead,)

            stats = await s.updater.run_once()  # still down: kept as it is
            assert (stats.found, stats.failures) == (1, 1)
            assert [r.targets for r in kept(s.engine) if r] == [(dead,)]

    asyncio.run(main())


def test_a_refused_update_is_kept_and_replayed_oldest_first_once_it_can_land(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with setup(tmp_path) as s:
            target = [("127.0.0.1", s.live, "sda")]
            newer = pending("o2", target, at=2)
            older = pending("o1", target, at=1)
            orphan = AsyncPending(
                "PUT", "AUTH_a", "nope", "o3", tuple(target), 3, older.headers, older.timestamp
            )  # its container was never created: 404, kept
            for record in (newer, older, orphan):
                await s.engine.save_async_pending("sda", record, random.Random())
            stats = await s.updater.run_once()
            assert (stats.found, stats.successes, stats.failures) == (3, 2, 1)
            assert names(s.containers, "sda") == ["o1", "o2"]
            assert [r.container for r in kept(s.engine) if r] == ["nope"]

    asyncio.run(main())


def test_a_record_that_cannot_be_decoded_is_deleted_and_counted(tmp_path: Path) -> None:
    async def main() -> None:
        async with setup(tmp_path) as s:
            # Fault injection: bytes no decoder reads, stored as the engine stores records.
            s.engine._devices["sda"].async_pending[b"0000000001.00000_bad"] = b"\x7fjunk"
            stats = await s.updater.run_once()
            assert (stats.found, stats.bad) == (1, 1)
            assert kept(s.engine) == []

    asyncio.run(main())


def test_an_update_the_ring_has_moved_goes_to_the_current_primaries(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()  # the ring names the container server's port: bind it there
        ring_path = tmp_path / "container.ring"
        builder = RingBuilder(4, 3, 0)
        for zone, device in enumerate(DEVICES, 1):
            builder.add_dev(
                region=1, zone=zone, ip="127.0.0.1", port=port, device=device, weight=1.0
            )
        builder.rebalance(seed=1)
        ringfile.write(ring_path, builder.get_ring())
        devices = tmp_path / "devices"
        devices.mkdir()
        async with setup(devices, ring_path) as s:
            # Recorded on a partition and a node the ring no longer gives this container.
            old = [("127.0.0.1", s.dead, "sdz")]
            await s.engine.save_async_pending(
                "sda", pending("o1", old, partition=99), random.Random()
            )
            # The live server is on another port than the ring's: serve the app on the ring's.
            app = build_app(
                ContainerServerConfig(mount_check=False), ClusterConfig(SECRET), broker=s.containers
            )
            async with TestServer(app, host="127.0.0.1", port=port):
                stats = await s.updater.run_once()
            assert (stats.retargeted, stats.successes) == (1, 1)
            assert all(names(s.containers, device) == ["o1"] for device in DEVICES)

    asyncio.run(main())
