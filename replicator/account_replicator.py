"""The account replicator: every account's replicas hold the same rows and record.

The pass is replicator/db_replicator.py's, as the container replicator's; a push is
replicator/db_replication.py's, with one difference: the account LMDB file keeps no change
log (its format is left as it is), so there is no sync point.  The sync step sends the
record and the digest of the local rows (accountd/replication.py); a peer holding the same
rows answers ``in_sync`` (the push is then that one request), any other gets every row, in
pages (the full copy), which it merges into its own.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from accountd.broker import AccountBroker
from accountd.broker_base import AccountBrokerBase
from accountd.info import AccountInfo
from accountd.replication import record_to_wire, row_to_wire
from ring.device import Device as RingDevice
from service.config import ClusterConfig

from .account_replicator_config import AccountReplicatorConfig
from .db_replication_http import ReplicateClient
from .db_replicator import BrokerDatabases, DbReplicator, open_db_replicator

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


class AccountDatabases(BrokerDatabases):
    db_file = "accounts.lmdb"
    _broker: AccountBrokerBase

    async def sender(self, device: str) -> str:
        await self._broker.prepare_device(device)
        return NO_SENDER

    def ids(self, device: str, after: bytes, limit: int) -> list[bytes]:
        return self._broker.account_ids(device, after, limit)

    def source(self, device: str, db_id: bytes) -> AccountSource:
        return AccountSource(self._broker, device, db_id)

    def peer(self, node: RingDevice, partition: int, info: AccountInfo) -> AccountPeer:
        return AccountPeer(ReplicateClient(self._client, node, partition, f"/{info.account}"))

    async def drop(self, device: str, db_id: bytes, seen: tuple[Any, Any]) -> bool:
        return await self._broker.drop_account(device, db_id, seen[0], seen[1])


class AccountReplicator(DbReplicator):
    name = "account-replicator"
    ring_file = "account.ring"
    databases = AccountDatabases


def open_account_replicator(
    config: AccountReplicatorConfig, cluster: ClusterConfig
) -> AbstractAsyncContextManager[AccountReplicator]:
    """The daemon with its broker, client and ring, closed on exit
    (``torus serve account-replicator``)."""
    return open_db_replicator(AccountReplicator, AccountBroker, config, cluster)
