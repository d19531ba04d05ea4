"""The account broker contract: every test runs against AccountBroker (LMDB) and
MemoryAccountBroker, except the few that are the LMDB broker's own (files, map size)."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accountd.broker import AccountBroker
from accountd.errors import (
    AccountConflict,
    AccountDeleted,
    AccountNotFound,
    DeviceUnavailable,
    DiskFull,
)
from accountd.listing_views import JSON, NAMES
from accountd.memory import MemoryAccountBroker
from accountd.rows import ContainerRow, merge
from service.listing import Subdir
from service.timestamp import Timestamp

SECRET = b"contract-secret"
DEV = "sda"
run = asyncio.run
NEVER = Timestamp(0)


def ts(raw: int, offset: int = 0) -> Timestamp:
    return Timestamp(1_700_000_000_00000 + raw, offset)


@pytest.fixture(params=["lmdb", "memory"])
def broker(request, tmp_path):
    if request.param == "lmdb":
        for device in (DEV, "sdb"):
            (tmp_path / device).mkdir()
        made = AccountBroker(str(tmp_path), SECRET)
    else:
        made = MemoryAccountBroker(SECRET)
    yield made
    made.close()


def new_account(broker, metadata=None, when: int = 1) -> str:
    name = f"AUTH_{uuid.uuid4().hex[:8]}"
    assert run(broker.create(DEV, name, ts(when), metadata)) is True
    return name


def report(broker, account, container, put, delete=None, count=0, used=0, stats=None, **kw):
    """A container server's report, timestamps as small integers (None: never)."""
    delete_ts = NEVER if delete is None else ts(delete)
    stats_ts = ts(max(put, delete or 0) if stats is None else stats)
    run(
        broker.put_container(
            DEV, account, container, ts(put), delete_ts, stats_ts, count, used, **kw
        )
    )


def names(page) -> list[str]:
    return [("subdir:" + e.name) if isinstance(e, Subdir) else e.name for e in page]


def totals(broker, account) -> tuple[int, int, int]:
    info = broker.info(DEV, account, include_deleted=True)
    return info.container_count, info.object_count, info.bytes_used


# -- create, delete, info ------------------------------------------------------------------


def test_create_and_info(broker) -> None:
    account = new_account(broker, {"X-Account-Meta-Quota": ("10", ts(1))})
    info = broker.info(DEV, account)
    assert info.account == account
    assert (info.put_timestamp, info.delete_timestamp, info.status_changed_at) == (
        ts(1),
        NEVER,
        ts(1),
    )
    assert (info.container_count, info.object_count, info.bytes_used, info.deleted) == (
        0,
        0,
        0,
        False,
    )
    assert info.visible_metadata == {"X-Account-Meta-Quota": "10"}
    assert info.created_at == ts(1)


def test_create_of_an_existing_account_accepts_and_keeps_the_newest_put(broker) -> None:
    account = new_account(broker, when=5)
    assert run(broker.create(DEV, account, ts(7), {"A": ("1", ts(7))})) is False
    assert run(broker.create(DEV, account, ts(6))) is False
    info = broker.info(DEV, account)
    assert info.put_timestamp == ts(7) and info.visible_metadata == {"A": "1"}


def test_an_account_holding_containers_can_be_deleted(broker) -> None:
    account = new_account(broker, {"A": ("1", ts(1))})
    report(broker, account, "c", 2, count=3, used=30)
    run(broker.delete(DEV, account, ts(5)))
    with pytest.raises(AccountNotFound):
        broker.info(DEV, account)
    gone = broker.info(DEV, account, include_deleted=True)
    assert gone.deleted and gone.status_changed_at == ts(5)
    assert gone.container_count == 1 and gone.metadata == {"A": ("", ts(5))}
    for call in (
        lambda: broker.list_containers(DEV, account),
        lambda: run(broker.update_metadata(DEV, account, {"B": ("1", ts(6))})),
        lambda: run(broker.delete(DEV, account, ts(6))),
        lambda: report(broker, account, "d", 6),
    ):
        with pytest.raises(AccountNotFound):
            call()
    with pytest.raises(AccountDeleted):  # Swift's 403 "Recently deleted", however new the PUT
        run(broker.create(DEV, account, ts(9)))


