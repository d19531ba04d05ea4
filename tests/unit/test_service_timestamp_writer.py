"""service.timestamp and service.lmdb_writer."""

from __future__ import annotations

import asyncio
import threading

import lmdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.lmdb_writer import GroupCommitWriter, WriterClosedError
from service.timestamp import MAX_OFFSET, MAX_RAW, Timestamp


@pytest.mark.parametrize(
    ("text", "normal", "internal"),
    [
        ("1700000000.12345", "1700000000.12345", "1700000000.12345"),
        ("1700000000", "1700000000.00000", "1700000000.00000"),
        ("1700000000.1", "1700000000.10000", "1700000000.10000"),
        ("1700000000.123456789", "1700000000.12345", "1700000000.12345"),
        (
            "0000000001.00000_000000000000000a",
            "0000000001.00000",
            "0000000001.00000_000000000000000a",
        ),
        (b"1700000000.5", "1700000000.50000", "1700000000.50000"),
    ],
)
def test_parse_and_format(text, normal: str, internal: str) -> None:
    ts = Timestamp.parse(text)
    assert ts.normal == normal
    assert ts.internal == internal == str(ts)


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.2.3", "12345678901", "1_zz", "1e9", " "])
def test_bad_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid timestamp"):
        Timestamp.parse(text)


def test_range_is_checked() -> None:
    with pytest.raises(ValueError):
        Timestamp(MAX_RAW)
    with pytest.raises(ValueError):
        Timestamp(0, MAX_OFFSET + 1)


@given(st.integers(0, MAX_RAW - 1), st.integers(0, MAX_OFFSET))
def test_internal_form_round_trips_and_orders(raw: int, offset: int) -> None:
    ts = Timestamp(raw, offset)
    assert Timestamp.parse(ts.internal) == ts
    assert ts < Timestamp(raw, offset + 1) if offset < MAX_OFFSET else True
    assert ts.with_offset(0) <= ts


def test_now_uses_the_clock() -> None:
    assert Timestamp.now(lambda: 1_700_000_000.123456).normal == "1700000000.12346"


@pytest.fixture
def env(tmp_path):
    env = lmdb.open(str(tmp_path / "db"), max_dbs=2, map_size=1 << 26)
    yield env
    env.close()


def read_all(env) -> dict[bytes, bytes]:
    with env.begin() as txn:
        return dict(txn.cursor())


def test_concurrent_writes_share_commits_and_are_durable_on_return(env) -> None:
    writer = GroupCommitWriter(env, max_batch=64)
    gate = threading.Event()

    def slow_first(txn):  # holds the writer so the others queue up behind it
        gate.wait(5)
        txn.put(b"first", b"1")

    async def main() -> None:
        first = asyncio.create_task(writer.submit(slow_first))
        await asyncio.sleep(0.05)
        others = [writer.submit(lambda txn, i=i: txn.put(b"k%03d" % i, b"v")) for i in range(50)]
        tasks = [asyncio.ensure_future(o) for o in others]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert writer.writes == 51
    assert writer.commits <= 3  # the 50 queued writes went in one or two transactions
    assert len(read_all(env)) == 51
    writer.close()


def test_a_failing_write_undoes_only_itself(env) -> None:
    writer = GroupCommitWriter(env)

    def bad(txn):
        txn.put(b"bad", b"x")
        raise KeyError("boom")

    async def main():
        return await asyncio.gather(
            writer.submit(lambda txn: txn.put(b"good1", b"1")),
            writer.submit(bad),
            writer.submit(lambda txn: txn.put(b"good2", b"2")),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert isinstance(results[1], KeyError)
    assert read_all(env) == {b"good1": b"1", b"good2": b"2"}
    writer.close()


def test_one_commit_per_write_without_batching(env) -> None:
    writer = GroupCommitWriter(env, max_batch=1)

    async def main():
        await asyncio.gather(
            *(writer.submit(lambda t, i=i: t.put(b"%d" % i, b"")) for i in range(20))
        )

    asyncio.run(main())
    assert writer.commits == 20
    writer.close()


def test_sync_submit_and_close(env) -> None:
    writer = GroupCommitWriter(env)
    assert writer.submit_sync(lambda txn: txn.put(b"a", b"1")) is True
    with pytest.raises(ZeroDivisionError):
        writer.submit_sync(lambda txn: 1 / 0)
    writer.close()
    with pytest.raises(WriterClosedError):
        writer.submit_sync(lambda txn: None)
    assert read_all(env) == {b"a": b"1"}
