"""The container broker contract: every test runs against ContainerBroker (LMDB) and
MemoryContainerBroker, except the few marked as the LMDB broker's own (files, map size)."""

from __future__ import annotations

import asyncio
import random
import uuid

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from containerd_.broker import ContainerBroker
from containerd_.errors import (
    ContainerConflict,
    ContainerNotEmpty,
    ContainerNotFound,
    DeviceUnavailable,
    DiskFull,
)
from containerd_.listing_views import JSON, NAMES
from containerd_.memory import MemoryContainerBroker
from containerd_.rows import ObjectRow, merge, stats_key
from service.async_pending import AsyncPending
from service.listing import Subdir
from service.timestamp import Timestamp

SECRET = b"contract-secret"
DEV = "sda"
ACCOUNT = "AUTH_test"
run = asyncio.run


def ts(raw: int, offset: int = 0) -> Timestamp:
    return Timestamp(1_700_000_000_00000 + raw, offset)


@pytest.fixture(params=["lmdb", "memory"])
def broker(request, tmp_path):
    if request.param == "lmdb":
        for device in (DEV, "sdb"):
            (tmp_path / device).mkdir()
        made = ContainerBroker(str(tmp_path), SECRET)
    else:
        made = MemoryContainerBroker(SECRET)
    yield made
    made.close()


def new_container(broker, metadata=None, when: int = 1) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    assert run(broker.create(DEV, ACCOUNT, name, ts(when), metadata)) is True
    return name


def put(broker, container, name, when, size=1, ctype="text/plain", etag="e", **kw):
    run(broker.put_object(DEV, ACCOUNT, container, name, ts(when), size, ctype, etag, **kw))


def names(page) -> list[str]:
    return [("subdir:" + e.name) if isinstance(e, Subdir) else e.name for e in page]


# -- create, delete, info ------------------------------------------------------------------


def test_create_and_info(broker) -> None:
    meta = {"X-Container-Meta-Color": ("blue", ts(1)), "X-Container-Read": (".r:*", ts(1))}
    name = new_container(broker, meta)
    info = broker.info(DEV, ACCOUNT, name)
    assert (info.account, info.container) == (ACCOUNT, name)
    assert (info.put_timestamp, info.delete_timestamp, info.status_changed_at) == (
        ts(1),
        Timestamp(0),
        ts(1),
    )
    assert (info.object_count, info.bytes_used, info.deleted) == (0, 0, False)
    assert info.created_at == ts(1)
    assert info.metadata == meta
    assert info.visible_metadata == {"X-Container-Meta-Color": "blue", "X-Container-Read": ".r:*"}


def test_create_of_an_existing_container_accepts_and_keeps_the_newest_put(broker) -> None:
    name = new_container(broker, when=5)
    assert run(broker.create(DEV, ACCOUNT, name, ts(7))) is False
    assert run(broker.create(DEV, ACCOUNT, name, ts(6))) is False
    assert broker.info(DEV, ACCOUNT, name).put_timestamp == ts(7)


def test_delete_then_recreate(broker) -> None:
    name = new_container(broker, {"X-Container-Meta-A": ("1", ts(1))})
    run(broker.delete(DEV, ACCOUNT, name, ts(2)))
    with pytest.raises(ContainerNotFound):
        broker.info(DEV, ACCOUNT, name)
    gone = broker.info(DEV, ACCOUNT, name, include_deleted=True)
    assert gone.deleted and gone.delete_timestamp == ts(2) and gone.status_changed_at == ts(2)
    assert gone.metadata == {"X-Container-Meta-A": ("", ts(2))}  # cleared, kept as tombstone
    with pytest.raises(ContainerNotFound):
        broker.list_objects(DEV, ACCOUNT, name)
    with pytest.raises(ContainerNotFound):
        run(broker.update_metadata(DEV, ACCOUNT, name, {"X-Container-Meta-B": ("2", ts(3))}))
    assert run(broker.create(DEV, ACCOUNT, name, ts(3), {"X-Container-Meta-B": ("2", ts(3))}))
    back = broker.info(DEV, ACCOUNT, name)
    assert not back.deleted and back.status_changed_at == ts(3) and back.created_at == ts(1)
    assert back.visible_metadata == {"X-Container-Meta-B": "2"}


