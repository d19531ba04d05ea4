"""The account reaper over a real accounts.lmdb (made by AccountBroker, then closed: one
process may not open an environment twice), deleting through real object, container and
account server apps (memory twins behind aiohttp's TestServer: every DELETE is a real HTTP
call).  Each server holds all the replicas of its ring, as devices of one port."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from accountd.broker import AccountBroker
from accountd.memory import MemoryAccountBroker
from accountd.server import build_app as build_account_app
from containerd_.errors import ContainerNotFound
from containerd_.memory import MemoryContainerBroker
from containerd_.server import build_app as build_container_app
from objectd.errors import ObjectNotFound
from objectd.memory import MemoryObjectEngine
from objectd.server import build_app as build_object_app
from replicator.account_reap_config import AccountReaperConfig
from replicator.account_reap_dbs import AccountDbs, DeletedAccount
from replicator.account_reaper import AccountReaper
from replicator.rings import RingFile
from replicator.throttle import Throttle
from ring import ringfile
from ring.builder import RingBuilder
from ring.ring import Ring
from service.backend_client import BackendClient, BackendUnavailable, open_backend_client
from service.config import (
    AccountServerConfig,
    ClusterConfig,
    ContainerServerConfig,
    ObjectServerConfig,
)
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
DB_DEVICES = ("sda", "sdb", "sdc")
OBJECT_DEVICES = ("d1", "d2", "d3", "d4")
ACCOUNT = "AUTH_gone"
CONTAINERS = {"c1": ["a", "b", "dir/ü"], "c2": ["x"], "empty": []}
ME = frozenset({"127.0.0.1"})


def ts(at: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + at)


def write_ring(path: Path, port: int, devices: tuple[str, ...]) -> None:
    builder = RingBuilder(4, 3, 0)
    for zone, device in enumerate(devices, 1):
        builder.add_dev(region=1, zone=zone, ip="127.0.0.1", port=port, device=device, weight=1)
    builder.rebalance(seed=1)
    ringfile.write(path, builder.get_ring())


async def make_account_dbs(devices: Path, deleted_at: float | None) -> None:
    """The account on every account device, as its account server stores it."""
    for device in DB_DEVICES:
        (devices / device).mkdir(parents=True, exist_ok=True)
    broker = AccountBroker(str(devices), SECRET.encode())
    try:
        for device in DB_DEVICES:
            await broker.create(device, ACCOUNT, ts(0))
            await broker.create(device, "AUTH_live", ts(0))
            for container in CONTAINERS:
                await broker.put_container(device, ACCOUNT, container, ts(1), ts(0), ts(1), 0, 0)
            if deleted_at is not None:
                await broker.delete(device, ACCOUNT, ts(deleted_at))
    finally:
        broker.close()


@dataclass
class Cluster:
    tmp: Path
    objects: MemoryObjectEngine
    containers: MemoryContainerBroker
    accounts: MemoryAccountBroker
    client: BackendClient
    ports: dict[str, int]
    dbs: AccountDbs  # one per process: LMDB refuses to open an environment twice
    ticks: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    def ring(self, kind: str) -> Ring:
        return Ring.load(self.tmp / "rings" / f"{kind}.ring", SECRET.encode())

    def reaper(
        self,
        *,
        throttle: Throttle | None = None,
        client: BackendClient | None = None,
        **options: object,
    ) -> AccountReaper:
        config = AccountReaperConfig(
            devices=self.tmp / "devices",
            mount_check=False,
            bind_ip="127.0.0.1",
            bind_port=self.ports["account"],
            deletes_per_s=0,
            **options,  # type: ignore[arg-type]
        )
        rings = tuple(
            RingFile(self.tmp / "rings" / f"{kind}.ring", SECRET.encode())
            for kind in ("account", "container", "object")
        )
        return AccountReaper(
            config,
            self.dbs,
            client if client is not None else self.client,
            (rings[0], rings[1], rings[2]),
            throttle=throttle,
            my_ips=ME,
            wall_clock=lambda: T0 + 100 + next(self.ticks) * 0.001,  # later at each read
        )

    async def fill(self) -> None:
        """The account's containers and objects, PUT through the servers (rows follow)."""
        cring, oring = self.ring("container"), self.ring("object")
        for container, names in CONTAINERS.items():
            cpart, cnodes = cring.get_nodes(ACCOUNT, container)
            for node in cnodes:
                headers = {"X-Timestamp": ts(1).internal}
                response = await self.client.request(
                    "PUT",
                    node.ip,
                    node.port,
                    node.device,
                    cpart,
                    f"/{ACCOUNT}/{container}",
                    headers,
                )
                assert response.status == 201, response
            for name in names:
                opart, onodes = oring.get_nodes(ACCOUNT, container, name)
                for i, node in enumerate(onodes):
                    cnode = cnodes[i % len(cnodes)]
                    headers = {
                        "X-Timestamp": ts(2).internal,
                        "Content-Type": "text/plain",
                        "Content-Length": "5",
                        "X-Container-Host": f"{cnode.ip}:{cnode.port}",
                        "X-Container-Device": cnode.device,
                        "X-Container-Partition": str(cpart),
                    }
                    path = f"/{ACCOUNT}/{container}/{name}"
                    response = await self.client.request(
                        "PUT", node.ip, node.port, node.device, opart, path, headers, b"hello"
                    )
                    assert response.status == 201, response

    def object_states(self) -> list[str]:
        """'live' or 'gone' for every replica of every object."""
        states = []
        oring = self.ring("object")
        for container, names in CONTAINERS.items():
            for name in names:
                part, nodes = oring.get_nodes(ACCOUNT, container, name)
                for node in nodes:
                    try:
                        self.objects.get(node.device, part, ACCOUNT, container, name)
                        states.append("live")
                    except ObjectNotFound:
                        states.append("gone")
        return states

    def container_states(self) -> list[str]:
        states = []
        for container in CONTAINERS:
            for device in DB_DEVICES:
                try:
                    info = self.containers.info(device, ACCOUNT, container, include_deleted=True)
                    states.append("deleted" if info.deleted else "live")
                except ContainerNotFound:
                    states.append("missing")
        return states


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, *, deleted_at: float | None = 50) -> AsyncIterator[Cluster]:
    secret = SECRET.encode()
    objects = MemoryObjectEngine(list(OBJECT_DEVICES), secret)
    containers = MemoryContainerBroker(secret)
    accounts = MemoryAccountBroker(secret)
    for device in DB_DEVICES:
        await accounts.create(device, ACCOUNT, ts(0))
        if deleted_at is not None:
            await accounts.delete(device, ACCOUNT, ts(deleted_at))
    cluster_config = ClusterConfig(SECRET, ring_dir=tmp_path / "rings")
    apps = {
        "object": build_object_app(
            ObjectServerConfig(mount_check=False), cluster_config, engine=objects
        ),
        "container": build_container_app(
            ContainerServerConfig(mount_check=False), cluster_config, broker=containers
        ),
        "account": build_account_app(
            AccountServerConfig(mount_check=False), cluster_config, broker=accounts
        ),
    }
    (tmp_path / "rings").mkdir()
    await make_account_dbs(tmp_path / "devices", deleted_at)
    async with contextlib.AsyncExitStack() as stack:
        ports = {}
        for kind, app in apps.items():
            server = await stack.enter_async_context(TestServer(app, host="127.0.0.1"))
            assert server.port is not None
            ports[kind] = server.port
            devices = OBJECT_DEVICES if kind == "object" else DB_DEVICES
            write_ring(tmp_path / "rings" / f"{kind}.ring", server.port, devices)
        client = await stack.enter_async_context(
            open_backend_client(conn_timeout_s=0.5, node_timeout_s=5.0)
        )
        dbs = AccountDbs(tmp_path / "devices", secret)
        stack.callback(dbs.close)
        yield Cluster(tmp_path, objects, containers, accounts, client, ports, dbs)


