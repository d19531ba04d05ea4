"""The container and account auditors (replicator/container_auditor.py,
replicator/account_auditor.py, the shared pass in replicator/db_auditor.py) on real LMDB
environments made by the real brokers in a tmp dir.

Databases are written through the brokers, which are then closed (one process must not open
an environment twice; the auditor opens its own).  Faults are injected at the storage seam: a
row's, a record's or the totals' bytes rewritten with a raw LMDB transaction.  The brokers are
reopened afterwards to see what a listing and a replication push see.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import pytest

from accountd.broker import AccountBroker
from accountd.errors import AccountNotFound
from containerd_ import rows as object_rows
from containerd_.broker import ContainerBroker
from containerd_.errors import ContainerNotFound
from containerd_.info import decode_totals, encode_totals
from containerd_.replication import record_from_wire, row_from_wire
from replicator import db_audit_checks as checks
from replicator import db_auditor, db_replication, recon
from replicator.account_auditor import AccountKind, open_account_auditor
from replicator.container_auditor import ContainerKind, open_container_auditor
from replicator.container_replication_peers import BrokerSource
from replicator.db_auditor import DbAuditorStats, quarantined_files
from replicator.db_auditor_config import AccountAuditorConfig, ContainerAuditorConfig
from replicator.throttle import Throttle
from ring.placement import hash_path
from service.config import ClusterConfig
from service.listing_tables import table_key
from service.timestamp import Timestamp

SECRET = "auditor-secret"
DEV = "sda"
ACCOUNT = "AUTH_test"
LONG = "l" * 600  # past a short LMDB key's 494 bytes: stored in a long names' bucket
run = asyncio.run


def ts(n: int) -> Timestamp:
    return Timestamp.from_seconds(1_700_000_000 + n)


def cid(container: str) -> bytes:
    return hash_path(SECRET.encode(), ACCOUNT, container)


def container_broker(root: Path) -> ContainerBroker:
    (root / DEV).mkdir(parents=True, exist_ok=True)
    return ContainerBroker(str(root), SECRET.encode())


def fill_containers(root: Path, objects: dict[str, list[str]]) -> None:
    """Each container with its objects (sizes 10, 11, ...), the first deleted again."""

    async def main() -> None:
        broker = container_broker(root)
        try:
            for container, names in objects.items():
                await broker.create(DEV, ACCOUNT, container, ts(0))
                for i, name in enumerate(names):
                    await broker.put_object(
                        DEV, ACCOUNT, container, name, ts(i + 1), 10 + i, "text/plain", "e" * 32
                    )
                if names:
                    await broker.delete_object(DEV, ACCOUNT, container, names[0], ts(100))
        finally:
            broker.close()

    run(main())


def poke(root: Path, filename: str, change: Callable[[lmdb.Transaction, Any], None]) -> None:
    """Fault injection: ``change(txn, tables)`` in a raw write transaction on the device."""
    env = lmdb.open(str(root / DEV / filename), max_dbs=16)
    try:
        with env.begin(write=True) as txn:
            names = ("containers", "totals", "objects", "tombstones", "sync_points", "accounts")
            change(txn, {name: env.open_db(name.encode(), txn=txn) for name in names})
    finally:
        env.close()


def audit_containers(root: Path, **overrides: Any) -> DbAuditorStats:
    config = ContainerAuditorConfig(
        devices=root, mount_check=False, containers_per_s=0, **overrides
    )

    async def main() -> DbAuditorStats:
        async with open_container_auditor(config, ClusterConfig(SECRET)) as auditor:
            return await auditor.run_once()

    return run(main())


def audit_accounts(root: Path) -> DbAuditorStats:
    config = AccountAuditorConfig(devices=root, mount_check=False, accounts_per_s=0)

    async def main() -> DbAuditorStats:
        async with open_account_auditor(config, ClusterConfig(SECRET)) as auditor:
            return await auditor.run_once()

    return run(main())


def listing(root: Path, container: str) -> list[str]:
    broker = container_broker(root)
    try:
        return [row.name for row in broker.list_objects(DEV, ACCOUNT, container)]
    finally:
        broker.close()


def container_info(root: Path, container: str) -> Any:
    broker = container_broker(root)
    try:
        return broker.info(DEV, ACCOUNT, container)
    finally:
        broker.close()


# -- containers --


def test_clean_containers_pass_and_the_pass_is_recorded(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b", LONG], "c2": [], "c3": ["x"]})
    stats = audit_containers(tmp_path)
    assert stats == DbAuditorStats(devices=1, databases=3, rows=4, passed=3)
    record = recon.read(recon.recon_path(tmp_path, "container-auditor"))
    assert record.ok and record.stats["passed"] == 3 and record.stats["failed"] == 0
    assert quarantined_files(tmp_path / DEV, "container") == []


def test_a_row_that_does_not_decode_is_quarantined_and_the_totals_follow(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b", "c"], "c2": ["a", "b"]})
    bad = b"\x07garbage"
    poke(
        tmp_path, "containers.lmdb", lambda txn, t: txn.put(cid("c1") + b"b", bad, db=t["objects"])
    )
    with pytest.raises(ValueError):
        listing(tmp_path, "c1")  # what a client sees before the audit: a 500

    stats = audit_containers(tmp_path)
    assert (stats.databases, stats.passed, stats.failed) == (2, 1, 1)
    assert (stats.bad_rows, stats.bad_records, stats.bad_totals) == (1, 0, 0)
    assert (stats.quarantined, stats.repaired, stats.deferred, stats.errors) == (1, 1, 0, 0)
    assert listing(tmp_path, "c1") == ["c"]  # "a" was deleted by fill_containers
    info = container_info(tmp_path, "c1")
    assert (info.object_count, info.bytes_used) == (1, 12)
    [saved] = quarantined_files(tmp_path / DEV, "container")
    entry = json.loads(saved.read_text())
    assert entry["path"] == "/AUTH_test/c1" and entry["table"] == "objects"
    assert bytes.fromhex(entry["value"]) == bad and bytes.fromhex(entry["name"]) == b"b"
    assert audit_containers(tmp_path) == DbAuditorStats(devices=1, databases=2, rows=4, passed=2)


def test_an_undecodable_record_goes_and_the_rows_stay(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b"], "c2": ["a", "b"]})
    poke(
        tmp_path, "containers.lmdb", lambda txn, t: txn.put(cid("c1"), b"\x01{", db=t["containers"])
    )

    stats = audit_containers(tmp_path)
    assert (stats.failed, stats.bad_records, stats.bad_rows, stats.quarantined) == (1, 1, 0, 1)
    with pytest.raises(ContainerNotFound):
        listing(tmp_path, "c1")  # unknown here until a peer's push brings the record back
    assert listing(tmp_path, "c2") == ["b"]

    def rows_kept(txn: lmdb.Transaction, tables: Any) -> None:
        assert txn.get(cid("c1") + b"b", db=tables["objects"]) is not None
        assert decode_totals(txn.get(cid("c1"), db=tables["totals"]))[:2] == (1, 11)

    poke(tmp_path, "containers.lmdb", rows_kept)
    assert audit_containers(tmp_path).databases == 1  # c1 has no record: not listed


def test_a_record_under_another_containers_id_is_bad(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a"], "c2": ["b", "c"]})

    def swap(txn: lmdb.Transaction, tables: Any) -> None:
        txn.put(cid("c1"), txn.get(cid("c2"), db=tables["containers"]), db=tables["containers"])

    poke(tmp_path, "containers.lmdb", swap)
    stats = audit_containers(tmp_path)
    assert (stats.failed, stats.bad_records, stats.passed) == (1, 1, 1)
    assert listing(tmp_path, "c2") == ["c"]


@pytest.mark.parametrize(
    "totals",
    [
        lambda good: encode_totals((good[0] + 5, good[1], good[2], good[3])),  # count
        lambda good: encode_totals((good[0], good[1] - 3, good[2], good[3])),  # bytes
        # A stats sum below what the rows add up to (above is taken for reclaimed rows:
        # tests/unit/test_container_reclaim.py).
        lambda good: encode_totals((good[0], good[1], good[2], good[3] - 1)),
        lambda good: b"\x00" * 7,  # undecodable
    ],
    ids=["count", "bytes", "stats-sum", "undecodable"],
)
def test_wrong_totals_are_rewritten_from_the_rows(tmp_path: Path, totals: Callable) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b", "c"], "c2": ["a"]})
    before = container_info(tmp_path, "c1")
    good = (before.object_count, before.bytes_used, before.stats_timestamp, before.stats_sum)
    key = cid("c1")
    poke(tmp_path, "containers.lmdb", lambda txn, t: txn.put(key, totals(good), db=t["totals"]))

    stats = audit_containers(tmp_path)
    assert (stats.failed, stats.bad_totals, stats.bad_rows, stats.quarantined) == (1, 1, 0, 0)
    assert (stats.repaired, stats.passed) == (1, 1)
    assert container_info(tmp_path, "c1") == before
    assert quarantined_files(tmp_path / DEV, "container") == []


def test_a_live_row_in_the_tombstones_table_is_bad(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b"]})

    def misfile(txn: lmdb.Transaction, tables: Any) -> None:  # "b" moved, bytes unchanged
        key = cid("c1") + b"b"
        txn.put(key, txn.pop(key, db=tables["objects"]), db=tables["tombstones"])

    poke(tmp_path, "containers.lmdb", misfile)
    stats = audit_containers(tmp_path)
    assert (stats.bad_rows, stats.quarantined, stats.repaired) == (1, 1, 1)
    saved = json.loads(quarantined_files(tmp_path / DEV, "container")[0].read_text())
    assert saved["table"] == "tombstones" and "live tombstone" in saved["reason"]


def test_a_row_with_trailing_bytes_is_bad(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b"]})

    def append(txn: lmdb.Transaction, tables: Any) -> None:
        key = cid("c1") + b"b"
        txn.put(key, txn.get(key, db=tables["objects"]) + b"\x00", db=tables["objects"])

    poke(tmp_path, "containers.lmdb", append)
    assert audit_containers(tmp_path).bad_rows == 1


def test_a_bad_row_in_a_long_names_bucket_goes_alone(tmp_path: Path) -> None:
    other = LONG + "x"  # shares LONG's bucket
    fill_containers(tmp_path, {"c1": ["a", LONG, other]})

    def corrupt(txn: lmdb.Transaction, tables: Any) -> None:
        # Rewrite LONG's row in its bucket through the table's own encoding.
        from service.listing_tables import ListingTable

        ListingTable(tables["objects"]).put(txn, cid("c1"), LONG.encode(), b"\x09bad")

    poke(tmp_path, "containers.lmdb", corrupt)
    stats = audit_containers(tmp_path)
    assert (stats.bad_rows, stats.quarantined, stats.repaired) == (1, 1, 1)
    assert listing(tmp_path, "c1") == [other]


def test_an_undecodable_bucket_is_quarantined_whole(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b", LONG]})
    key = table_key(cid("c1"), LONG.encode())
    poke(tmp_path, "containers.lmdb", lambda txn, t: txn.put(key, b"\x05", db=t["objects"]))
    stats = audit_containers(tmp_path)
    assert (stats.bad_rows, stats.quarantined) == (1, 1)
    assert listing(tmp_path, "c1") == ["b"]
    saved = json.loads(quarantined_files(tmp_path / DEV, "container")[0].read_text())
    assert saved["name"] is None and bytes.fromhex(saved["key"]) == key


def test_removing_a_row_forgets_only_that_containers_sync_points(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b"], "c2": ["a"]})

    def points(txn: lmdb.Transaction, tables: Any) -> None:
        for container in ("c1", "c2"):
            txn.put(cid(container) + b"p" * 16, b"\x00" * 7 + b"\x05", db=tables["sync_points"])
        txn.put(cid("c1") + b"b", b"\x07", db=tables["objects"])

    poke(tmp_path, "containers.lmdb", points)
    audit_containers(tmp_path)

    def check(txn: lmdb.Transaction, tables: Any) -> None:
        assert txn.get(cid("c1") + b"p" * 16, db=tables["sync_points"]) is None
        assert txn.get(cid("c2") + b"p" * 16, db=tables["sync_points"]) is not None

    poke(tmp_path, "containers.lmdb", check)


class BrokerPeer:
    """A peer that is another broker: the receiver's half of REPLICATE, minus HTTP."""

    def __init__(self, broker: ContainerBroker, container: str) -> None:
        self.broker = broker
        self.container = container

    async def sync(self, record: dict[str, Any], sender: str) -> int | None:
        info = record_from_wire(record)
        _, point = await self.broker.receive_record(
            DEV, info.account, info.container, info, bytes.fromhex(sender)
        )
        return point

    async def merge(self, rows: list[list[Any]], sender: str, point: int | None) -> None:
        decoded = [row_from_wire(row) for row in rows]
        await self.broker.receive_rows(
            DEV, ACCOUNT, self.container, bytes.fromhex(sender), decoded, point
        )