def test_a_put_older_than_the_delete_leaves_it_deleted(broker) -> None:
    name = new_container(broker, when=1)
    run(broker.delete(DEV, ACCOUNT, name, ts(5)))
    with pytest.raises(ContainerConflict):
        run(broker.create(DEV, ACCOUNT, name, ts(4)))
    info = broker.info(DEV, ACCOUNT, name, include_deleted=True)
    assert info.deleted and info.put_timestamp == ts(4)


def test_delete_errors(broker) -> None:
    with pytest.raises(ContainerNotFound):
        run(broker.delete(DEV, ACCOUNT, "never-made", ts(1)))
    name = new_container(broker, when=5)
    with pytest.raises(ContainerConflict):
        run(broker.delete(DEV, ACCOUNT, name, ts(4)))  # older than the PUT: still there
    assert not broker.info(DEV, ACCOUNT, name).deleted
    run(broker.delete(DEV, ACCOUNT, name, ts(6)))
    with pytest.raises(ContainerNotFound):
        run(broker.delete(DEV, ACCOUNT, name, ts(7)))  # already deleted: recorded, 404
    assert broker.info(DEV, ACCOUNT, name, include_deleted=True).delete_timestamp == ts(7)


def test_a_container_holding_objects_is_not_deleted(broker) -> None:
    name = new_container(broker)
    put(broker, name, "o", 2)
    with pytest.raises(ContainerNotEmpty) as caught:
        run(broker.delete(DEV, ACCOUNT, name, ts(3)))
    assert caught.value.object_count == 1
    run(broker.delete_object(DEV, ACCOUNT, name, "o", ts(4)))
    run(broker.delete(DEV, ACCOUNT, name, ts(5)))
    assert broker.info(DEV, ACCOUNT, name, include_deleted=True).deleted


def test_metadata_merges_per_key_newest_wins(broker) -> None:
    name = new_container(broker, {"A": ("1", ts(1)), "B": ("1", ts(1))})
    run(broker.update_metadata(DEV, ACCOUNT, name, {"A": ("2", ts(3)), "B": ("0", ts(0))}))
    run(broker.update_metadata(DEV, ACCOUNT, name, {"A": ("old", ts(2)), "C": ("", ts(4))}))
    run(broker.update_metadata(DEV, ACCOUNT, name, {"B": ("", ts(5)), "D": ("x", ts(5))}))
    run(broker.update_metadata(DEV, ACCOUNT, name, {"D": ("y", ts(5))}))  # tie: greater value
    info = broker.info(DEV, ACCOUNT, name)
    assert info.metadata == {
        "A": ("2", ts(3)),
        "B": ("", ts(5)),
        "C": ("", ts(4)),
        "D": ("y", ts(5)),
    }
    assert info.visible_metadata == {"A": "2", "D": "y"}
    with pytest.raises(ContainerNotFound):
        run(broker.update_metadata(DEV, ACCOUNT, "never-made", {"A": ("1", ts(1))}))


def test_metadata_limits_count_what_the_container_holds_in_all(broker) -> None:
    many = {f"X-Container-Meta-K{i}": ("v", ts(1)) for i in range(90)}
    name = new_container(broker, many)
    with pytest.raises(ValueError, match="Too many metadata items"):
        run(broker.update_metadata(DEV, ACCOUNT, name, {"X-Container-Meta-One": ("v", ts(2))}))
    run(broker.update_metadata(DEV, ACCOUNT, name, {"X-Container-Read": ("v", ts(2))}))  # not user
    run(broker.update_metadata(DEV, ACCOUNT, name, {"X-Container-Meta-K0": ("", ts(2))}))
    run(broker.update_metadata(DEV, ACCOUNT, name, {"X-Container-Meta-One": ("v", ts(3))}))
    big = {"X-Container-Meta-K1": ("x" * 4090, ts(4))}  # same count, too many bytes
    with pytest.raises(ValueError, match="Total metadata too large"):
        run(broker.update_metadata(DEV, ACCOUNT, name, big))
    assert len(broker.info(DEV, ACCOUNT, name).visible_metadata) == 91


# -- rows and totals -----------------------------------------------------------------------


def test_object_updates_need_a_created_container(broker) -> None:
    with pytest.raises(ContainerNotFound):
        put(broker, "never-made", "o", 1)
    with pytest.raises(ContainerNotFound):
        run(broker.delete_object(DEV, ACCOUNT, "never-made", "o", ts(1)))


