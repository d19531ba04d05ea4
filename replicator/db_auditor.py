"""The pass the container and account auditors share: Swift's db_auditor, over our storage.

Swift's container (account) auditor opens every database file of its devices, reads its info
(``get_info``, which fails on a malformed or corrupt SQLite file) and, for accounts, checks
that the per-policy totals add up to the account's; a database that fails is counted, logged
and quarantined (the file moved aside), and the replicator brings a good copy from a peer.
Torus keeps every container (account) of a device in one LMDB environment, so LMDB itself
answers for the file's structure (its pages are checked on every read), and what can rot is
an entry's bytes or the agreement between entries.  Each pass, per local device holding a
``containers.lmdb`` (``accounts.lmdb``), per database in id order, at most ``containers_per_s``
(``accounts_per_s``) a second, replicator/db_audit_checks.py checks that the record decodes
and names the database its id is the hash of; that every row decodes, re-encodes to its
stored bytes and sits in the table its deleted flag says; and that the stored totals (object
count and bytes used, and the stats version the account orders reports by; for an account,
its container count, object count and bytes used) are what the good rows add up to.

The rows are read a page (1,000 keys) per read transaction, at most ``rows_per_s`` a second:
unlike Swift's, which reads a database's info, this audit is O(rows), and one long read
transaction over a container of millions of rows would keep LMDB from reusing the pages the
server frees meanwhile.  Pages read at different moments may disagree with totals read at
another (a row written in between), so a database the walk finds anything wrong with is
audited again **in one read transaction**, and only what that snapshot shows is acted on.
Failures are rare, so the long transaction is too; a container written to all the time is
the exception (its walk may disagree with its totals every pass).

**What is done with a bad database.**  Quarantining it whole, as Swift does, would remove
rows that are good, and the local copy may be the only one (the others lost, or never
written): never delete what is not proven bad.  So only what failed is moved aside, entry by
entry (replicator/db_quarantine.py: written and fsynced first, then removed in one LMDB
transaction that also rewrites the totals as the good rows add them up):

- **a bad row** is removed, so that listings work again (a row that does not decode fails
  every listing page over it, and every write to that name), and, for a container, its
  **sync points are forgotten** (containerd_/changes.py's ``sync_points``, this container's
  only): a peer's replicator then finds no point for us and sends the full copy, which
  brings the row back; a peer's incremental push would not, since the row changed there long
  ago.  An account keeps no sync points: the peer's rows digest now differs from ours, which
  is what makes it send the full copy (replicator/account_replicator.py).
- **a bad record** is removed, and the container's sync points forgotten: the container is
  then unknown here (404), and the next push of a peer's replicator recreates the record
  from its own (``receive_record``) and, finding no sync point, sends every row.  Its rows
  and totals stay: they are good, and a new PUT of the container finds them too (its totals,
  then reset by the PUT, are mended by the next pass).  Left as it is, a bad record fails
  every request to the container and every push to it (the receiver cannot merge into it),
  so replication could never mend it.
- **bad totals** are rewritten from the rows: the rows are the data, the totals a sum of them
  kept for speed.  The account then gets this replica's next report as usual (the container
  updater sees the changed totals).  A container whose totals predate the stats sum
  (containerd_/info.py: counted from zero at its first change after that upgrade) fails
  once, and its stats version becomes what its rows give, the one every replica holding the
  same rows reports.  Known weakness: if the bad totals carried a greater stats version than
  the rows give, the account keeps the report made from them until the container's next
  change outdoes it.

Every removal and rewrite happens only if the entry is still what the audit read; a database
that changed meanwhile is counted ``deferred`` and audited again next pass.  Cancellation is
safe at any await: an entry written to quarantine but not yet removed is found, and written
again, by the next pass.

What this cannot find: rows carry no checksum (containerd_/rows.py), so a flipped bit that
leaves a row well formed — another ETag, another size — is a good row to the auditor (a
size change shows as bad totals, and the rewrite then follows the row).  Swift cannot find
that either.  A name stored in both the live and the tombstone table is not looked for.

The auditor opens the server's environments itself, with the broker's table names, as the
container updater does (replicator/container_dbs.py): its writes (rare: only on a failure)
wait behind the server's for the environment's write lock.  Stats (the summary line and the
recon record, ``<devices>/container-auditor.recon``): ``devices``, ``databases`` (audited),
``rows`` (read by the walks), ``passed``, ``failed``, ``bad records``, ``bad rows``, ``bad
totals`` (stored totals that disagree with rows that are all good), ``quarantined`` (entries
moved aside), ``repaired`` (failed databases mended whole), ``deferred``, ``errors`` (devices
or databases whose audit raised).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from service.db_scope import keys_after
from service.lmdb_devices import DeviceEnvs

from . import db_quarantine
from .config import DaemonConfig
from .daemon import Daemon
from .db_audit_checks import (
    START,
    DbAudit,
    DbKind,
    Mended,
    Tally,
    WalkAt,
    audit,
    finish,
    mend,
    walk_page,
)
from .devices import local_devices
from .throttle import Throttle

SCAN_PAGE = 1000  # database ids read per read transaction
ROW_PAGE = 1000  # row keys read per read transaction by the walk of a database
MAX_BATCH = 16  # the auditor's writes are rare (a failure each): a small writer queue will do


class DbAuditorConfig(Protocol):
    """What the pass reads of a db auditor's config (a ``DaemonConfig`` with a rate)."""

    devices: Path
    mount_check: bool
    rows_per_s: float

    @property
    def databases_per_s(self) -> float: ...