def test_the_first_primary_deletes_every_object_then_every_container(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path) as c:
            await c.fill()
            assert set(c.object_states()) == {"live"}
            reaper = c.reaper()
            stats = await reaper.run_once()
            # The account is on three local devices; only its first primary reaps it.
            assert (stats.devices, stats.accounts, stats.accounts_elsewhere) == (3, 1, 2)
            assert (stats.accounts_reaped, stats.accounts_remaining) == (1, 0)
            assert stats.containers_deleted == len(CONTAINERS)
            assert stats.objects_deleted == sum(len(n) for n in CONTAINERS.values())
            assert (stats.failures, stats.errors) == (0, 0)
            assert set(c.object_states()) == {"gone"}
            assert set(c.container_states()) == {"deleted"}
            # The account heard of each container's deletion (the override): no live rows.
            assert c.accounts.info("sda", ACCOUNT, include_deleted=True).container_count == 0

            # The local account DB was not told (the unit's account server is a memory twin),
            # so the containers still read as live there: a second pass lists nothing, finds
            # each container already deleted, and sends DELETEs that change nothing.
            again = await reaper.run_once()
            assert (again.objects_deleted, again.failures) == (0, 0)
            assert set(c.container_states()) == {"deleted"}

    asyncio.run(main())


def test_an_account_inside_delay_reaping_is_left_alone(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path) as c:  # deleted at T0 + 50; the reaper's now is T0 + 100
            await c.fill()
            stats = await c.reaper(delay_reaping_s=51).run_once()
            assert (stats.accounts, stats.accounts_delayed, stats.objects_deleted) == (0, 1, 0)
            assert set(c.object_states()) == {"live"}
            stats = await c.reaper(delay_reaping_s=50).run_once()
            assert (stats.accounts, stats.accounts_delayed) == (1, 0)
            assert set(c.object_states()) == {"gone"}

    asyncio.run(main())