def test_a_row_landing_in_a_deleted_container_brings_it_back(broker) -> None:
    name = new_container(broker, when=1)
    run(broker.delete(DEV, ACCOUNT, name, ts(3)))
    put(broker, name, "late", 2, size=4)  # an object PUT that raced the DELETE
    info = broker.info(DEV, ACCOUNT, name)
    assert (info.deleted, info.object_count, info.bytes_used) == (False, 1, 4)
    assert names(broker.list_objects(DEV, ACCOUNT, name)) == ["late"]


def test_totals_follow_the_winning_row(broker) -> None:
    name = new_container(broker)

    def totals():
        info = broker.info(DEV, ACCOUNT, name, include_deleted=True)
        return info.object_count, info.bytes_used

    put(broker, name, "o", 10, size=100)
    put(broker, name, "p", 10, size=1)
    assert totals() == (2, 101)
    put(broker, name, "o", 12, size=30)  # overwrite
    assert totals() == (2, 31)
    put(broker, name, "o", 11, size=999)  # older: loses
    assert totals() == (2, 31)
    run(broker.delete_object(DEV, ACCOUNT, name, "o", ts(13)))
    run(broker.delete_object(DEV, ACCOUNT, name, "o", ts(14)))  # a tombstone on a tombstone
    run(broker.delete_object(DEV, ACCOUNT, name, "gone", ts(14)))  # a tombstone only
    assert totals() == (1, 1)
    put(broker, name, "o", 12, size=5)  # older than the tombstone: stays deleted
    assert totals() == (1, 1)
    put(broker, name, "o", 15, size=7)
    assert totals() == (2, 8)
    assert names(broker.list_objects(DEV, ACCOUNT, name)) == ["o", "p"]


def test_a_newer_content_type_changes_the_listing_but_not_the_data(broker) -> None:
    name = new_container(broker)
    put(broker, name, "o", 10, size=5, ctype="text/plain", etag="e1")
    put(broker, name, "o", 10, size=5, ctype="image/png", etag="e1", ctype_timestamp=ts(12))
    put(broker, name, "o", 11, size=6, ctype="text/csv", etag="e2")  # newer data, older ctype
    [row] = broker.list_objects(DEV, ACCOUNT, name)
    assert (row.size, row.etag, row.content_type, row.last_modified) == (
        6,
        "e2",
        "image/png",
        ts(12),
    )


def test_merge_rows_merges_a_batch(broker) -> None:
    name = new_container(broker)
    batch = [
        ObjectRow.put("a", ts(2), 1, "t", "e"),
        ObjectRow.put("a", ts(3), 2, "t", "e"),
        ObjectRow.tombstone("b", ts(3)),
        ObjectRow.put("b", ts(2), 9, "t", "e"),
        ObjectRow.put("c", ts(2), 4, "t", "e"),
    ]
    run(broker.merge_rows(DEV, ACCOUNT, name, batch))
    run(broker.merge_rows(DEV, ACCOUNT, name, batch))  # a replay changes nothing
    info = broker.info(DEV, ACCOUNT, name)
    assert (info.object_count, info.bytes_used) == (2, 6)
    assert [(r.name, r.size) for r in broker.list_objects(DEV, ACCOUNT, name)] == [
        ("a", 2),
        ("c", 4),
    ]


# -- listings ------------------------------------------------------------------------------

LONG = "L" * 600
WIDE_Z = "\uff5a"  # above é, below 😀 in UTF-8 (and code point) order; not in UTF-16's
TREE = [
    "a",
    "a/",
    "a/b",
    "a/b/c",
    "a/b0",
    "a-x",
    "b--1",
    "b--2",
    "b-c",
    "é",
    WIDE_Z,
    "😀",
    LONG + "b",
    LONG + "a",
    LONG,
    "L" * 494 + "é",
]


@pytest.fixture
def tree(broker) -> str:
    name = new_container(broker)
    rows = [ObjectRow.put(n, ts(2), len(n), "text/plain", "e") for n in TREE]
    run(broker.merge_rows(DEV, ACCOUNT, name, rows))
    return name


def listing(broker, container, **params) -> list[str]:
    page = broker.list_objects(DEV, ACCOUNT, container, **params)
    # The json and plain listings read the same page, each row in their own form.
    for view in (JSON, NAMES):
        assert broker.list_objects(DEV, ACCOUNT, container, view=view, **params) == [
            entry if isinstance(entry, Subdir) else view.from_row(entry) for entry in page
        ]
    return names(page)