def test_the_reaper_may_still_report_containers_of_a_deleted_account(broker) -> None:
    account = new_account(broker)
    report(broker, account, "c", 2, count=1, used=5)
    run(broker.delete(DEV, account, ts(3)))
    report(broker, account, "c", 2, delete=4, stats=4, override_deleted=True)
    assert totals(broker, account) == (0, 0, 0)


def test_delete_errors(broker) -> None:
    with pytest.raises(AccountNotFound):
        run(broker.delete(DEV, "AUTH_never", ts(1)))
    account = new_account(broker, when=5)
    with pytest.raises(AccountConflict):
        run(broker.delete(DEV, account, ts(4)))
    assert not broker.info(DEV, account).deleted


def test_metadata_merges_per_key_newest_wins(broker) -> None:
    account = new_account(broker, {"A": ("1", ts(1))})
    run(broker.update_metadata(DEV, account, {"A": ("2", ts(3)), "B": ("x", ts(3))}))
    run(broker.update_metadata(DEV, account, {"A": ("old", ts(2)), "B": ("", ts(4))}))
    assert broker.info(DEV, account).metadata == {"A": ("2", ts(3)), "B": ("", ts(4))}
    with pytest.raises(AccountNotFound):
        run(broker.update_metadata(DEV, "AUTH_never", {"A": ("1", ts(1))}))


def test_metadata_limits_count_what_the_account_holds_in_all(broker) -> None:
    account = new_account(broker, {"X-Account-Meta-Big": ("x" * 4000, ts(1))})
    with pytest.raises(ValueError, match="Total metadata too large"):
        run(broker.update_metadata(DEV, account, {"x-account-meta-more": ("y" * 100, ts(2))}))
    with pytest.raises(ValueError, match="Total metadata too large"):
        run(broker.create(DEV, account, ts(2), {"X-Account-Meta-More": ("y" * 100, ts(2))}))
    assert broker.info(DEV, account).put_timestamp == ts(1)  # the refused PUT stored nothing


# -- container rows and totals -------------------------------------------------------------


def test_reports_need_an_account(broker) -> None:
    with pytest.raises(AccountNotFound):
        report(broker, "AUTH_never", "c", 1)


def test_totals_sum_the_live_containers(broker) -> None:
    account = new_account(broker)
    report(broker, account, "a", 2, count=3, used=30)
    report(broker, account, "b", 2, count=1, used=7)
    assert totals(broker, account) == (2, 4, 37)
    report(broker, account, "a", 2, count=5, used=50, stats=4)  # a newer report
    report(broker, account, "a", 2, count=9, used=90, stats=3)  # an older one loses
    assert totals(broker, account) == (2, 6, 57)
    report(broker, account, "b", 2, delete=5, count=0, used=0)  # the container was deleted
    assert totals(broker, account) == (1, 5, 50)
    assert names(broker.list_containers(DEV, account)) == ["a"]
    report(broker, account, "b", 2, count=1, used=7, stats=3)  # stale: loses to the delete
    assert totals(broker, account) == (1, 5, 50)
    report(broker, account, "b", 6, delete=5, stats=6)  # re-created
    assert totals(broker, account) == (2, 5, 50)
    [row] = [r for r in broker.list_containers(DEV, account) if r.name == "b"]
    assert (row.object_count, row.bytes_used, row.last_modified) == (0, 0, ts(6))


def test_the_greater_stats_sum_wins_at_one_stats_timestamp(broker) -> None:
    # Two replicas' reports at one newest data timestamp: the one whose rows changed more
    # (a late tombstone of an older object) has the greater stats sum, and wins even with the
    # smaller totals, in either order; a report of no stats sum (Swift) counts as zero.
    for order in ((10, 13), (13, 10)):
        account = new_account(broker)
        for stats_sum in order:
            count, used = (2, 30) if stats_sum == 10 else (1, 20)
            report(broker, account, "c", 1, count=count, used=used, stats=5, stats_sum=stats_sum)
        report(broker, account, "c", 1, count=7, used=70, stats=5)
        assert totals(broker, account) == (1, 1, 20)
        [row] = broker.list_containers(DEV, account)
        assert (row.stats_timestamp, row.stats_sum) == (ts(5), 13)


