"""Account replication: pushes between two brokers (LMDB and memory) without HTTP, the digest
short cut, ``merge_record``'s laws, and the account replicator's pass in one process over
four account servers (a primary fills in the others; a handoff goes home and is dropped)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from replication_helpers import (
    DEV,
    PAIR_SECRET,
    STAMPS,
    ServerCluster,
    assert_merge_laws,
    broker_pair,
    running,
    ts,
)

from accountd.broker import AccountBroker
from accountd.errors import AccountNotFound
from accountd.info import AccountInfo
from accountd.memory import MemoryAccountBroker
from accountd.replication import (
    merge_record,
    record_from_wire,
    record_to_wire,
    row_from_wire,
    row_to_wire,
)
from accountd.rows import ContainerRow
from accountd.server import build_app
from replicator import db_replication
from replicator.account_replicator import NO_SENDER, AccountReplicator, AccountSource
from replicator.account_replicator_config import AccountReplicatorConfig
from replicator.db_replicator import DbReplicatorStats
from ring.placement import hash_path
from service.config import AccountServerConfig, ClusterConfig
from service.timestamp import Timestamp

SECRET = PAIR_SECRET
ACCOUNT = "AUTH_test"
AID = hash_path(SECRET, ACCOUNT)
run = asyncio.run


@pytest.fixture(params=["lmdb", "memory"])
def pair(request, tmp_path):
    yield from broker_pair(request.param, tmp_path, AccountBroker, MemoryAccountBroker)


class BrokerPeer:
    def __init__(self, broker: Any) -> None:
        self.broker = broker

    async def sync(self, record: dict[str, Any], sender: str) -> int | None:
        info = record_from_wire(record)
        _, in_sync = await self.broker.receive_record(
            DEV, info.account, info, record["rows_digest"]
        )
        return 0 if in_sync else None

    async def merge(self, rows: list[list[Any]], sender: str, point: int | None) -> None:
        await self.broker.receive_rows(DEV, ACCOUNT, [row_from_wire(row) for row in rows])


def push(src: Any, dst: Any) -> db_replication.Pushed:
    source = AccountSource(src, DEV, AID)
    pushed = run(db_replication.push(source, BrokerPeer(dst), NO_SENDER, page_rows=2))
    assert pushed is not None
    return pushed


def state(broker: Any) -> tuple[AccountInfo, list[ContainerRow]]:
    info = broker.info(DEV, ACCOUNT, include_deleted=True)
    return info, broker.rows_after(DEV, AID, None, 10_000)


def report(broker: Any, name: str, when: int, objects: int = 1, deleted_at: int = 0) -> None:
    run(
        broker.put_container(
            DEV,
            ACCOUNT,
            name,
            ts(when),
            ts(deleted_at) if deleted_at else Timestamp(0),
            ts(when),
            objects,
            10 * objects,
        )
    )


def test_a_differing_replica_gets_every_row_and_an_equal_one_none(pair):
    a, b = pair
    run(a.create(DEV, ACCOUNT, ts(1), {"X-Account-Meta-Color": ("red", ts(1))}))
    for i, name in enumerate(["c1", "c2", "c3", "\u00e9t\u00e9"]):
        report(a, name, 10 + i, objects=i)
    report(a, "gone", 20, objects=0, deleted_at=21)
    pushed = push(a, b)
    assert pushed.full_copy and pushed.rows == 5
    assert state(b) == state(a)
    assert state(b)[0].container_count == 4
    assert state(b)[0].visible_metadata == {"X-Account-Meta-Color": "red"}
    again = push(a, b)
    assert not again.full_copy and again.rows == 0 and again.requests == 1


def test_pushes_both_ways_converge_and_a_missed_delete_arrives(pair):
    a, b = pair
    run(a.create(DEV, ACCOUNT, ts(1)))
    run(b.create(DEV, ACCOUNT, ts(2)))
    report(a, "x", 10, objects=1)
    report(b, "x", 11, objects=5)  # a newer report
    report(a, "only-a", 12)
    report(b, "only-b", 13)
    push(a, b)
    push(b, a)
    assert state(a) == state(b)
    assert (state(a)[0].container_count, state(a)[0].object_count) == (3, 7)
    run(a.delete(DEV, ACCOUNT, ts(30)))
    push(b, a)  # the stale replica first: its older PUT cannot revive it
    push(a, b)
    for broker in (a, b):
        with pytest.raises(AccountNotFound):
            broker.info(DEV, ACCOUNT)


def test_a_handoff_copy_is_dropped_only_if_unchanged(pair):
    a, _ = pair
    run(a.create(DEV, ACCOUNT, ts(1)))
    report(a, "c", 10)
    seen, digest = a.replication_source(DEV, AID)
    report(a, "d", 11)
    assert not run(a.drop_account(DEV, AID, seen, digest))
    seen, digest = a.replication_source(DEV, AID)
    assert run(a.drop_account(DEV, AID, seen, digest))
    assert a.replication_source(DEV, AID)[0] is None
    assert a.account_ids(DEV) == [] and a.rows_after(DEV, AID, None, 10) == []


records = st.builds(
    AccountInfo,
    st.just(ACCOUNT),
    STAMPS,
    delete_timestamp=STAMPS,
    status_changed_at=STAMPS,
    created_at=STAMPS,
    metadata=st.dictionaries(
        st.sampled_from(["X-Account-Meta-A", "X-Account-Meta-B"]),
        st.tuples(st.sampled_from(["", "v", "w"]), STAMPS),
        max_size=2,
    ),
)


@settings(max_examples=200, deadline=None)
@given(records, records, records)
def test_merge_record_is_commutative_associative_and_idempotent(x, y, z):
    assert_merge_laws(merge_record, x, y, z)
    assert record_from_wire(record_to_wire(x)) == x


@given(
    st.builds(
        ContainerRow,
        st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s and "/" not in s),
        STAMPS,
        STAMPS,
        STAMPS,
        st.integers(0, 2**63 - 1),
        st.integers(0, 2**63 - 1),
        st.integers(0, 2**192 - 1),
    )
)
def test_rows_cross_the_wire_unchanged(row):
    assert row_from_wire(row_to_wire(row)) == row


# -- the daemon over four account servers, in one process --


class Cluster(ServerCluster):
    ring_name = "account.ring"

    def __init__(self, root: Path) -> None:
        super().__init__(root, SECRET)
        self.brokers: list[AccountBroker] = self.stores
        self.primaries = self.nodes(self.ring.get_nodes(ACCOUNT)[1])
        self.handoff = self.others(self.primaries)[0]

    def open_store(self, devices: str) -> AccountBroker:
        return AccountBroker(devices, SECRET)

    def app(self, node: int) -> web.Application:
        return build_app(
            AccountServerConfig(mount_check=False),
            ClusterConfig(SECRET.decode()),
            broker=self.brokers[node],
        )

    def names(self, node: int) -> list[str] | None:
        try:
            self.brokers[node].info(f"d{node}", ACCOUNT)
        except AccountNotFound:
            return None
        return [r.name for r in self.brokers[node].rows_after(f"d{node}", AID, None, 100)]

    async def replicate(self, node: int) -> DbReplicatorStats:
        config = AccountReplicatorConfig(**self.daemon_options(node), accounts_per_s=0, page_rows=2)
        return await self.run_db_replicator(AccountReplicator, config, node)


def test_the_daemon_fills_in_primaries_and_brings_a_handoff_home(tmp_path: Path) -> None:
    async def test() -> None:
        async with running(Cluster(tmp_path)) as cluster:
            first = cluster.primaries[0]
            broker = cluster.brokers[first]
            await broker.create(f"d{first}", ACCOUNT, ts(1))
            for name in ("a", "b", "c"):
                await broker.put_container(
                    f"d{first}", ACCOUNT, name, ts(5), Timestamp(0), ts(5), 1, 1
                )
            stats = await cluster.replicate(first)
            assert (stats.databases, stats.pushes, stats.rows_pushed) == (1, 2, 6)
            assert all(cluster.names(n) == ["a", "b", "c"] for n in cluster.primaries)
            stats = await cluster.replicate(first)
            assert (stats.pushes, stats.rows_pushed, stats.full_copies) == (2, 0, 0)

            handoff = cluster.handoff
            hb = cluster.brokers[handoff]
            await hb.create(f"d{handoff}", ACCOUNT, ts(1))
            await hb.put_container(f"d{handoff}", ACCOUNT, "d", ts(6), Timestamp(0), ts(6), 2, 2)
            stats = await cluster.replicate(handoff)
            assert (stats.handoffs, stats.handoffs_removed, stats.failures) == (1, 1, 0)
            assert cluster.names(handoff) is None
            assert all(cluster.names(n) == ["a", "b", "c", "d"] for n in cluster.primaries)

    asyncio.run(test())