def test_listing_is_in_byte_order_of_the_utf8_names(broker, tree) -> None:
    expected = sorted(TREE, key=lambda n: n.encode("utf-8"))
    assert listing(broker, tree) == expected
    assert listing(broker, tree, reverse=True) == expected[::-1]
    assert expected.index(WIDE_Z) < expected.index("😀")
    # All four long names share their first 494 bytes (one LMDB bucket); é (0xC3) sorts last.
    assert expected.index(LONG + "b") < expected.index("L" * 494 + "é")


def test_long_names_are_listed_in_place(broker, tree) -> None:
    longs = [LONG, LONG + "a", LONG + "b", "L" * 494 + "é"]
    assert listing(broker, tree, prefix="L") == longs
    assert listing(broker, tree, marker=LONG, limit=2) == [LONG + "a", LONG + "b"]
    assert listing(broker, tree, end_marker=LONG + "a", prefix="L") == longs[:1]
    assert listing(broker, tree, marker=LONG + "b", reverse=True, prefix="L") == longs[:2][::-1]
    assert listing(broker, tree, prefix=LONG, delimiter="a") == [
        LONG,
        "subdir:" + LONG + "a",
        LONG + "b",
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"prefix": "a/"}, ["a/", "a/b", "a/b/c", "a/b0"]),
        ({"delimiter": "/", "prefix": "a"}, ["a", "a-x", "subdir:a/"]),
        ({"prefix": "a/", "delimiter": "/"}, ["a/", "a/b", "subdir:a/b/", "a/b0"]),
        ({"delimiter": "--", "prefix": "b"}, ["subdir:b--", "b-c"]),
        ({"delimiter": "--", "prefix": "b", "reverse": True}, ["b-c", "subdir:b--"]),
        ({"delimiter": "/", "marker": "a/", "end_marker": "é"}, ["b--1", "b--2", "b-c"]),
        ({"delimiter": "/", "marker": "a", "limit": 2}, ["a-x", "subdir:a/"]),
        ({"marker": "a/b", "end_marker": "b--2"}, ["a/b/c", "a/b0", "b--1"]),
        ({"marker": "b--2", "end_marker": "a/b", "reverse": True}, ["b--1", "a/b0", "a/b/c"]),
        ({"prefix": "a", "limit": 3, "reverse": True}, ["a/b0", "a/b/c", "a/b"]),
        ({"limit": 0}, []),
        ({"path": "a"}, ["a/b", "a/b0"]),
        ({"path": "a/", "reverse": True}, ["a/b0", "a/b"]),
        ({"path": "a/b"}, ["a/b/c"]),
        (
            {"delimiter": "/", "limit": 7},
            [LONG, LONG + "a", LONG + "b", "L" * 494 + "é", "a", "a-x", "subdir:a/"],
        ),
        (
            {"delimiter": "/", "marker": "a-x"},
            ["subdir:a/", "b--1", "b--2", "b-c", "é", WIDE_Z, "😀"],
        ),
        ({"prefix": "zz"}, []),
    ],
)
def test_listing_parameters(broker, tree, params, expected) -> None:
    assert listing(broker, tree, **params) == expected


def test_path_lists_directory_markers_as_children(broker) -> None:
    name = new_container(broker)
    for obj in ("d/", "d/sub/", "d/sub/x", "d/sub0", "d/file"):
        put(broker, name, obj, 2)
    assert listing(broker, name, path="d") == ["d/file", "d/sub/", "d/sub0"]
    assert listing(broker, name, path="d", reverse=True) == ["d/sub0", "d/sub/", "d/file"]


@pytest.mark.parametrize(
    "params",
    [{"limit": -1}, {"limit": 10_001}, {"limit": "10"}, {"prefix": "\ud800"}, {"marker": None}],
)
def test_bad_listing_parameters(broker, tree, params) -> None:
    with pytest.raises(ValueError):
        broker.list_objects(DEV, ACCOUNT, tree, **params)


# -- bad input, devices --------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "x" * 1025, "\udc80", 42])
def test_bad_object_names(broker, bad) -> None:
    name = new_container(broker)
    with pytest.raises(ValueError):
        put(broker, name, bad, 2)
    with pytest.raises(ValueError):
        run(broker.delete_object(DEV, ACCOUNT, name, bad, ts(2)))


