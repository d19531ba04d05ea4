"""What the replicators' unit tests share (importable because pyproject puts tests/ on the path).

- ``ServerCluster``: four storage servers of one kind in this process (real apps over real
  stores, one device ``d<i>`` under ``root/node<i>`` each) and a 3-replica ring over them, for
  a replicator's pass run as its process would: the daemon of a node shares that node's store,
  as its process shares the device's environment with the server.  A subclass says which
  store and which app (tests/unit/test_object_replicator.py, test_container_replicator.py,
  test_account_replication_db.py).
- ``broker_pair``: two empty brokers, both on LMDB or both in memory, for pushes between two
  brokers without HTTP (test_container_replication_db.py, test_account_replication_db.py);
  ``STAMPS`` and ``assert_merge_laws`` for their records' Hypothesis tests.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import strategies as st

from replicator.db_replicator import DbReplicator, DbReplicatorStats
from replicator.rings import RingFile
from ring import ringfile
from ring.builder import RingBuilder
from ring.device import Device as RingDevice
from ring.ring import Ring
from service.backend_client import BackendClient
from service.http11 import ConnectionPool
from service.timestamp import Timestamp

NODES = 4
DEV = "sda"  # a broker pair's device
PAIR_SECRET = b"replication-secret"  # a broker pair's hash secret
C = TypeVar("C", bound="ServerCluster")


def ts(raw: int, offset: int = 0) -> Timestamp:
    return Timestamp(1_700_000_000_00000 + raw, offset)


# Few distinct timestamps, so that drawn records often tie and the merge's tie-breaks are hit.
STAMPS = st.builds(ts, st.integers(0, 5), st.integers(0, 2))


def assert_merge_laws(merge: Callable[[Any, Any], Any], x: Any, y: Any, z: Any) -> None:
    """``merge`` is commutative, associative and idempotent on ``x``, ``y``, ``z``."""
    assert merge(x, y) == merge(y, x)
    assert merge(merge(x, y), z) == merge(x, merge(y, z))
    assert merge(x, x) == x


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerCluster:
    """Node ``i`` serves device ``d<i>`` on ``ports[i]``; ``stores[i]`` is its store."""

    ring_name: str  # "object.ring", "container.ring", "account.ring"

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.secret = secret
        self.ports = [free_port() for _ in range(NODES)]
        self.stores: list[Any] = []
        for i in range(NODES):
            (root / f"node{i}" / f"d{i}").mkdir(parents=True)
            self.stores.append(self.open_store(str(root / f"node{i}")))
        self.servers: dict[int, TestServer] = {}
        self.builder = RingBuilder(4, 3, 0)
        for i, port in enumerate(self.ports):
            self.builder.add_dev(
                region=1, zone=i + 1, ip="127.0.0.1", port=port, device=f"d{i}", weight=1.0
            )
        self.builder.rebalance(seed=1)
        self.ring_path = root / self.ring_name
        self.write_ring()

    def open_store(self, devices: str) -> Any:
        raise NotImplementedError

    def app(self, node: int) -> web.Application:
        raise NotImplementedError

    def write_ring(self) -> None:
        ringfile.write(self.ring_path, self.builder.get_ring())
        self.ring = Ring.load(self.ring_path, self.secret)

    def nodes(self, devices: list[RingDevice]) -> list[int]:
        """The node numbers of ring devices."""
        return [self.ports.index(d.port) for d in devices]

    def others(self, nodes: list[int]) -> list[int]:
        return [i for i in range(NODES) if i not in nodes]

    async def start(self, node: int) -> None:
        server = TestServer(self.app(node), host="127.0.0.1", port=self.ports[node])
        await server.start_server()
        self.servers[node] = server

    async def stop(self, node: int) -> None:
        await self.servers.pop(node).close()

    async def close(self) -> None:
        for node in list(self.servers):
            await self.stop(node)
        for store in self.stores:
            store.close()

    def daemon_options(self, node: int) -> dict[str, Any]:
        """The config any replicator of ``node`` needs: its devices, its server's address."""
        return {
            "devices": self.root / f"node{node}",
            "mount_check": False,
            "bind_ip": "127.0.0.1",
            "bind_port": self.ports[node],
        }

    def ring_file(self) -> RingFile:
        return RingFile(self.ring_path, self.secret)

    @contextlib.asynccontextmanager
    async def backend(self) -> AsyncIterator[tuple[ConnectionPool, BackendClient]]:
        """A daemon's connection pool and backend client, closed on exit."""
        pool = ConnectionPool(max_connections=16)
        try:
            yield pool, BackendClient(pool, conn_timeout_s=0.5, node_timeout_s=5.0)
        finally:
            await pool.close()

    async def run_db_replicator(
        self, daemon: type[DbReplicator], config: Any, node: int
    ) -> DbReplicatorStats:
        """One pass of a database replicator on ``node``, over that node's broker."""
        async with self.backend() as (_pool, client):
            return await daemon(config, self.stores[node], client, self.ring_file()).run_once()


@contextlib.asynccontextmanager
async def running(cluster: C, up: range = range(NODES)) -> AsyncIterator[C]:
    """``cluster`` with the servers of ``up`` started; every server and store closed on exit."""
    try:
        for node in up:
            await cluster.start(node)
        yield cluster
    finally:
        await cluster.close()


def broker_pair(
    kind: str, root: Path, lmdb_broker: Callable[[str, bytes], Any], memory_broker: Any
) -> Iterator[tuple[Any, Any]]:
    """A ``pair`` fixture's body: two empty brokers of ``kind`` ("lmdb", with device DEV under
    ``root/a`` and ``root/b``, or "memory"), closed after the test."""
    a = make_broker(kind, root / "a", lmdb_broker, memory_broker)
    b = make_broker(kind, root / "b", lmdb_broker, memory_broker)
    yield a, b
    a.close()
    b.close()


def make_broker(
    kind: str, path: Path, lmdb_broker: Callable[[str, bytes], Any], memory_broker: Any
) -> Any:
    """An empty broker, ``memory_broker`` or ``lmdb_broker`` over ``path`` with device DEV,
    hashing with PAIR_SECRET."""
    if kind == "memory":
        return memory_broker(PAIR_SECRET)
    (path / DEV).mkdir(parents=True)
    return lmdb_broker(str(path), PAIR_SECRET)
