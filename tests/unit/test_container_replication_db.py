"""Container replication between two brokers, without HTTP: replicator/db_replication.py's
push from one broker (``BrokerSource``) into another's receiver (``receive_record``,
``receive_rows``), on real LMDB and on the memory twin.  Merges must be idempotent and
pushes must converge, whatever was sent before; sync points must cut what is resent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replication_helpers import (
    DEV,
    PAIR_SECRET,
    STAMPS,
    assert_merge_laws,
    broker_pair,
    make_broker,
    ts,
)

from containerd_.broker import ContainerBroker
from containerd_.errors import ContainerNotFound
from containerd_.info import ContainerInfo
from containerd_.memory import MemoryContainerBroker
from containerd_.replication import (
    merge_record,
    record_from_wire,
    record_to_wire,
    row_from_wire,
    row_to_wire,
)
from containerd_.rows import ObjectRow
from replicator import db_replication
from replicator.container_replication_peers import BrokerSource
from ring.placement import hash_path

SECRET = PAIR_SECRET
ACCOUNT = "AUTH_test"
CONTAINER = "c"
CID = hash_path(SECRET, ACCOUNT, CONTAINER)
LONG = "l" * 600  # past the 494 bytes of a short LMDB key: a long-name bucket
run = asyncio.run


@pytest.fixture(params=["lmdb", "memory"])
def pair(request, tmp_path):
    yield from broker_pair(request.param, tmp_path, ContainerBroker, MemoryContainerBroker)


class BrokerPeer:
    """A peer that is another broker: the receiver's half of REPLICATE, minus HTTP."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.merges: list[tuple[int, int | None]] = []  # (rows, point) per merge request

    async def sync(self, record: dict[str, Any], sender: str) -> int | None:
        info = record_from_wire(record)
        _, point = await self.broker.receive_record(
            DEV, info.account, info.container, info, bytes.fromhex(sender)
        )
        return point

    async def merge(self, rows: list[list[Any]], sender: str, point: int | None) -> None:
        self.merges.append((len(rows), point))
        decoded = [row_from_wire(row) for row in rows]
        await self.broker.receive_rows(
            DEV, ACCOUNT, CONTAINER, bytes.fromhex(sender), decoded, point
        )


def push(src: Any, dst: Any, page_rows: int = 3) -> tuple[db_replication.Pushed, BrokerPeer]:
    async def go() -> tuple[db_replication.Pushed | None, BrokerPeer]:
        sender = (await src.replica_id(DEV)).hex()
        peer = BrokerPeer(dst)
        pushed = await db_replication.push(
            BrokerSource(src, DEV, CID), peer, sender, page_rows=page_rows
        )
        return pushed, peer

    pushed, peer = run(go())
    assert pushed is not None
    return pushed, peer


def state(broker: Any) -> tuple[ContainerInfo, list[ObjectRow]]:
    info = broker.info(DEV, ACCOUNT, CONTAINER, include_deleted=True)
    return info, broker.rows_after(DEV, CID, None, 10_000)


def put(broker: Any, name: str, when: int, size: int = 1) -> None:
    run(broker.put_object(DEV, ACCOUNT, CONTAINER, name, ts(when), size, "text/plain", "e"))


def delete(broker: Any, name: str, when: int) -> None:
    run(broker.delete_object(DEV, ACCOUNT, CONTAINER, name, ts(when)))


def test_a_new_peer_gets_a_full_copy_then_nothing_more(pair):
    a, b = pair
    run(a.create(DEV, ACCOUNT, CONTAINER, ts(1), {"X-Container-Meta-Color": ("red", ts(1))}))
    for i, name in enumerate(["o1", "o2", "o3", "o4", LONG, "\u00e9t\u00e9"]):
        put(a, name, 10 + i, size=i + 1)
    delete(a, "o2", 30)
    pushed, peer = push(a, b)
    assert pushed.full_copy and pushed.rows == 6
    assert peer.merges[-1][1] is not None and all(p is None for _, p in peer.merges[:-1])
    assert state(b) == state(a)
    assert state(b)[0].object_count == 5
    assert state(b)[0].visible_metadata == {"X-Container-Meta-Color": "red"}
    again, peer = push(a, b)
    assert not again.full_copy and again.rows == 0 and peer.merges == []


def test_after_the_sync_point_only_changed_rows_are_sent(pair):
    a, b = pair
    run(a.create(DEV, ACCOUNT, CONTAINER, ts(1)))
    for i in range(7):
        put(a, f"o{i}", 10 + i)
    push(a, b)
    put(a, "o1", 40, size=9)
    delete(a, "o5", 41)
    put(a, "new", 42)
    pushed, peer = push(a, b, page_rows=2)
    assert not pushed.full_copy and pushed.rows == 3
    assert [n for n, _ in peer.merges] == [2, 1]
    assert state(b) == state(a)