@pytest.mark.parametrize(
    ("account", "container"), [("", "c"), ("a", ""), ("a/b", "c"), ("a", "\ud800")]
)
def test_bad_account_or_container_names(broker, account, container) -> None:
    with pytest.raises(ValueError):
        run(broker.create(DEV, account, container, ts(1)))
    with pytest.raises(ValueError):
        broker.info(DEV, account, container)


def test_bad_values(broker) -> None:
    name = new_container(broker)
    with pytest.raises(ValueError):
        put(broker, name, "o", 2, size=-1)
    with pytest.raises(ValueError):
        run(broker.create(DEV, ACCOUNT, name, "1700000000.00000"))
    with pytest.raises(ValueError):
        run(broker.update_metadata(DEV, ACCOUNT, name, {"A": ("1", 5)}))
    with pytest.raises(ValueError):
        run(broker.merge_rows(DEV, ACCOUNT, name, [("o", ts(1))]))
    with pytest.raises(ValueError):
        broker.info("../etc", ACCOUNT, name)


def test_an_unavailable_device(broker) -> None:
    if isinstance(broker, MemoryContainerBroker):
        broker.offline_devices.add("sdz")  # the LMDB broker finds no directory for it
    calls = [
        lambda: run(broker.create("sdz", ACCOUNT, "c", ts(1))),
        lambda: run(broker.delete("sdz", ACCOUNT, "c", ts(1))),
        lambda: broker.info("sdz", ACCOUNT, "c"),
        lambda: run(broker.update_metadata("sdz", ACCOUNT, "c", {})),
        lambda: run(broker.put_object("sdz", ACCOUNT, "c", "o", ts(1), 0, "t", "e")),
        lambda: run(broker.delete_object("sdz", ACCOUNT, "c", "o", ts(1))),
        lambda: run(broker.merge_rows("sdz", ACCOUNT, "c", [])),
        lambda: broker.list_objects("sdz", ACCOUNT, "c"),
    ]
    for call in calls:
        with pytest.raises(DeviceUnavailable):
            call()
    new_container(broker)  # the other devices still work


def test_devices_are_separate(broker) -> None:
    name = new_container(broker)
    with pytest.raises(ContainerNotFound):
        broker.info("sdb", ACCOUNT, name)


def test_a_full_device_refuses_writes_and_still_reads(broker, tmp_path) -> None:
    if isinstance(broker, MemoryContainerBroker):
        name = new_container(broker)
        broker.full_devices.add(DEV)
    else:
        (tmp_path / "small" / DEV).mkdir(parents=True)
        broker = ContainerBroker(str(tmp_path / "small"), SECRET, map_size_bytes=1 << 20)
        name = new_container(broker)
    with pytest.raises(DiskFull):
        for batch in range(1000):  # ~64 KiB per batch: a 1 MiB map fills within 16
            rows = [ObjectRow.put(f"{batch}-{i}", ts(2), 1, "t" * 600, "e") for i in range(100)]
            run(broker.merge_rows(DEV, ACCOUNT, name, rows))
    info = broker.info(DEV, ACCOUNT, name)
    assert len(broker.list_objects(DEV, ACCOUNT, name)) == info.object_count
    if isinstance(broker, ContainerBroker):
        broker.close()


def test_the_stats_timestamp_is_the_newest_data_timestamp_merged(broker) -> None:
    name = new_container(broker, when=50)
    assert broker.info(DEV, ACCOUNT, name).stats_timestamp == Timestamp(0)
    put(broker, name, "o", 10)
    put(broker, name, "p", 12, size=5)
    put(broker, name, "o", 11)  # older than the stored max: the totals are no fresher
    assert broker.info(DEV, ACCOUNT, name).stats_timestamp == ts(12)
    run(broker.delete_object(DEV, ACCOUNT, name, "o", ts(13, 1)))
    assert broker.info(DEV, ACCOUNT, name).stats_timestamp == ts(13, 1)


def stats_version(broker, device, name):
    info = broker.info(device, ACCOUNT, name)
    return (info.stats_timestamp, info.stats_sum), (info.object_count, info.bytes_used)