def push(good_root: Path, bad_root: Path, container: str) -> db_replication.Pushed | None:
    """One push of ``container`` from the good replica to the audited one."""

    async def main() -> db_replication.Pushed | None:
        good, bad = container_broker(good_root), container_broker(bad_root)
        try:
            sender = (await good.replica_id(DEV)).hex()
            source = BrokerSource(good, DEV, cid(container))
            return await db_replication.push(
                source, BrokerPeer(bad, container), sender, page_rows=100
            )
        finally:
            good.close()
            bad.close()

    return run(main())


@pytest.mark.parametrize("damage", ["row", "record"])
def test_the_replicators_next_push_restores_what_the_auditor_removed(
    tmp_path: Path, damage: str
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    fill_containers(good, {"c1": ["a", "b", "c", LONG]})
    container_broker(bad).close()
    assert push(good, bad, "c1").full_copy  # type: ignore[union-attr]
    assert not push(good, bad, "c1").full_copy  # type: ignore[union-attr]  # in sync
    whole = listing(good, "c1")
    assert listing(bad, "c1") == whole

    if damage == "row":
        change = lambda txn, t: txn.put(cid("c1") + b"c", b"\x00", db=t["objects"])  # noqa: E731
    else:
        change = lambda txn, t: txn.put(cid("c1"), b"\x01[]", db=t["containers"])  # noqa: E731
    poke(bad, "containers.lmdb", change)
    stats = audit_containers(bad)
    assert (stats.failed, stats.quarantined, stats.repaired) == (1, 1, 1)

    pushed = push(good, bad, "c1")
    assert pushed is not None and pushed.full_copy  # the sync point was forgotten
    assert listing(bad, "c1") == whole
    assert container_info(bad, "c1") == container_info(good, "c1")
    assert audit_containers(bad).passed == 1


def test_a_repair_is_deferred_when_the_database_changed_meanwhile(tmp_path: Path) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b"]})
    kind = ContainerKind(SECRET.encode())
    env = lmdb.open(str(tmp_path / DEV / "containers.lmdb"), max_dbs=16)
    try:
        tables = {}
        with env.begin(write=True) as txn:
            tables = {name: env.open_db(name.encode(), txn=txn) for name in kind.tables}
            txn.put(cid("c1") + b"b", b"\x07", db=tables["objects"])
        with env.begin() as txn:
            found = checks.audit(kind, txn, tables, cid("c1"))
        assert found is not None and found.failed
        with env.begin(write=True) as txn:  # the row is rewritten after the audit read it
            txn.put(cid("c1") + b"b", b"\x08", db=tables["objects"])
        with env.begin(write=True) as txn:
            mended = checks.mend(kind, txn, tables, found)
        assert (mended.removed, mended.changed, mended.totals_written) == (0, True, False)
        with env.begin() as txn:
            assert txn.get(cid("c1") + b"b", db=tables["objects"]) == b"\x08"
    finally:
        env.close()


def test_the_pass_is_throttled_per_container(tmp_path: Path) -> None:
    fill_containers(tmp_path, {f"c{i}": [] for i in range(5)})
    now = [0.0]
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        now[0] += delay

    throttle = Throttle(2.0, max_burst_s=0, clock=lambda: now[0], sleep=sleep)
    config = ContainerAuditorConfig(devices=tmp_path, mount_check=False, containers_per_s=2)

    async def main() -> DbAuditorStats:
        async with open_container_auditor(config, ClusterConfig(SECRET)) as auditor:
            auditor.throttle = throttle
            return await auditor.run_once()

    assert run(main()).passed == 5
    assert slept == [0.5] * 4  # the first goes at once, each next 1/2 s later


def test_the_walk_reads_pages_and_finds_a_bad_row_in_a_later_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_auditor, "ROW_PAGE", 2)  # keys per read transaction
    names = ["a", "b", "c", LONG, LONG + "x", "d", "e"]
    fill_containers(tmp_path, {"c1": names, "c2": ["x", "y", "z"]})
    clean = audit_containers(tmp_path)
    assert (clean.passed, clean.rows) == (2, 10)
    poke(
        tmp_path, "containers.lmdb", lambda txn, t: txn.put(cid("c1") + b"e", b"", db=t["objects"])
    )
    stats = audit_containers(tmp_path)
    assert (stats.failed, stats.bad_rows, stats.quarantined, stats.passed) == (1, 1, 1, 1)
    assert listing(tmp_path, "c1") == ["b", "c", "d", LONG, LONG + "x"]


