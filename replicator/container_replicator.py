"""The container replicator: every container's replicas hold the same rows and record.

The pass is replicator/db_replicator.py's (per local device, per container in id order; a
primary pushes to the other primaries, a handoff to every primary and then drops its copy);
a push is replicator/db_replication.py's (the record, then the rows changed since the peer's
sync point for this replica, or every row if it has none).  This module says what a
container is to them: ids from the container broker, ``BrokerSource`` and ``ContainerPeer``
(replicator/container_replication_peers.py), and a drop through the broker, only if the
container is unchanged since it was read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from containerd_.broker import ContainerBroker
from containerd_.broker_base import ContainerBrokerBase
from containerd_.info import ContainerInfo
from ring.device import Device as RingDevice
from service.backend_client import BackendClient, open_backend_client
from service.config import ClusterConfig

from .container_replication_peers import BrokerSource, ContainerPeer
from .container_replicator_config import ContainerReplicatorConfig
from .db_replication_http import ReplicateClient
from .db_replicator import DbReplicator, DbReplicatorStats
from .rings import RingFile
from .throttle import Throttle

ContainerReplicatorStats = DbReplicatorStats


class ContainerDatabases:
    db_file = "containers.lmdb"

    def __init__(self, broker: ContainerBrokerBase, client: BackendClient) -> None:
        self._broker = broker
        self._client = client

    async def sender(self, device: str) -> str:
        await self._broker.prepare_device(device)
        return (await self._broker.replica_id(device)).hex()

    def ids(self, device: str, after: bytes, limit: int) -> list[bytes]:
        return self._broker.container_ids(device, after, limit)

    def snapshot(self, device: str, db_id: bytes) -> tuple[Any, int] | None:
        info, seq = self._broker.replication_source(device, db_id)
        return None if info is None else (info, seq)

    def source(self, device: str, db_id: bytes) -> BrokerSource:
        return BrokerSource(self._broker, device, db_id)

    def peer(self, node: RingDevice, partition: int, info: ContainerInfo) -> ContainerPeer:
        path = f"/{info.account}/{info.container}"
        return ContainerPeer(ReplicateClient(self._client, node, partition, path))

    async def drop(self, device: str, db_id: bytes, seen: tuple[Any, int]) -> bool:
        return await self._broker.drop_container(device, db_id, seen[0], seen[1])


class ContainerReplicator(DbReplicator):
    name = "container-replicator"

    def __init__(
        self,
        config: ContainerReplicatorConfig,
        broker: ContainerBrokerBase,
        client: BackendClient,
        ring: RingFile,
        *,
        container_throttle: Throttle | None = None,
        row_throttle: Throttle | None = None,
        my_ips: frozenset[str] | None = None,
    ) -> None:
        super().__init__(
            config,
            ContainerDatabases(broker, client),
            ring,
            db_throttle=container_throttle or Throttle(config.containers_per_s),
            row_throttle=row_throttle or Throttle(config.rows_per_s),
            my_ips=my_ips,
        )


@contextlib.asynccontextmanager
async def open_container_replicator(
    config: ContainerReplicatorConfig, cluster: ClusterConfig
) -> AsyncIterator[ContainerReplicator]:
    """The daemon with its broker, client and ring, closed on exit
    (``torus serve container-replicator``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    broker = ContainerBroker(str(config.devices), secret, mount_check=config.mount_check)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            ring = RingFile(cluster.ring_dir / "container.ring", secret)
            yield ContainerReplicator(config, broker, client, ring)
    finally:
        await asyncio.to_thread(broker.close)