def test_a_late_older_row_still_raises_the_stats_version(broker) -> None:
    # The reviewer's scenario: replica sda misses the DELETE of x (an async_pending), both
    # get the newer y; sda's totals are stale at the same newest data timestamp as sdb's.
    name = f"c-{uuid.uuid4().hex[:8]}"
    for device in (DEV, "sdb"):
        run(broker.create(device, ACCOUNT, name, ts(0)))
        run(broker.put_object(device, ACCOUNT, name, "x", ts(1), 10, "t", "e"))
    run(broker.delete_object("sdb", ACCOUNT, name, "x", ts(3)))
    for device in (DEV, "sdb"):
        run(broker.put_object(device, ACCOUNT, name, "y", ts(5), 20, "t", "e"))
    stale, fresh = stats_version(broker, DEV, name), stats_version(broker, "sdb", name)
    assert (stale[1], fresh[1]) == ((2, 30), (1, 20))
    assert stale[0][0] == fresh[0][0] == ts(5)  # the newest data timestamp alone cannot tell
    assert stale[0] < fresh[0]  # the version does: the account keeps the fresher totals
    run(broker.delete_object(DEV, ACCOUNT, name, "x", ts(3)))  # the async_pending replayed
    converged = stats_version(broker, DEV, name)
    assert converged == fresh  # the same rows: the same version and totals
    assert converged[0] > stale[0]


def test_a_tombstone_at_the_put_timestamp_raises_the_stats_version(broker) -> None:
    name = new_container(broker)
    put(broker, name, "o", 4, size=9)
    before = broker.info(DEV, ACCOUNT, name)
    run(broker.delete_object(DEV, ACCOUNT, name, "o", ts(4)))  # a tie: the delete wins
    after = broker.info(DEV, ACCOUNT, name)
    assert (after.object_count, after.stats_timestamp) == (0, before.stats_timestamp)
    assert after.stats_sum == before.stats_sum + 1


# -- async_pendings ------------------------------------------------------------------------


def pending(when: int, container: str = "c") -> AsyncPending:
    return AsyncPending(
        op="PUT",
        account=ACCOUNT,
        container=container,
        obj=None,
        targets=(("127.0.0.1", 6202, "sda"),),
        partition=7,
        headers={"X-Put-Timestamp": ts(when).internal},
        timestamp=ts(when),
    )


def test_async_pendings_are_kept_oldest_first_until_deleted(broker) -> None:
    rng = random.Random(1)
    newer = run(broker.save_async_pending(DEV, pending(5, "new"), rng))
    older = run(broker.save_async_pending(DEV, pending(3, "old"), rng))
    listed = broker.list_async_pendings(DEV)
    assert [key for key, _ in listed] == [older, newer]
    assert listed[0][1] == pending(3, "old")
    assert broker.list_async_pendings(DEV, after=older) == [(newer, pending(5, "new"))]
    assert broker.list_async_pendings("sdb") == []
    assert run(broker.delete_async_pending(DEV, older)) is True
    assert run(broker.delete_async_pending(DEV, older)) is False
    assert [key for key, _ in broker.list_async_pendings(DEV)] == [newer]


def test_async_pendings_need_the_device(broker, tmp_path) -> None:
    if isinstance(broker, ContainerBroker):
        (tmp_path / DEV).rmdir()
    else:
        broker.offline_devices.add(DEV)
    with pytest.raises(DeviceUnavailable):
        run(broker.save_async_pending(DEV, pending(1), random.Random(1)))
    with pytest.raises(DeviceUnavailable):
        broker.list_async_pendings(DEV)


# -- convergence ---------------------------------------------------------------------------

UPDATE_NAMES = ["a", "b/c", "é", LONG + "1", LONG + "2"]
updates = st.lists(
    st.one_of(
        st.builds(
            lambda n, t, size, ctype, ct: ObjectRow.put(n, ts(t), size, ctype, f"e{size}", ct),
            st.sampled_from(UPDATE_NAMES),
            st.integers(0, 4),
            st.integers(0, 3),
            st.sampled_from(["t/a", "t/b"]),
            st.none() | st.integers(0, 5).map(ts),
        ),
        st.builds(
            lambda n, t: ObjectRow.tombstone(n, ts(t)),
            st.sampled_from(UPDATE_NAMES),
            st.integers(0, 4),
        ),
    ),
    min_size=1,
    max_size=20,
)


