"""The container replicator: every container's replicas hold the same rows and record.

The pass is replicator/db_replicator.py's (per local device, per container in id order; a
primary pushes to the other primaries, a handoff to every primary and then drops its copy);
a push is replicator/db_replication.py's (the record, then the rows changed since the peer's
sync point for this replica, or every row if it has none).  This module says what a
container is to them: ids from the container broker, ``BrokerSource`` and ``ContainerPeer``
(replicator/container_replication_peers.py), and a drop through the broker, only if the
container is unchanged since it was read.

Before it pushes a container, the pass reclaims it (Swift's ``_reclaim``): its tombstone rows
older than ``reclaim_age_s`` go (containerd_/reclaim.py says why replication stays whole),
and a container deleted longer ago than that is dropped instead of pushed.  Every replica
does the same in its own pass, so none is pushed back.  Accounts keep everything.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

from containerd_.broker import ContainerBroker
from containerd_.broker_base import ContainerBrokerBase
from containerd_.info import ContainerInfo
from ring.device import Device as RingDevice
from service.config import ClusterConfig
from service.timestamp import Timestamp

from .container_replication_peers import BrokerSource, ContainerPeer
from .container_replicator_config import ContainerReplicatorConfig
from .db_replication_http import ReplicateClient
from .db_replicator import BrokerDatabases, DbReplicator, DbReplicatorStats, open_db_replicator

ContainerReplicatorStats = DbReplicatorStats


class ContainerDatabases(BrokerDatabases):
    db_file = "containers.lmdb"
    _broker: ContainerBrokerBase

    async def sender(self, device: str) -> str:
        await self._broker.prepare_device(device)
        return (await self._broker.replica_id(device)).hex()

    def ids(self, device: str, after: bytes, limit: int) -> list[bytes]:
        return self._broker.container_ids(device, after, limit)

    def source(self, device: str, db_id: bytes) -> BrokerSource:
        return BrokerSource(self._broker, device, db_id)

    def peer(self, node: RingDevice, partition: int, info: ContainerInfo) -> ContainerPeer:
        path = f"/{info.account}/{info.container}"
        return ContainerPeer(ReplicateClient(self._client, node, partition, path))

    async def drop(self, device: str, db_id: bytes, seen: tuple[Any, int]) -> bool:
        return await self._broker.drop_container(device, db_id, seen[0], seen[1])

    async def reclaim(
        self, device: str, db_id: bytes, before: Timestamp, batch: int
    ) -> tuple[int, bool]:
        """Tombstones older than ``before`` removed (how many), then the container dropped if
        deleted before ``before`` and unchanged since read (whether): a row or record landing
        meanwhile keeps it for the next pass."""
        rows = await self._broker.reclaim(device, db_id, before, batch)
        info, seq = await asyncio.to_thread(self._broker.replication_source, device, db_id)
        if info is None or not info.deleted or info.delete_timestamp >= before:
            return rows, False
        return rows, await self._broker.drop_container(device, db_id, info, seq)


class ContainerReplicator(DbReplicator):
    name = "container-replicator"
    ring_file = "container.ring"
    databases = ContainerDatabases
    config: ContainerReplicatorConfig
    _dbs: ContainerDatabases

    async def reclaim(self, device: str, db_id: bytes, stats: ContainerReplicatorStats) -> bool:
        """The container's tombstones older than ``reclaim_age_s`` (containerd_/reclaim.py),
        then, as Swift's replicator, the whole container if it was deleted (no object left)
        longer ago than that: it is not pushed."""
        before = Timestamp.from_seconds(max(self._wall_clock() - self.config.reclaim_age_s, 0))
        rows, dropped = await self._dbs.reclaim(
            device, db_id, before, self.config.reclaim_batch_rows
        )
        stats.rows_reclaimed += rows
        stats.databases_reclaimed += dropped
        return dropped


def open_container_replicator(
    config: ContainerReplicatorConfig, cluster: ClusterConfig
) -> AbstractAsyncContextManager[ContainerReplicator]:
    """The daemon with its broker, client and ring, closed on exit
    (``torus serve container-replicator``)."""
    return open_db_replicator(ContainerReplicator, ContainerBroker, config, cluster)