def test_a_deleted_container_still_holding_objects_stays_listed(broker) -> None:
    account = new_account(broker)
    report(broker, account, "c", 2, delete=3, count=2, used=8)  # Swift's rule: count > 0
    assert names(broker.list_containers(DEV, account)) == ["c"]
    assert totals(broker, account) == (1, 2, 8)


def test_merge_rows_merges_a_batch(broker) -> None:
    account = new_account(broker)
    batch = [
        ContainerRow("a", ts(2), NEVER, ts(2), 1, 10),
        ContainerRow("a", ts(2), NEVER, ts(3), 2, 20),
        ContainerRow("b", ts(2), ts(3), ts(3), 0, 0),
        ContainerRow("b", ts(2), NEVER, ts(2), 5, 5),
    ]
    run(broker.merge_rows(DEV, account, batch))
    run(broker.merge_rows(DEV, account, batch[::-1]))  # a replay changes nothing
    assert totals(broker, account) == (1, 2, 20)
    [row] = broker.list_containers(DEV, account)
    assert (row.name, row.object_count, row.bytes_used) == ("a", 2, 20)


# -- listings ------------------------------------------------------------------------------

LONG = "L" * 600
CONTAINERS = [
    "a",
    "a-b",
    "a-b-c",
    "b",
    "b_1",
    "é",
    "\uff5a",
    "😀",
    LONG,
    LONG + "1",
    "L" * 494 + "é",
]


@pytest.fixture
def listed(broker) -> str:
    account = new_account(broker)
    rows = [ContainerRow(n, ts(2), NEVER, ts(2), 1, len(n)) for n in CONTAINERS]
    run(broker.merge_rows(DEV, account, rows))
    return account


def listing(broker, account, **params) -> list[str]:
    page = broker.list_containers(DEV, account, **params)
    # The json and plain listings read the same page, each row in their own form.
    for view in (JSON, NAMES):
        assert broker.list_containers(DEV, account, view=view, **params) == [
            entry if isinstance(entry, Subdir) else view.from_row(entry) for entry in page
        ]
    return names(page)


def test_listing_is_in_byte_order_of_the_utf8_names(broker, listed) -> None:
    expected = sorted(CONTAINERS, key=lambda n: n.encode("utf-8"))
    assert listing(broker, listed) == expected
    assert listing(broker, listed, reverse=True) == expected[::-1]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"prefix": "a"}, ["a", "a-b", "a-b-c"]),
        ({"prefix": "a", "delimiter": "-"}, ["a", "subdir:a-"]),
        ({"prefix": "a-", "delimiter": "-"}, ["a-b", "subdir:a-b-"]),
        ({"prefix": "a", "delimiter": "-b", "reverse": True}, ["subdir:a-b", "a"]),
        ({"marker": "a-b", "end_marker": "é"}, ["a-b-c", "b", "b_1"]),
        ({"marker": "é", "end_marker": "a-b", "reverse": True}, ["b_1", "b", "a-b-c"]),
        ({"marker": "b", "limit": 2}, ["b_1", "é"]),
        ({"prefix": "L", "limit": 2}, [LONG, LONG + "1"]),
        ({"prefix": "L", "marker": LONG + "1"}, ["L" * 494 + "é"]),
        ({"limit": 0}, []),
    ],
)
def test_listing_parameters(broker, listed, params, expected) -> None:
    assert listing(broker, listed, **params) == expected


def test_listing_rows_carry_what_the_server_shows(broker, listed) -> None:
    [row] = broker.list_containers(DEV, listed, prefix="b_")
    assert (row.name, row.object_count, row.bytes_used, row.last_modified) == ("b_1", 1, 3, ts(2))