def apply(broker, container, rows, rnd: random.Random) -> None:
    """One row at a time through put_object/delete_object, or in merge_rows batches."""
    at = 0
    while at < len(rows):
        step = rnd.randint(1, 4)
        chunk, at = rows[at : at + step], at + step
        if step > 1:
            run(broker.merge_rows(DEV, ACCOUNT, container, chunk))
            continue
        row = chunk[0]
        if row.deleted:
            run(broker.delete_object(DEV, ACCOUNT, container, row.name, row.timestamp))
        else:
            data = (row.timestamp, row.size, row.content_type, row.etag)
            run(
                broker.put_object(
                    DEV, ACCOUNT, container, row.name, *data, ctype_timestamp=row.ctype_timestamp
                )
            )


def expected_state(rows):
    merged: dict[str, ObjectRow] = {}
    for row in rows:
        merged[row.name] = merge(merged[row.name], row) if row.name in merged else row
    live = sorted((r for r in merged.values() if not r.deleted), key=lambda r: r.name.encode())
    return live, (len(live), sum(r.size for r in live))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(updates, st.randoms(use_true_random=False))
def test_updates_in_any_order_converge(broker, rows, rnd) -> None:
    live, totals = expected_state(rows)
    for attempt in range(2):
        order = rows[:] if attempt == 0 else rnd.sample(rows, len(rows)) + rnd.choices(rows, k=2)
        name = new_container(broker)
        apply(broker, name, order, rnd)
        info = broker.info(DEV, ACCOUNT, name)
        assert broker.list_objects(DEV, ACCOUNT, name) == live
        assert (info.object_count, info.bytes_used) == totals
        assert info.stats_timestamp == max(row.timestamp for row in rows)
        assert info.stats_sum == stats_sum(rows)  # of the rows held, whatever the order


def stats_sum(rows) -> int:
    merged: dict[str, ObjectRow] = {}
    for row in rows:
        merged[row.name] = merge(merged[row.name], row) if row.name in merged else row
    return sum(stats_key(row) for row in merged.values())


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(updates, st.randoms(use_true_random=False))
def test_lmdb_and_memory_agree_whatever_the_order(tmp_path, rows, rnd) -> None:
    (tmp_path / DEV).mkdir(exist_ok=True)
    lmdb_broker, memory = ContainerBroker(str(tmp_path), SECRET), MemoryContainerBroker(SECRET)
    try:
        name = new_container(lmdb_broker)
        run(memory.create(DEV, ACCOUNT, name, ts(1)))
        apply(lmdb_broker, name, rnd.sample(rows, len(rows)), rnd)
        apply(memory, name, rnd.sample(rows, len(rows)), rnd)
        for params in ({}, {"reverse": True}, {"delimiter": "/"}, {"prefix": "L", "limit": 1}):
            assert lmdb_broker.list_objects(DEV, ACCOUNT, name, **params) == memory.list_objects(
                DEV, ACCOUNT, name, **params
            )
        assert lmdb_broker.info(DEV, ACCOUNT, name) == memory.info(DEV, ACCOUNT, name)
    finally:
        lmdb_broker.close()


# -- cost and durability -------------------------------------------------------------------


def test_a_page_from_the_middle_costs_the_page_not_the_container(broker) -> None:
    name = new_container(broker)
    every = [f"obj{i:06d}" for i in range(70_000)]
    for at in range(0, len(every), 10_000):
        rows = [ObjectRow.put(n, ts(2), 1, "t", "e") for n in every[at : at + 10_000]]
        run(broker.merge_rows(DEV, ACCOUNT, name, rows))
    deleted = [n for i, n in enumerate(every) if i % 7 in (0, 3)]  # 20,000 tombstones
    run(broker.merge_rows(DEV, ACCOUNT, name, [ObjectRow.tombstone(n, ts(3)) for n in deleted]))
    assert broker.info(DEV, ACCOUNT, name).object_count == 50_000
    live = [n for i, n in enumerate(every) if i % 7 not in (0, 3)]
    for params, expected in (
        ({"marker": live[20_000]}, live[20_001:30_001]),
        ({"marker": live[30_000], "reverse": True}, live[20_000:30_000][::-1]),
    ):
        before = broker.listing_steps
        page = broker.list_objects(DEV, ACCOUNT, name, limit=10_000, **params)
        assert [r.name for r in page] == expected
        assert broker.listing_steps - before <= 10_001  # the page, not 70,000 rows


