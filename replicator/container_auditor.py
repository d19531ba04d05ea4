"""The container auditor: checks every container database of this node's devices
(``torus serve container-auditor``).

The pass, and what is done with a container that fails, are replicator/db_auditor.py's
(which says why); this module says what a container is to it: the container broker's
tables (containerd_/broker.py), its record, row and totals formats (containerd_/info.py,
containerd_/rows.py), and the sync points a removal makes every peer forget
(containerd_/changes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import lmdb

from containerd_ import rows
from containerd_.broker import TABLES
from containerd_.info import NEVER, NO_TOTALS, decode_record, decode_totals, encode_totals
from containerd_.rows import ObjectRow, stats_key
from ring.placement import hash_path
from service.config import ClusterConfig
from service.db_scope import drop_scope
from service.lmdb_devices import DeviceEnvs

from .db_auditor import MAX_BATCH, DbAuditor
from .db_auditor_config import ContainerAuditorConfig

DB_FILE = "containers.lmdb"  # containerd_/broker.py's name for a device's environment


class ContainerTally:
    """A container's totals as ``containerd_.broker_base._merge_rows`` keeps them: object
    count and bytes used over the live rows; the stats version over every row."""

    def __init__(self) -> None:
        self.object_count = 0
        self.bytes_used = 0
        self.stats_timestamp = NEVER
        self.stats_sum = 0

    def add(self, row: ObjectRow) -> None:
        if not row.deleted:
            self.object_count += 1
            self.bytes_used += row.size
        self.stats_timestamp = max(self.stats_timestamp, row.timestamp)
        self.stats_sum += stats_key(row)

    def totals(self) -> tuple[Any, ...]:
        return (self.object_count, self.bytes_used, self.stats_timestamp, self.stats_sum)


class ContainerKind:
    kind = "container"
    db_file = DB_FILE
    tables = TABLES
    records, totals, live, tombstones = "containers", "totals", "objects", "tombstones"

    def __init__(self, hash_secret: bytes) -> None:
        self._secret = hash_secret

    def record_path(self, db_id: bytes, record: bytes) -> str:
        info = decode_record(record, NO_TOTALS)
        if hash_path(self._secret, info.account, info.container) != db_id:
            raise ValueError(f"it names /{info.account}/{info.container}, whose id is another")
        return f"/{info.account}/{info.container}"

    def decode_row(self, name: bytes, value: bytes) -> ObjectRow:
        row = rows.decode(name.decode("utf-8"), value)
        if rows.encode(row) != value:  # one format version: a good row is its own encoding
            raise ValueError("the row does not re-encode to its stored bytes")
        return row

    def row_deleted(self, row: ObjectRow) -> bool:
        return row.deleted

    def new_tally(self) -> ContainerTally:
        return ContainerTally()

    def decode_totals(self, raw: bytes) -> tuple[Any, ...]:
        return decode_totals(raw)

    def encode_totals(self, totals: tuple[Any, ...]) -> bytes:
        object_count, bytes_used, stats_timestamp, stats_sum = totals
        return encode_totals((object_count, bytes_used, stats_timestamp, stats_sum))

    def totals_hold(self, stored: tuple[Any, ...], found: tuple[Any, ...]) -> bool:
        """Counts and bytes as the live rows add up; the stats version at least what every
        row adds up to: it keeps counting tombstone rows the replicator has reclaimed
        (containerd_/reclaim.py), so it may be more, never less.  (A version damaged upward
        is not found: the price of not keeping a reclaimed sum apart.)"""
        return (
            stored[:2] == found[:2]
            and stored[2] >= found[2]  # the newest row's time
            and stored[3] >= found[3]  # the sum of every row's key: only ever grows
        )

    def forget_sync_points(
        self, txn: lmdb.Transaction, tables: dict[str, Any], db_id: bytes
    ) -> None:
        drop_scope(txn, tables["sync_points"], db_id)


class ContainerAuditor(DbAuditor):
    name = "container-auditor"


@contextlib.asynccontextmanager
async def open_container_auditor(
    config: ContainerAuditorConfig, cluster: ClusterConfig
) -> AsyncIterator[ContainerAuditor]:
    """The daemon with the devices' environments, closed on exit (``torus serve
    container-auditor``).  ``cluster``: the hash secret, to check a record's names against
    its id."""
    envs = DeviceEnvs(
        str(config.devices), DB_FILE, TABLES, max_batch=MAX_BATCH, mount_check=config.mount_check
    )
    try:
        kind = ContainerKind(cluster.hash_path_secret.encode("utf-8"))
        yield ContainerAuditor(config, kind, envs)
    finally:
        await asyncio.to_thread(envs.close)