@pytest.mark.parametrize("params", [{"limit": 10_001}, {"limit": -1}, {"delimiter": "\udc80"}])
def test_bad_listing_parameters(broker, listed, params) -> None:
    with pytest.raises(ValueError):
        broker.list_containers(DEV, listed, **params)


# -- bad input, devices --------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 1025, "\ud800"])
def test_bad_names(broker, bad) -> None:
    with pytest.raises(ValueError):
        run(broker.create(DEV, bad, ts(1)))
    account = new_account(broker)
    with pytest.raises(ValueError):
        report(broker, account, bad, 1)


def test_bad_values(broker) -> None:
    account = new_account(broker)
    with pytest.raises(ValueError):
        report(broker, account, "c", 1, count=-1)
    with pytest.raises(ValueError):
        run(broker.put_container(DEV, account, "c", 1.0, NEVER, NEVER, 0, 0))
    with pytest.raises(ValueError):
        run(broker.update_metadata(DEV, account, {"": ("1", ts(1))}))
    with pytest.raises(ValueError):
        broker.info("", account)


def test_an_unavailable_device(broker) -> None:
    if isinstance(broker, MemoryAccountBroker):
        broker.offline_devices.add("sdz")  # the LMDB broker finds no directory for it
    calls = [
        lambda: run(broker.create("sdz", "AUTH_a", ts(1))),
        lambda: run(broker.delete("sdz", "AUTH_a", ts(1))),
        lambda: broker.info("sdz", "AUTH_a"),
        lambda: run(broker.update_metadata("sdz", "AUTH_a", {})),
        lambda: run(broker.put_container("sdz", "AUTH_a", "c", ts(1), NEVER, ts(1), 0, 0)),
        lambda: run(broker.merge_rows("sdz", "AUTH_a", [])),
        lambda: broker.list_containers("sdz", "AUTH_a"),
    ]
    for call in calls:
        with pytest.raises(DeviceUnavailable):
            call()
    new_account(broker)


def test_devices_are_separate(broker) -> None:
    account = new_account(broker)
    with pytest.raises(AccountNotFound):
        broker.info("sdb", account)


def test_a_full_device_refuses_writes_and_still_reads(broker, tmp_path) -> None:
    if isinstance(broker, MemoryAccountBroker):
        account = new_account(broker)
        broker.full_devices.add(DEV)
    else:
        (tmp_path / "small" / DEV).mkdir(parents=True)
        broker = AccountBroker(str(tmp_path / "small"), SECRET, map_size_bytes=1 << 20)
        account = new_account(broker)
    with pytest.raises(DiskFull):
        for batch in range(1000):  # ~50 KiB per batch: a 1 MiB map fills within 20
            rows = [
                ContainerRow(f"{batch}-{i}-" + "c" * 400, ts(2), NEVER, ts(2), 1, 1)
                for i in range(100)
            ]
            run(broker.merge_rows(DEV, account, rows))
    info = broker.info(DEV, account)
    assert len(broker.list_containers(DEV, account)) == info.container_count
    if isinstance(broker, AccountBroker):
        broker.close()


# -- convergence, cost, durability ---------------------------------------------------------

stamps = st.integers(0, 4).map(ts)
reports = st.lists(
    st.builds(
        ContainerRow,
        st.sampled_from(["a", "b-c", "é", LONG + "1", LONG + "2"]),
        stamps,
        st.just(NEVER) | stamps,
        stamps,
        st.integers(0, 3),
        st.integers(0, 3),
        st.integers(0, 2),  # stats_sum: ties at one stats timestamp are common
    ),
    min_size=1,
    max_size=20,
)


def expected_state(rows):
    merged: dict[str, ContainerRow] = {}
    for row in rows:
        merged[row.name] = merge(merged[row.name], row) if row.name in merged else row
    live = sorted((r for r in merged.values() if not r.deleted), key=lambda r: r.name.encode())
    return live, (len(live), sum(r.object_count for r in live), sum(r.bytes_used for r in live))