def test_the_walk_is_throttled_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_auditor, "ROW_PAGE", 2)
    fill_containers(tmp_path, {"c1": ["a", "b", "c", "d", "e"]})  # 5 rows: pages of 2, 2, 1
    now = [0.0]
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        now[0] += delay

    config = ContainerAuditorConfig(devices=tmp_path, mount_check=False, containers_per_s=0)

    async def main() -> DbAuditorStats:
        async with open_container_auditor(config, ClusterConfig(SECRET)) as auditor:
            auditor.row_throttle = Throttle(4.0, max_burst_s=0, clock=lambda: now[0], sleep=sleep)
            return await auditor.run_once()

    assert run(main()).rows == 5
    assert slept == [0.5, 0.5]  # 2 rows at 4/s, then 2 more; the last page's wait is next


def test_a_walk_that_races_a_write_is_confirmed_in_one_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row lands behind the walk (and the totals count it) between two of its pages: the
    walk's count disagrees with the totals, the snapshot audit agrees, nothing is touched."""
    monkeypatch.setattr(db_auditor, "ROW_PAGE", 1)
    fill_containers(tmp_path, {"c1": ["a", "c", "d"]})
    config = ContainerAuditorConfig(devices=tmp_path, mount_check=False, containers_per_s=0)
    late = object_rows.ObjectRow.put("b", ts(50), 7, "text/plain", "f" * 32)

    def write_behind(txn: lmdb.Transaction, tables: dict[str, Any]) -> None:
        txn.put(cid("c1") + b"b", object_rows.encode(late), db=tables["objects"])
        count, used, stats_ts, stats_sum = decode_totals(txn.get(cid("c1"), db=tables["totals"]))
        updated = (count + 1, used + 7, max(stats_ts, late.timestamp), stats_sum)
        totals = encode_totals((*updated[:3], updated[3] + object_rows.stats_key(late)))
        txn.put(cid("c1"), totals, db=tables["totals"])

    async def main() -> DbAuditorStats:
        async with open_container_auditor(config, ClusterConfig(SECRET)) as auditor:
            page = auditor._page
            pages = []

            def racing_page(device: str, *args: Any) -> bytes | None:
                pages.append(device)
                if len(pages) == 3:  # past "c": the fault, a write from the server's side
                    opened = auditor._envs.get(device)
                    opened.writer.submit_sync(lambda txn: write_behind(txn, opened.tables))
                return page(device, *args)

            read = auditor._read
            snapshots = []

            def snapshot(device: str, db_id: bytes) -> Any:
                snapshots.append(db_id)
                return read(device, db_id)

            monkeypatch.setattr(auditor, "_page", racing_page)
            monkeypatch.setattr(auditor, "_read", snapshot)
            stats = await auditor.run_once()
            assert snapshots == [cid("c1")]  # the walk disagreed: confirmed in one snapshot
            return stats

    stats = run(main())
    assert (stats.passed, stats.failed, stats.quarantined, stats.repaired) == (1, 0, 0, 0)
    assert listing(tmp_path, "c1") == ["b", "c", "d"]


