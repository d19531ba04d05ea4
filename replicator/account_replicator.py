"""The account replicator: every account's replicas hold the same rows and record.

The pass is replicator/db_replicator.py's, as the container replicator's; a push is
replicator/db_replication.py's, with one difference: the account LMDB file keeps no change
log (its format is left as it is), so there is no sync point.  The sync step sends the
record and the digest of the local rows (accountd/replication.py); a peer holding the same
rows answers ``in_sync`` (the push is then that one request), any other gets every row, in
pages (the full copy), which it merges into its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from accountd.broker import AccountBroker
from accountd.broker_base import AccountBrokerBase
from accountd.info import AccountInfo
from accountd.replication import record_to_wire, row_to_wire
from ring.device import Device as RingDevice
from service.backend_client import BackendClient, open_backend_client
from service.config import ClusterConfig

from .account_replicator_config import AccountReplicatorConfig
from .db_replication_http import ReplicateClient
from .db_replicator import DbReplicator
from .rings import RingFile
from .throttle import Throttle

NO_SENDER = "00" * 16  # the receiver keeps no sync point to key by a sender


class AccountSource:
    def __init__(self, broker: AccountBrokerBase, device: str, aid: bytes) -> None:
        self._broker = broker
        self._device = device
        self._aid = aid

    def record(self) -> tuple[dict[str, Any], int] | None:
        info, digest = self._broker.replication_source(self._device, self._aid)
        if info is None:
            return None
        return {**record_to_wire(info), "rows_digest": digest}, 0

    def changed(self, after_seq: int, limit: int) -> tuple[list[list[Any]], int]:
        return [], after_seq  # never asked: a peer's point is 0 (in sync) or None

    def page(self, after: str | None, limit: int) -> tuple[list[list[Any]], str | None]:
        rows = self._broker.rows_after(self._device, self._aid, after, limit)
        return [row_to_wire(row) for row in rows], rows[-1].name if rows else after


class AccountPeer:
    """A primary's account server: point 0 when it holds the same rows (nothing to send),
    None otherwise (send them all)."""

    def __init__(self, replicate: ReplicateClient) -> None:
        self._replicate = replicate

    async def sync(self, record: dict[str, Any], sender: str) -> int | None:
        answer = await self._replicate.call({"op": "sync", "sender": sender, "record": record})
        return 0 if answer.get("in_sync") is True else None

    async def merge(self, rows: list[list[Any]], sender: str, point: int | None) -> None:
        await self._replicate.call({"op": "merge", "sender": sender, "rows": rows, "point": point})


class AccountDatabases:
    db_file = "accounts.lmdb"

    def __init__(self, broker: AccountBrokerBase, client: BackendClient) -> None:
        self._broker = broker
        self._client = client

    async def sender(self, device: str) -> str:
        await self._broker.prepare_device(device)
        return NO_SENDER

    def ids(self, device: str, after: bytes, limit: int) -> list[bytes]:
        return self._broker.account_ids(device, after, limit)

    def snapshot(self, device: str, db_id: bytes) -> tuple[Any, Any] | None:
        info, digest = self._broker.replication_source(device, db_id)
        return None if info is None else (info, digest)

    def source(self, device: str, db_id: bytes) -> AccountSource:
        return AccountSource(self._broker, device, db_id)

    def peer(self, node: RingDevice, partition: int, info: AccountInfo) -> AccountPeer:
        return AccountPeer(ReplicateClient(self._client, node, partition, f"/{info.account}"))

    async def drop(self, device: str, db_id: bytes, seen: tuple[Any, Any]) -> bool:
        return await self._broker.drop_account(device, db_id, seen[0], seen[1])


class AccountReplicator(DbReplicator):
    name = "account-replicator"

    def __init__(
        self,
        config: AccountReplicatorConfig,
        broker: AccountBrokerBase,
        client: BackendClient,
        ring: RingFile,
        *,
        account_throttle: Throttle | None = None,
        row_throttle: Throttle | None = None,
        my_ips: frozenset[str] | None = None,
    ) -> None:
        super().__init__(
            config,
            AccountDatabases(broker, client),
            ring,
            db_throttle=account_throttle or Throttle(config.accounts_per_s),
            row_throttle=row_throttle or Throttle(config.rows_per_s),
            my_ips=my_ips,
        )


@contextlib.asynccontextmanager
async def open_account_replicator(
    config: AccountReplicatorConfig, cluster: ClusterConfig
) -> AsyncIterator[AccountReplicator]:
    """The daemon with its broker, client and ring, closed on exit
    (``torus serve account-replicator``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    broker = AccountBroker(str(config.devices), secret, mount_check=config.mount_check)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            ring = RingFile(cluster.ring_dir / "account.ring", secret)
            yield AccountReplicator(config, broker, client, ring)
    finally:
        await asyncio.to_thread(broker.close)