@dataclass
class DbAuditorStats:
    devices: int = 0  # devices visited
    databases: int = 0  # containers (accounts) audited
    rows: int = 0  # rows read by the walks (throttled by rows_per_s)
    passed: int = 0
    failed: int = 0  # databases with a bad record, bad rows or bad totals
    bad_records: int = 0
    bad_rows: int = 0  # rows (and undecodable long-name buckets) found bad
    bad_totals: int = 0  # totals wrong though every row is good
    quarantined: int = 0  # bad entries moved aside and removed
    repaired: int = 0  # failed databases mended whole
    deferred: int = 0  # failed databases that changed while audited: next pass
    errors: int = 0  # unusable devices, devices or databases whose audit raised


class DbAuditor(Daemon[DbAuditorStats]):
    def __init__(
        self,
        config: DaemonConfig,
        kind: DbKind,
        envs: DeviceEnvs,
        *,
        throttle: Throttle | None = None,
        row_throttle: Throttle | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(clock=clock, sleep=sleep)
        self.config = config
        self.kind = kind
        self._envs = envs
        self.throttle = throttle or Throttle(self._aconfig.databases_per_s)
        self.row_throttle = row_throttle or Throttle(self._aconfig.rows_per_s)

    @property
    def _aconfig(self) -> DbAuditorConfig:
        return self.config  # type: ignore[return-value]  # every db auditor config has them

    async def sweep(self) -> DbAuditorStats:
        stats = DbAuditorStats()
        devices, stats.errors = await asyncio.to_thread(
            local_devices,
            self.config.devices,
            self.kind.db_file,
            mount_check=self.config.mount_check,
        )
        for device in devices:
            stats.devices += 1
            try:
                await self._audit_device(device, stats)
            except Exception:
                stats.errors += 1
                self.log.exception("%s: device %s failed", self.name, device)
        return stats

    async def _audit_device(self, device: str, stats: DbAuditorStats) -> None:
        after = b""
        while True:
            ids = await asyncio.to_thread(self._ids, device, after)
            for db_id in ids:
                await self.throttle.wait()
                try:
                    await self.audit_db(device, db_id, stats)
                except Exception:
                    stats.errors += 1
                    self.log.exception("%s: %s/%s failed", self.name, device, db_id.hex())
            if len(ids) < SCAN_PAGE:
                return
            after = ids[-1]

    def _ids(self, device: str, after: bytes) -> list[bytes]:
        with self._envs.reading(device) as (txn, opened):
            return keys_after(txn, opened.tables[self.kind.records], after, SCAN_PAGE)

    def _read(self, device: str, db_id: bytes) -> DbAudit | None:
        with self._envs.reading(device) as (txn, opened):
            return audit(self.kind, txn, opened.tables, db_id)

    async def audit_db(self, device: str, db_id: bytes, stats: DbAuditorStats) -> None:
        """Audit one database and mend it if it failed."""
        found = await self._walk(device, db_id, stats)
        if found is None:
            return  # dropped since it was listed (a handoff the replicator removed)
        stats.databases += 1
        if found.failed and not found.snapshot:
            # Confirmed in one snapshot: a walk in pages may see rows written between its
            # pages and totals written after them, and a mend must act on what one moment held.
            found = await asyncio.to_thread(self._read, device, db_id)
        if found is None or not found.failed:
            stats.passed += 1
            return
        stats.failed += 1
        stats.bad_records += found.record_bad
        stats.bad_rows += found.bad_rows
        stats.bad_totals += found.totals_problem is not None and not found.bad_rows
        self.log.error(
            "%s: %s %s on %s failed its audit: %s",
            self.name,
            self.kind.kind,
            found.path or db_id.hex(),
            device,
            "; ".join(found.reasons()),
        )
        if found.bad:
            device_path = Path(self.config.devices) / device
            await asyncio.to_thread(db_quarantine.save, device_path, self.kind.kind, found)
        mended: Mended = await self._envs.write(
            device, lambda txn, opened: mend(self.kind, txn, opened.tables, found)
        )
        stats.quarantined += mended.removed
        if mended.changed:
            stats.deferred += 1
            self.log.info(
                "%s: %s changed while audited; audited again next pass", self.name, db_id.hex()
            )
        else:
            stats.repaired += 1

    async def _walk(self, device: str, db_id: bytes, stats: DbAuditorStats) -> DbAudit | None:
        """The database checked a page of rows per read transaction, ``rows_per_s`` at most
        (a long read transaction keeps the pages writers free from being reused, and the
        file grows); stopped at the first bad row.  None if the database is gone.  A database
        read in one page was read in one transaction: ``snapshot`` is set."""
        found = DbAudit(db_id, None)
        tally = self.kind.new_tally()
        at: WalkAt | None = START
        pages = 0
        while at is not None:
            read_before = found.rows + len(found.bad)
            at, present = await asyncio.to_thread(self._page, device, found, at, tally)
            pages += 1
            read = found.rows + len(found.bad) - read_before
            stats.rows += read
            if not present:
                return None
            await self.row_throttle.wait(read)
        found.snapshot = pages == 1 and not found.stopped
        return found

    def _page(
        self, device: str, found: DbAudit, at: WalkAt, tally: Tally
    ) -> tuple[WalkAt | None, bool]:
        """One page of the walk; the next (None: done), and whether the database is there.
        The last page also checks the record and the totals, in its transaction."""
        with self._envs.reading(device) as (txn, opened):
            tables = opened.tables
            after = walk_page(self.kind, txn, tables, found, at, ROW_PAGE, tally)
            if after is not None and not found.bad:
                return after, True
            found.stopped = after is not None
            return None, finish(self.kind, txn, tables, found, tally)


def quarantined_files(device_path: Path, kind: str) -> list[Path]:
    """Every quarantine file of ``kind`` on a device (for tests and tools)."""
    root = Path(device_path) / db_quarantine.QUARANTINE_DIR / f"{kind}s"
    if not root.is_dir():
        return []
    return sorted(
        Path(directory) / name
        for directory, _, names in os.walk(root)
        for name in names
        if name.endswith(".json")
    )