def test_a_database_read_in_one_page_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_containers(tmp_path, {"c1": ["a", "b"]})
    poke(
        tmp_path, "containers.lmdb", lambda txn, t: txn.put(cid("c1") + b"b", b"", db=t["objects"])
    )
    config = ContainerAuditorConfig(devices=tmp_path, mount_check=False, containers_per_s=0)

    async def main() -> DbAuditorStats:
        async with open_container_auditor(config, ClusterConfig(SECRET)) as auditor:
            monkeypatch.setattr(auditor, "_read", lambda *args: pytest.fail("read again"))
            return await auditor.run_once()

    assert run(main()).repaired == 1


def test_config_rejects_a_negative_rate() -> None:
    with pytest.raises(ValueError):
        ContainerAuditorConfig(containers_per_s=-1)
    with pytest.raises(ValueError):
        AccountAuditorConfig(accounts_per_s=-1)
    with pytest.raises(ValueError):
        ContainerAuditorConfig(rows_per_s=-1)


# -- accounts --


def aid(account: str) -> bytes:
    return hash_path(SECRET.encode(), account)


def fill_accounts(root: Path, containers: dict[str, list[str]]) -> None:
    """Each account with containers reporting 2 objects and 100 bytes, the first deleted."""

    async def main() -> None:
        (root / DEV).mkdir(parents=True, exist_ok=True)
        broker = AccountBroker(str(root), SECRET.encode())
        try:
            for account, names in containers.items():
                await broker.create(DEV, account, ts(0))
                for i, name in enumerate(names):
                    await broker.put_container(
                        DEV, account, name, ts(i + 1), Timestamp(0), ts(i + 1), 2, 100
                    )
                if names:
                    await broker.put_container(DEV, account, names[0], ts(1), ts(50), ts(50), 0, 0)
        finally:
            broker.close()

    run(main())