def apply(broker, account, rows, rnd: random.Random) -> None:
    at = 0
    while at < len(rows):
        step = rnd.randint(1, 3)
        chunk, at = rows[at : at + step], at + step
        if step > 1:
            run(broker.merge_rows(DEV, account, chunk))
        else:
            r = chunk[0]
            stamps = (r.put_timestamp, r.delete_timestamp, r.stats_timestamp)
            counts = (r.object_count, r.bytes_used)
            run(broker.put_container(DEV, account, r.name, *stamps, *counts, stats_sum=r.stats_sum))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reports, st.randoms(use_true_random=False))
def test_reports_in_any_order_converge(broker, rows, rnd) -> None:
    live, expected_totals = expected_state(rows)
    for attempt in range(2):
        order = rows[:] if attempt == 0 else rnd.sample(rows, len(rows)) + rnd.choices(rows, k=2)
        account = new_account(broker)
        apply(broker, account, order, rnd)
        assert broker.list_containers(DEV, account) == live
        assert totals(broker, account) == expected_totals


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reports, st.randoms(use_true_random=False))
def test_lmdb_and_memory_agree_whatever_the_order(tmp_path, rows, rnd) -> None:
    (tmp_path / DEV).mkdir(exist_ok=True)
    lmdb_broker, memory = AccountBroker(str(tmp_path), SECRET), MemoryAccountBroker(SECRET)
    try:
        account = new_account(lmdb_broker)
        run(memory.create(DEV, account, ts(1)))
        apply(lmdb_broker, account, rnd.sample(rows, len(rows)), rnd)
        apply(memory, account, rnd.sample(rows, len(rows)), rnd)
        for params in ({}, {"reverse": True}, {"delimiter": "-"}, {"prefix": "L", "limit": 1}):
            assert lmdb_broker.list_containers(DEV, account, **params) == memory.list_containers(
                DEV, account, **params
            )
        assert lmdb_broker.info(DEV, account) == memory.info(DEV, account)
    finally:
        lmdb_broker.close()


def test_a_page_from_the_middle_costs_the_page_not_the_account(broker) -> None:
    account = new_account(broker)
    every = [f"cont{i:05d}" for i in range(7_000)]
    run(
        broker.merge_rows(DEV, account, [ContainerRow(n, ts(2), NEVER, ts(2), 1, 1) for n in every])
    )
    dead = [
        ContainerRow(n, ts(2), ts(3), ts(3), 0, 0) for i, n in enumerate(every) if i % 7 in (0, 3)
    ]
    run(broker.merge_rows(DEV, account, dead))
    live = [n for i, n in enumerate(every) if i % 7 not in (0, 3)]
    assert totals(broker, account) == (5_000, 5_000, 5_000)
    before = broker.listing_steps
    page = broker.list_containers(DEV, account, marker=live[2_000], limit=1_000)
    assert [r.name for r in page] == live[2_001:3_001]
    assert broker.listing_steps - before <= 1_001


def test_lmdb_data_survives_reopening(tmp_path) -> None:
    (tmp_path / DEV).mkdir()
    broker = AccountBroker(str(tmp_path), SECRET)
    account = new_account(broker, {"A": ("1", ts(1))})
    report(broker, account, LONG, 2, count=2, used=20)
    report(broker, account, "gone", 2, delete=3)
    before = (broker.info(DEV, account), broker.list_containers(DEV, account))
    broker.close()
    reopened = AccountBroker(str(tmp_path), SECRET)  # a new object on the same directory
    try:
        assert (reopened.info(DEV, account), reopened.list_containers(DEV, account)) == before
        report(reopened, account, "gone", 2, count=1, used=1, stats=2)  # the tombstone survived
        assert totals(reopened, account) == (1, 2, 20)
    finally:
        reopened.close()


def test_lmdb_checks_mounts_when_asked(tmp_path) -> None:
    (tmp_path / DEV).mkdir()
    broker = AccountBroker(str(tmp_path), SECRET, mount_check=True)
    with pytest.raises(DeviceUnavailable, match="not mounted"):
        run(broker.create(DEV, "AUTH_a", ts(1)))
    broker.close()
