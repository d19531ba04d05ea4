"""The container updater over real container LMDB environments (made by ContainerBroker, then
closed: one process may not open an environment twice), reporting to a real account server
app (MemoryAccountBroker behind aiohttp's TestServer) that holds all three account replicas.
A device of the memory account broker taken offline stands for an account replica that is
down."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer
from server_process import free_port

from accountd.memory import MemoryAccountBroker
from accountd.server import build_app
from containerd_.broker import ContainerBroker
from replicator.config import ContainerUpdaterConfig
from replicator.container_dbs import ContainerDbs
from replicator.container_updater import ContainerUpdater
from replicator.reported import ReportedPoints
from replicator.rings import RingFile
from ring import ringfile
from ring.builder import RingBuilder
from service.async_pending import AsyncPending
from service.backend_client import open_backend_client
from service.config import AccountServerConfig, ClusterConfig
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
ACCOUNT_DEVICES = ("sda", "sdb", "sdc")


def ts(at: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + at)


async def fill(devices: Path, containers: dict[str, list[tuple[str, int]]]) -> None:
    """Containers (name → [(object, size)]) on device d1, as a container server stores them."""
    (devices / "d1").mkdir(parents=True, exist_ok=True)
    broker = ContainerBroker(str(devices), SECRET.encode())
    try:
        for container, objects in containers.items():
            with contextlib.suppress(Exception):
                await broker.create("d1", "AUTH_a", container, ts(0))
            for i, (name, size) in enumerate(objects, 1):
                await broker.put_object(
                    "d1", "AUTH_a", container, name, ts(i), size, "text/plain", "etag"
                )
    finally:
        broker.close()


@dataclass
class Setup:
    updater: ContainerUpdater
    accounts: MemoryAccountBroker
    dbs: ContainerDbs


@contextlib.asynccontextmanager
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    port = free_port()
    builder = RingBuilder(4, 3, 0)
    for zone, device in enumerate(ACCOUNT_DEVICES, 1):
        builder.add_dev(region=1, zone=zone, ip="127.0.0.1", port=port, device=device, weight=1)
    builder.rebalance(seed=1)
    ringfile.write(tmp_path / "account.ring", builder.get_ring())
    accounts = MemoryAccountBroker(SECRET.encode())
    for device in ACCOUNT_DEVICES:
        await accounts.create(device, "AUTH_a", ts(0))
    app = build_app(AccountServerConfig(mount_check=False), ClusterConfig(SECRET), broker=accounts)
    devices = tmp_path / "devices"
    config = ContainerUpdaterConfig(devices=devices, mount_check=False, reports_per_s=0)
    dbs = ContainerDbs(str(devices), mount_check=False)
    reported = ReportedPoints(str(devices), mount_check=False)
    try:
        async with (
            TestServer(app, host="127.0.0.1", port=port),
            open_backend_client(conn_timeout_s=0.5, node_timeout_s=2.0) as client,
        ):
            ring = RingFile(tmp_path / "account.ring", SECRET.encode())
            updater = ContainerUpdater(config, dbs, reported, client, ring, rng=random.Random(3))
            yield Setup(updater, accounts, dbs)
    finally:
        dbs.close()
        reported.close()


def rows(accounts: MemoryAccountBroker, device: str) -> dict[str, tuple[int, int]]:
    listed = accounts.list_containers(device, "AUTH_a")
    return {row.name: (row.object_count, row.bytes_used) for row in listed}


def test_changed_containers_are_reported_to_every_account_replica_once(tmp_path: Path) -> None:
    async def main() -> None:
        await fill(tmp_path / "devices", {"c1": [("a", 1), ("b", 20)], "c2": []})
        async with setup(tmp_path) as s:
            stats = await s.updater.run_once()
            assert (stats.devices, stats.containers) == (1, 2)
            assert (stats.reported, stats.unchanged) == (2, 0)
            for device in ACCOUNT_DEVICES:
                assert rows(s.accounts, device) == {"c1": (2, 21), "c2": (0, 0)}
            stats = await s.updater.run_once()  # nothing changed: no report
            assert (stats.containers, stats.reported, stats.unchanged) == (2, 0, 2)
        await fill(tmp_path / "devices", {"c2": [("x", 5)]})
        async with setup(tmp_path) as s:  # the reported points outlive the process
            stats = await s.updater.run_once()
            assert (stats.reported, stats.unchanged) == (1, 1)
            assert rows(s.accounts, "sda")["c2"] == (1, 5)

    asyncio.run(main())


def test_a_report_a_replica_missed_is_sent_again_next_pass(tmp_path: Path) -> None:
    async def main() -> None:
        await fill(tmp_path / "devices", {"c1": [("a", 7)]})
        async with setup(tmp_path) as s:
            s.accounts.offline_devices.add("sdb")
            stats = await s.updater.run_once()
            assert (stats.reported, stats.report_failures) == (0, 1)
            assert rows(s.accounts, "sda") == {"c1": (1, 7)}  # the others took it
            s.accounts.offline_devices.clear()
            stats = await s.updater.run_once()
            assert (stats.reported, stats.report_failures) == (1, 0)
            assert rows(s.accounts, "sdb") == {"c1": (1, 7)}

    asyncio.run(main())


def test_account_reports_kept_by_the_container_server_are_replayed(tmp_path: Path) -> None:
    async def main() -> None:
        await fill(tmp_path / "devices", {})
        async with setup(tmp_path) as s:
            # As containerd_/account_update.py saves one when an account replica is down.
            headers = {
                "X-Put-Timestamp": ts(5).internal,
                "X-Delete-Timestamp": "0000000000.00000",
                "X-Object-Count": "0",
                "X-Bytes-Used": "0",
            }
            ring = RingFile(tmp_path / "account.ring", SECRET.encode()).get()
            assert ring is not None
            partition, nodes = ring.get_nodes("AUTH_a")
            targets = tuple((n.ip, n.port, n.device) for n in nodes)
            report = AsyncPending("PUT", "AUTH_a", "gone", None, targets, partition, headers, ts(5))
            await s.dbs.save_async_pending("d1", report, random.Random())
            stats = await s.updater.run_once()
            assert (stats.found, stats.successes, stats.containers) == (1, 1, 0)
            assert s.dbs.list_async_pendings("d1") == []
            assert "gone" in rows(s.accounts, "sdc")

    asyncio.run(main())