def account_view(root: Path, account: str) -> tuple[Any, list[str]]:
    broker = AccountBroker(str(root), SECRET.encode())
    try:
        info = broker.info(DEV, account)
        names = [row.name for row in broker.list_containers(DEV, account)]
        return (info.container_count, info.object_count, info.bytes_used), names
    finally:
        broker.close()


def test_clean_accounts_pass(tmp_path: Path) -> None:
    fill_accounts(tmp_path, {"AUTH_a": ["x", "y", "z"], "AUTH_b": []})
    assert audit_accounts(tmp_path) == DbAuditorStats(devices=1, databases=2, rows=3, passed=2)
    assert recon.read(recon.recon_path(tmp_path, "account-auditor")).ok


def test_an_account_row_that_does_not_decode_goes_and_the_totals_follow(tmp_path: Path) -> None:
    fill_accounts(tmp_path, {"AUTH_a": ["x", "y", "z"], "AUTH_b": ["x"]})
    assert account_view(tmp_path, "AUTH_a") == ((2, 4, 200), ["y", "z"])
    key = aid("AUTH_a") + b"y"
    poke(tmp_path, "accounts.lmdb", lambda txn, t: txn.put(key, b"\x02", db=t["containers"]))

    stats = audit_accounts(tmp_path)
    assert (stats.failed, stats.bad_rows, stats.quarantined, stats.repaired) == (1, 1, 1, 1)
    assert account_view(tmp_path, "AUTH_a") == ((1, 2, 100), ["z"])
    assert len(quarantined_files(tmp_path / DEV, "account")) == 1
    assert audit_accounts(tmp_path).passed == 2