def test_pushes_both_ways_converge_and_replays_change_nothing(pair):
    a, b = pair
    run(a.create(DEV, ACCOUNT, CONTAINER, ts(1)))
    run(b.create(DEV, ACCOUNT, CONTAINER, ts(2)))
    put(a, "x", 10)
    put(b, "x", 11, size=5)  # b's is newer
    put(a, "only-a", 12)
    put(b, "only-b", 13)
    delete(a, "only-b", 14)  # a tombstone newer than b's row
    push(a, b)
    push(b, a)
    assert state(a) == state(b)
    info, rows = state(a)
    assert {r.name: r.deleted for r in rows} == {"x": False, "only-a": False, "only-b": True}
    assert (info.object_count, info.bytes_used) == (2, 6)
    # Rows a merged from b are changes of a's: they echo back once, changing nothing there.
    before = state(b)
    assert push(a, b)[0].rows == 2
    assert state(b) == before
    # A replay of rows already merged, with an old sync point, changes nothing.
    sender = run(a.replica_id(DEV))
    before = state(b)
    run(b.receive_rows(DEV, ACCOUNT, CONTAINER, sender, rows, 1))
    run(b.receive_rows(DEV, ACCOUNT, CONTAINER, sender, rows, None))
    assert state(b) == before
    assert push(a, b)[0].rows == 0  # the old point did not move the sync point back


def test_a_deletion_missed_by_a_replica_reaches_it(pair):
    a, b = pair
    run(a.create(DEV, ACCOUNT, CONTAINER, ts(1)))
    push(a, b)
    run(a.delete(DEV, ACCOUNT, CONTAINER, ts(5)))
    push(b, a)  # the stale replica pushes first: its older PUT cannot revive it
    push(a, b)
    for broker in (a, b):
        with pytest.raises(ContainerNotFound):
            broker.info(DEV, ACCOUNT, CONTAINER)
        assert broker.info(DEV, ACCOUNT, CONTAINER, include_deleted=True).deleted


def test_a_handoff_copy_is_dropped_only_if_unchanged(pair):
    a, _ = pair
    run(a.create(DEV, ACCOUNT, CONTAINER, ts(1)))
    put(a, "o", 10)
    seen, seq = a.replication_source(DEV, CID)
    put(a, "p", 11)  # landed after the read: the copy stays
    assert not run(a.drop_container(DEV, CID, seen, seq))
    seen, seq = a.replication_source(DEV, CID)
    assert run(a.drop_container(DEV, CID, seen, seq))
    assert a.replication_source(DEV, CID) == (None, 0)
    assert a.container_ids(DEV) == []
    assert a.rows_after(DEV, CID, None, 10) == []


def test_a_rewritten_name_keeps_one_change_entry(tmp_path):
    broker = make_broker("lmdb", tmp_path, ContainerBroker, MemoryContainerBroker)
    try:
        run(broker.create(DEV, ACCOUNT, CONTAINER, ts(1)))
        for when in range(10, 20):
            put(broker, "o", when)
        put(broker, LONG, 30)
        rows, reached = broker.changed_rows(DEV, CID, 0, 100)
        assert [r.name for r in rows] == ["o", LONG]
        assert rows[0].timestamp == ts(19)
        assert reached == broker.replication_source(DEV, CID)[1]
    finally:
        broker.close()


def test_a_receiver_refuses_a_record_for_another_path(pair):
    a, _ = pair
    info = ContainerInfo(ACCOUNT, "other", ts(1))
    with pytest.raises(ContainerNotFound):
        run(a.receive_record(DEV, ACCOUNT, CONTAINER, info, b"\x01" * 16))


metadata = st.dictionaries(
    st.sampled_from(["X-Container-Meta-A", "X-Container-Read"]),
    st.tuples(st.sampled_from(["", "v", "w"]), STAMPS),
    max_size=2,
)
records = st.builds(
    ContainerInfo,
    st.just(ACCOUNT),
    st.just(CONTAINER),
    STAMPS,
    delete_timestamp=STAMPS,
    status_changed_at=STAMPS,
    created_at=STAMPS,
    metadata=metadata,
)


@settings(max_examples=200, deadline=None)
@given(records, records, records)
def test_merge_record_is_commutative_associative_and_idempotent(x, y, z):
    assert_merge_laws(merge_record, x, y, z)
    assert record_from_wire(record_to_wire(x)) == x


@given(
    st.builds(
        ObjectRow,
        st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
        STAMPS,
        st.integers(0, 2**63 - 1),
        st.text(max_size=5),
        st.booleans(),
        STAMPS,
        st.text(max_size=5),
        STAMPS,
    )
)
def test_rows_cross_the_wire_unchanged(row):
    assert row_from_wire(row_to_wire(row)) == row