def test_a_live_account_is_not_touched(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path, deleted_at=None) as c:
            await c.fill()
            stats = await c.reaper().run_once()
            assert (stats.devices, stats.accounts, stats.accounts_elsewhere) == (3, 0, 0)
            assert set(c.object_states()) == {"live"}

    asyncio.run(main())


def test_failed_deletes_leave_the_container_for_the_next_pass(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path) as c:
            await c.fill()
            down = DeviceDown(c.client, "d1")  # one object device unreachable
            stats = await c.reaper(client=down).run_once()
            assert stats.failures > 0 and stats.accounts_remaining == 1
            assert stats.accounts_reaped == 0
            assert "live" in c.object_states()
            assert "live" in c.container_states()  # not empty on some replica: 409
            stats = await c.reaper().run_once()
            assert (stats.accounts_reaped, stats.accounts_remaining, stats.failures) == (1, 0, 0)
            assert set(c.object_states()) == {"gone"}
            assert set(c.container_states()) == {"deleted"}

    asyncio.run(main())


class DeviceDown(BackendClient):
    """Fault injection: requests to ``device`` fail as if its node were unreachable."""

    def __init__(self, client: BackendClient, device: str) -> None:
        self._client = client
        self._down = device

    async def request(self, method: str, ip: str, port: int, device: str, *args, **kwargs):
        if device == self._down:
            raise BackendUnavailable(f"{method} {ip}:{port}/{device}: down (test)")
        return await self._client.request(method, ip, port, device, *args, **kwargs)


class StopAfter(Throttle):
    """Lets ``n`` deletes start, then blocks: the pass is cancelled while it waits."""

    def __init__(self, n: int) -> None:
        super().__init__(0)
        self.left = n
        self.blocked = asyncio.Event()

    async def wait(self, cost: float = 1.0) -> None:
        if self.left == 0:
            self.blocked.set()
            await asyncio.Event().wait()
        self.left -= 1


def test_a_pass_cancelled_halfway_is_finished_by_the_next(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster(tmp_path) as c:
            await c.fill()
            stopper = StopAfter(2)
            task = asyncio.create_task(c.reaper(throttle=stopper).run_once())
            await asyncio.wait_for(stopper.blocked.wait(), 10)
            for _ in range(200):  # the two deletes that started land (a loaded box: poll)
                if c.object_states().count("gone") == 2 * 3:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert c.object_states().count("gone") == 2 * 3  # two objects, three replicas
            stats = await c.reaper().run_once()
            assert (stats.accounts_reaped, stats.failures, stats.errors) == (1, 0, 0)
            assert set(c.object_states()) == {"gone"}
            assert set(c.container_states()) == {"deleted"}

    asyncio.run(main())


def test_the_account_dbs_list_deleted_accounts_and_live_containers_by_page(
    tmp_path: Path,
) -> None:
    asyncio.run(make_account_dbs(tmp_path, deleted_at=7))
    dbs = AccountDbs(tmp_path, SECRET.encode())
    try:
        found, after = dbs.scan_deleted("sda", limit=1)
        while after is not None:
            more, after = dbs.scan_deleted("sda", after=after, limit=1)
            found += more
        assert found == [DeletedAccount(ACCOUNT, ts(7))]
        assert dbs.live_containers("sda", ACCOUNT) == sorted(CONTAINERS)
        assert dbs.live_containers("sda", ACCOUNT, after="c1", limit=1) == ["c2"]
        assert dbs.live_containers("sda", "AUTH_live") == []
    finally:
        dbs.close()


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        AccountReaperConfig(delay_reaping_s=-1)
    with pytest.raises(ValueError):
        AccountReaperConfig(bind_port=0)
    assert AccountReaperConfig().delay_reaping_s == 0