def test_wrong_account_totals_are_rewritten(tmp_path: Path) -> None:
    fill_accounts(tmp_path, {"AUTH_a": ["x", "y"]})
    key = aid("AUTH_a")
    poke(tmp_path, "accounts.lmdb", lambda txn, t: txn.put(key, b"\x00" * 24, db=t["totals"]))
    stats = audit_accounts(tmp_path)
    assert (stats.bad_totals, stats.quarantined, stats.repaired) == (1, 0, 1)
    assert account_view(tmp_path, "AUTH_a") == ((1, 2, 100), ["y"])


def test_a_bad_account_record_goes_and_its_rows_stay(tmp_path: Path) -> None:
    fill_accounts(tmp_path, {"AUTH_a": ["x", "y"], "AUTH_b": ["x"]})
    key = aid("AUTH_a")
    poke(tmp_path, "accounts.lmdb", lambda txn, t: txn.put(key, b"\x02{}", db=t["accounts"]))
    stats = audit_accounts(tmp_path)
    assert (stats.bad_records, stats.quarantined, stats.passed) == (1, 1, 1)
    with pytest.raises(AccountNotFound):
        account_view(tmp_path, "AUTH_a")

    def rows_kept(txn: lmdb.Transaction, tables: Any) -> None:
        assert txn.get(key + b"y", db=tables["containers"]) is not None

    poke(tmp_path, "accounts.lmdb", rows_kept)


def test_account_kind_accepts_version_1_rows() -> None:
    from accountd import rows

    row = rows.ContainerRow("c", ts(1), Timestamp(0), ts(1), 2, 100)
    v2 = rows.encode(row)
    v1 = b"\x01" + v2[1:-1]  # version 1: no stats sum (here 0: one length byte, 0)
    kind = AccountKind(SECRET.encode())
    assert kind.decode_row(b"c", v1) == row
    assert kind.decode_row(b"c", v2) == row
