"""service.async_pending: the record, its bytes, and its LMDB table."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import lmdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import async_pending
from service.async_pending import AsyncPending, AsyncPendingFormatError, decode, encode
from service.lmdb_writer import GroupCommitWriter
from service.timestamp import MAX_OFFSET, MAX_RAW, Timestamp

ROW_UPDATE = AsyncPending(
    op="PUT",
    account="AUTH_a",
    container="c",
    obj="ö/bj",
    targets=(("10.0.0.1", 6201, "sda"), ("10.0.0.2", 6201, "sdb")),
    partition=42,
    headers={"X-Timestamp": "1700000000.12345", "X-Size": "3", "X-Etag": "abc"},
    timestamp=Timestamp.parse("1700000000.12345"),
)

# Version 1's bytes: a changed encoder must still produce these, or be a new version.
GOLDEN = (
    b'\x01{"account":"AUTH_a","container":"c","headers":{"X-Etag":"abc","X-Size":"3",'
    b'"X-Timestamp":"1700000000.12345"},"obj":"\\u00f6/bj","op":"PUT","partition":42,'
    b'"targets":[["10.0.0.1",6201,"sda"],["10.0.0.2",6201,"sdb"]],'
    b'"timestamp":"1700000000.12345"}'
)


def test_golden_bytes() -> None:
    assert encode(ROW_UPDATE) == GOLDEN
    assert decode(GOLDEN) == ROW_UPDATE


def test_an_account_report_has_no_object() -> None:
    report = AsyncPending(
        op="PUT",
        account="AUTH_a",
        container="c",
        obj=None,
        targets=[["10.0.0.3", 6202, "sdc"]],  # lists are taken and frozen into tuples
        partition=7,
        headers={"X-Object-Count": "1", "X-Bytes-Used": "3"},
        timestamp=Timestamp.parse("1700000001.00000_0000000000000001"),
    )
    assert report.targets == (("10.0.0.3", 6202, "sdc"),)
    assert report.path == "/AUTH_a/c"
    assert ROW_UPDATE.path == "/AUTH_a/c/ö/bj"
    assert decode(encode(report)) == report


def test_the_record_is_read_only() -> None:
    with pytest.raises(TypeError):
        ROW_UPDATE.headers["X-Size"] = "4"  # type: ignore[index]
    assert hash(ROW_UPDATE) == hash(decode(encode(ROW_UPDATE)))


def test_bad_records_are_refused() -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        AsyncPending("POST", "a", "c", "o", (("ip", 1, "d"),), 0, {}, Timestamp(0))
    with pytest.raises(ValueError, match="at least one target"):
        AsyncPending("PUT", "a", "c", "o", (), 0, {}, Timestamp(0))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02{}",
        b"\x01not json",
        b"\x01{}",
        b"\x01\xff",
        GOLDEN.replace(b'"partition":42', b'"partition":"42"'),
        GOLDEN.replace(b'"partition":42', b'"partition":true'),
        GOLDEN.replace(b"6201", b"-1", 1),
        GOLDEN.replace(b'"timestamp":"1700000000.12345"', b'"timestamp":"x"'),
        GOLDEN.replace(b'"op":"PUT"', b'"op":"GET"'),
        GOLDEN.replace(b'["10.0.0.1",6201,"sda"]', b'["10.0.0.1",6201]'),
    ],
)
def test_undecodable_bytes_raise_a_format_error(data: bytes) -> None:
    with pytest.raises(AsyncPendingFormatError):
        decode(data)


def test_header_bytes_that_were_not_utf8_survive() -> None:
    # aiohttp decodes header bytes with surrogateescape; such a value must still be storable.
    pending = AsyncPending(
        "PUT", "a", "c", "o", (("ip", 1, "d"),), 0, {"Content-Type": "x\udcff"}, Timestamp(1)
    )
    assert decode(encode(pending)) == pending


names = st.text(min_size=1, max_size=20)


@given(
    obj=st.none() | names,
    headers=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
    raw=st.integers(0, MAX_RAW - 1),
    offset=st.integers(0, MAX_OFFSET),
)
def test_round_trip(obj, headers, raw: int, offset: int) -> None:
    pending = AsyncPending(
        "DELETE", "a", "c", obj, (("::1", 1, "d"),), 1, headers, Timestamp(raw, offset)
    )
    assert decode(encode(pending)) == pending


@given(st.lists(st.tuples(st.integers(0, MAX_RAW - 1), st.integers(0, MAX_OFFSET)), min_size=2))
def test_key_order_is_timestamp_order(stamps: list[tuple[int, int]]) -> None:
    rng = random.Random(0)
    keyed = [(async_pending.make_key(Timestamp(*s), rng.getrandbits(64)), s) for s in stamps]
    by_key = [s for _k, s in sorted(keyed)]
    assert by_key == sorted(stamps)


@pytest.fixture
def env(tmp_path) -> Iterator[lmdb.Environment]:
    env = lmdb.open(str(tmp_path / "db"), max_dbs=4, map_size=1 << 26)
    yield env
    env.close()


def test_store_list_replace_delete(env: lmdb.Environment) -> None:
    table = async_pending.open_table(env)
    writer = GroupCommitWriter(env)
    rng = random.Random(1)
    newer = AsyncPending(
        "DELETE", "a", "c", "o", (("10.0.0.1", 6201, "sda"),), 1, {}, Timestamp.parse("1800000000")
    )
    older = AsyncPending(
        "PUT", "a", "c", "o", (("10.0.0.1", 6201, "sda"),), 1, {}, Timestamp.parse("1600000000")
    )

    async def main() -> None:
        newer_key = await async_pending.save(writer, table, newer, rng)
        older_key = await async_pending.save(writer, table, older, rng)
        twin_key = await async_pending.save(writer, table, older, rng)  # same update, saved twice
        assert len({newer_key, older_key, twin_key}) == 3
        page = async_pending.list_pending(env, table)
        assert [p for _k, p in page] == [older, older, newer]  # oldest first
        assert page[-1][0] == newer_key
        # Paging: strictly after the marker.
        first = async_pending.list_pending(env, table, limit=1)
        rest = async_pending.list_pending(env, table, after=first[0][0])
        assert [k for k, _p in first + rest] == [k for k, _p in page]
        # A partial replay leaves fewer targets under the same key.
        fewer = AsyncPending(
            "DELETE", "a", "c", "o", (("10.0.0.9", 6201, "sdz"),), 1, {}, newer.timestamp
        )
        await async_pending.replace(writer, table, newer_key, fewer)
        assert async_pending.list_pending(env, table, after=page[1][0]) == [(newer_key, fewer)]
        assert await async_pending.delete(writer, table, newer_key) is True
        assert await async_pending.delete(writer, table, newer_key) is False
        assert len(async_pending.list_pending(env, table)) == 2

    try:
        asyncio.run(main())
    finally:
        writer.close()


def test_a_corrupt_record_is_listed_as_none(env: lmdb.Environment) -> None:
    table = async_pending.open_table(env)
    with env.begin(write=True, db=table) as txn:
        txn.put(b"0000000001.00000_0000000000000000-0000000000000000", b"\x09junk")
        txn.put(b"0000000002.00000_0000000000000000-0000000000000000", GOLDEN)
    page = async_pending.list_pending(env, table)
    assert [p for _k, p in page] == [None, ROW_UPDATE]
    # Other tables of the environment are not mixed in.
    index = env.open_db(b"index")
    with env.begin(write=True, db=index) as txn:
        txn.put(b"0000000000.00000", b"x")
    assert len(async_pending.list_pending(env, table)) == 2
