"""The account auditor: checks every account database of this node's devices
(``torus serve account-auditor``).

The pass, and what is done with an account that fails, are replicator/db_auditor.py's (which
says why); this module says what an account is to it: the account broker's tables
(accountd/broker.py) and its record, row and totals formats (accountd/info.py,
accountd/rows.py).  Swift's account auditor checks that the per-policy totals add up to the
account's; here the totals are checked against the container rows themselves.  An account
keeps no sync points: removing a row changes its rows digest, which is what makes a peer's
replicator send every row (replicator/account_replicator.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import lmdb

from accountd import rows
from accountd.broker import TABLES
from accountd.info import decode_record, decode_totals, encode_totals
from accountd.rows import ContainerRow
from ring.placement import hash_path
from service.config import ClusterConfig
from service.lmdb_devices import DeviceEnvs

from .db_auditor import MAX_BATCH, DbAuditor
from .db_auditor_config import AccountAuditorConfig

DB_FILE = "accounts.lmdb"  # accountd/broker.py's name for a device's environment


class AccountTally:
    """An account's totals as ``accountd.broker_base._merge_rows`` keeps them: container
    count, object count and bytes used over the live container rows."""

    def __init__(self) -> None:
        self.container_count = 0
        self.object_count = 0
        self.bytes_used = 0

    def add(self, row: ContainerRow) -> None:
        if not row.deleted:
            self.container_count += 1
            self.object_count += row.object_count
            self.bytes_used += row.bytes_used

    def totals(self) -> tuple[Any, ...]:
        return (self.container_count, self.object_count, self.bytes_used)


class AccountKind:
    kind = "account"
    db_file = DB_FILE
    tables = TABLES
    records, totals, live, tombstones = "accounts", "totals", "containers", "tombstones"

    def __init__(self, hash_secret: bytes) -> None:
        self._secret = hash_secret

    def record_path(self, db_id: bytes, record: bytes) -> str:
        info = decode_record(record, (0, 0, 0))
        if hash_path(self._secret, info.account) != db_id:
            raise ValueError(f"it names /{info.account}, whose id is another")
        return f"/{info.account}"

    def decode_row(self, name: bytes, value: bytes) -> ContainerRow:
        row = rows.decode(name.decode("utf-8"), value)
        # Version 1 rows (no stats sum) still decode, and re-encode as version 2.
        if value[:1] == bytes([rows.VERSION]) and rows.encode(row) != value:
            raise ValueError("the row does not re-encode to its stored bytes")
        return row

    def row_deleted(self, row: ContainerRow) -> bool:
        return row.deleted

    def new_tally(self) -> AccountTally:
        return AccountTally()

    def decode_totals(self, raw: bytes) -> tuple[Any, ...]:
        return decode_totals(raw)

    def encode_totals(self, totals: tuple[Any, ...]) -> bytes:
        container_count, object_count, bytes_used = totals
        return encode_totals((container_count, object_count, bytes_used))

    def totals_hold(self, stored: tuple[Any, ...], found: tuple[Any, ...]) -> bool:
        return stored == found

    def forget_sync_points(
        self, txn: lmdb.Transaction, tables: dict[str, Any], db_id: bytes
    ) -> None:
        """None kept: the rows digest tells a peer to send every row."""


class AccountAuditor(DbAuditor):
    name = "account-auditor"


@contextlib.asynccontextmanager
async def open_account_auditor(
    config: AccountAuditorConfig, cluster: ClusterConfig
) -> AsyncIterator[AccountAuditor]:
    """The daemon with the devices' environments, closed on exit (``torus serve
    account-auditor``).  ``cluster``: the hash secret, to check a record's name against its
    id."""
    envs = DeviceEnvs(
        str(config.devices), DB_FILE, TABLES, max_batch=MAX_BATCH, mount_check=config.mount_check
    )
    try:
        kind = AccountKind(cluster.hash_path_secret.encode("utf-8"))
        yield AccountAuditor(config, kind, envs)
    finally:
        await asyncio.to_thread(envs.close)