def test_a_subdir_costs_one_step_not_its_subtree(broker) -> None:
    name = new_container(broker)
    rows = [
        ObjectRow.put(f"d{d:03d}/f{f:03d}", ts(2), 1, "t", "e")
        for d in range(200)
        for f in range(50)
    ]
    run(broker.merge_rows(DEV, ACCOUNT, name, rows))
    for reverse in (False, True):
        before = broker.listing_steps
        page = broker.list_objects(DEV, ACCOUNT, name, delimiter="/", limit=100, reverse=reverse)
        assert len(page) == 100 and all(isinstance(e, Subdir) for e in page)
        assert broker.listing_steps - before <= 101  # not 100 × 50 rows


def test_lmdb_data_survives_reopening(tmp_path) -> None:
    (tmp_path / DEV).mkdir()
    broker = ContainerBroker(str(tmp_path), SECRET)
    name = new_container(broker, {"X-Container-Meta-A": ("1", ts(1))})
    put(broker, name, LONG + "x", 2, size=3)
    put(broker, name, "é", 2, size=4)
    run(broker.delete_object(DEV, ACCOUNT, name, "é", ts(3)))
    before = (broker.info(DEV, ACCOUNT, name), broker.list_objects(DEV, ACCOUNT, name))
    broker.close()
    reopened = ContainerBroker(str(tmp_path), SECRET)  # a new object on the same directory
    try:
        after = (reopened.info(DEV, ACCOUNT, name), reopened.list_objects(DEV, ACCOUNT, name))
        assert after == before
        put(reopened, name, "é", 2, size=4)  # older than the tombstone, which must survive
        assert reopened.info(DEV, ACCOUNT, name).object_count == 1
    finally:
        reopened.close()


def test_lmdb_reads_totals_of_the_first_format(tmp_path) -> None:
    (tmp_path / DEV).mkdir()
    broker = ContainerBroker(str(tmp_path), SECRET)
    name = new_container(broker)
    put(broker, name, "o", 2, size=3)
    broker.close()
    env = lmdb.open(str(tmp_path / DEV / "containers.lmdb"), max_dbs=8)
    with env.begin(write=True) as txn:  # what a broker before stats timestamps stored
        totals = env.open_db(b"totals", txn=txn)
        for key, _value in list(txn.cursor(db=totals)):
            txn.put(key, (1).to_bytes(8, "big") + (3).to_bytes(8, "big"), db=totals)
    env.close()
    reopened = ContainerBroker(str(tmp_path), SECRET)
    try:
        info = reopened.info(DEV, ACCOUNT, name)
        assert (info.object_count, info.bytes_used, info.stats_timestamp) == (1, 3, Timestamp(0))
        put(reopened, name, "p", 4, size=1)
        assert reopened.info(DEV, ACCOUNT, name).stats_timestamp == ts(4)
    finally:
        reopened.close()


def test_lmdb_reads_totals_without_a_stats_sum(tmp_path) -> None:
    (tmp_path / DEV).mkdir()
    broker = ContainerBroker(str(tmp_path), SECRET)
    name = new_container(broker)
    put(broker, name, "o", 2, size=3)
    broker.close()
    env = lmdb.open(str(tmp_path / DEV / "containers.lmdb"), max_dbs=8)
    with env.begin(write=True) as txn:  # what a broker before the stats sum stored
        totals = env.open_db(b"totals", txn=txn)
        for key, value in list(txn.cursor(db=totals)):
            txn.put(key, value[:32], db=totals)
    env.close()
    reopened = ContainerBroker(str(tmp_path), SECRET)
    try:
        info = reopened.info(DEV, ACCOUNT, name)
        assert (info.object_count, info.bytes_used, info.stats_timestamp) == (1, 3, ts(2))
        assert info.stats_sum == 0  # counted from zero from here on
        put(reopened, name, "p", 4, size=1)
        info = reopened.info(DEV, ACCOUNT, name)
        assert (info.object_count, info.stats_sum) == (
            2,
            stats_key(ObjectRow.put("p", ts(4), 1, "t", "e")),
        )
    finally:
        reopened.close()


def test_lmdb_checks_mounts_when_asked(tmp_path) -> None:
    (tmp_path / DEV).mkdir()
    broker = ContainerBroker(str(tmp_path), SECRET, mount_check=True)
    with pytest.raises(DeviceUnavailable, match="not mounted"):
        broker.info(DEV, ACCOUNT, "c")
    broker.close()
    assert (tmp_path / DEV).exists() and not (tmp_path / DEV / "containers.lmdb").exists()
