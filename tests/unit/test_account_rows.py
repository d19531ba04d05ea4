"""accountd.rows: the container row's merge laws and its stored format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accountd.rows import MAX_STATS_SUM, ContainerRow, check_row, decode, encode, merge
from service.timestamp import MAX_OFFSET, Timestamp

# Few distinct values, so ties within a register are common and the tie-break is exercised.
timestamps = st.builds(Timestamp, st.integers(0, 3), st.sampled_from([0, 0, 1, MAX_OFFSET]))
counts = st.sampled_from([0, 0, 1, 7, (1 << 63) - 1])
sums = st.sampled_from([0, 0, 1, 2, 1 << 115, MAX_STATS_SUM])


@st.composite
def rows(draw, name: str = "cont"):
    return ContainerRow(
        name=name,
        put_timestamp=draw(timestamps),
        delete_timestamp=draw(timestamps),
        stats_timestamp=draw(timestamps),
        object_count=draw(counts),
        bytes_used=draw(counts),
        stats_sum=draw(sums),
    )


@given(rows(), rows())
def test_merge_is_commutative(a, b) -> None:
    assert merge(a, b) == merge(b, a)


@given(rows(), rows(), rows())
def test_merge_is_associative(a, b, c) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(rows(), rows())
def test_merge_is_idempotent_and_absorbs(a, b) -> None:
    assert merge(a, a) == a
    merged = merge(a, b)
    assert merge(merged, a) == merged == merge(merged, b)


@given(rows(), rows())
def test_each_register_is_won_by_its_newest_timestamp(a, b) -> None:
    merged = merge(a, b)
    assert merged.put_timestamp == max(a.put_timestamp, b.put_timestamp)
    assert merged.delete_timestamp == max(a.delete_timestamp, b.delete_timestamp)
    newest = max(a, b, key=lambda r: (r.stats_timestamp, r.stats_sum, r.object_count, r.bytes_used))
    assert (merged.object_count, merged.bytes_used) == (newest.object_count, newest.bytes_used)
    assert (merged.stats_timestamp, merged.stats_sum) == (newest.stats_timestamp, newest.stats_sum)


def test_the_greater_stats_version_wins_even_with_smaller_totals() -> None:
    # Two reports at one stats timestamp: the one with the greater stats sum saw more row
    # changes (a late tombstone of an older object), whatever its counts.
    stale = ContainerRow("c", Timestamp(1), Timestamp(0), Timestamp(5), 2, 30, stats_sum=10)
    fresh = ContainerRow("c", Timestamp(1), Timestamp(0), Timestamp(5), 1, 20, stats_sum=13)
    assert merge(stale, fresh) == merge(fresh, stale) == fresh


def test_deleted_needs_a_newer_delete_and_no_objects() -> None:
    row = ContainerRow("c", Timestamp(1), Timestamp(2), Timestamp(2), 0, 0)
    assert row.deleted
    assert not ContainerRow("c", Timestamp(1), Timestamp(2), Timestamp(2), 3, 9).deleted
    assert not ContainerRow("c", Timestamp(2), Timestamp(2), Timestamp(2), 0, 0).deleted
    recreated = merge(row, ContainerRow("c", Timestamp(3), Timestamp(0), Timestamp(3), 0, 0))
    assert not recreated.deleted and recreated.last_modified == Timestamp(3)


def test_rows_of_different_names_do_not_merge() -> None:
    a = ContainerRow("a", Timestamp(1), Timestamp(0), Timestamp(1), 0, 0)
    with pytest.raises(ValueError, match="cannot merge"):
        merge(a, ContainerRow("b", Timestamp(1), Timestamp(0), Timestamp(1), 0, 0))


@given(rows())
def test_encode_decode_round_trips(row) -> None:
    assert decode(row.name, encode(row)) == row


def test_golden_bytes() -> None:
    row = ContainerRow("c", Timestamp(0x0102), Timestamp(0), Timestamp(0x0103, 5), 2, 300, 0x0A0B)
    assert encode(row) == bytes.fromhex(
        "02 04 0000000000000102 0000000000000000 0000000000000103 0000000000000005"
        " 0000000000000002 000000000000012c 02 0a0b"
    )
    assert decode("c", encode(row)) == row
    # Version 1 (before the stats sum) still decodes, with the sum at zero.
    version_1 = bytes.fromhex(
        "01 04 0000000000000102 0000000000000000 0000000000000103 0000000000000005"
        " 0000000000000002 000000000000012c"
    )
    assert decode("c", version_1) == ContainerRow(
        "c", Timestamp(0x0102), Timestamp(0), Timestamp(0x0103, 5), 2, 300
    )
    with pytest.raises(ValueError, match="version"):
        decode("c", b"\x00" + encode(row)[1:])


@pytest.mark.parametrize(
    "bad",
    [
        {"name": ""},
        {"name": "a/b"},
        {"name": "x" * 1025},
        {"name": "\udcff"},
        {"object_count": -1},
        {"bytes_used": 1 << 63},
        {"bytes_used": False},
        {"stats_sum": -1},
        {"stats_sum": MAX_STATS_SUM + 1},
        {"stats_sum": 1.0},
        {"put_timestamp": "1.0"},
    ],
)
def test_rows_that_cannot_be_stored_are_refused(bad) -> None:
    fields = dict(
        name="c",
        put_timestamp=Timestamp(1),
        delete_timestamp=Timestamp(0),
        stats_timestamp=Timestamp(1),
        object_count=0,
        bytes_used=0,
    )
    with pytest.raises(ValueError):
        check_row(ContainerRow(**{**fields, **bad}))
    assert check_row(ContainerRow(**fields))
