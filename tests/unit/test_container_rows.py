"""containerd_.rows: the object row's merge laws and its stored format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from containerd_.rows import ObjectRow, check_row, decode, encode, merge
from service.timestamp import MAX_OFFSET, Timestamp

# Few distinct values, so ties within a register are common and the tie-break is exercised.
timestamps = st.builds(
    Timestamp, st.integers(0, 3), st.sampled_from([0, 0, 1, MAX_OFFSET])
) | st.builds(Timestamp, st.just(1_700_000_000_12345), st.integers(0, 2))
texts = st.sampled_from(["", "a", "b", "text/plain", "é😀"])


@st.composite
def rows(draw, name: str = "obj"):
    return ObjectRow(
        name=name,
        timestamp=draw(timestamps),
        size=draw(st.sampled_from([0, 1, 5, (1 << 63) - 1])),
        etag=draw(texts),
        deleted=draw(st.booleans()),
        ctype_timestamp=draw(timestamps),
        content_type=draw(texts),
        meta_timestamp=draw(timestamps),
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
    newer = max(a, b, key=lambda r: (r.timestamp, r.deleted, r.size, r.etag))
    assert (merged.timestamp, merged.size, merged.etag, merged.deleted) == (
        newer.timestamp,
        newer.size,
        newer.etag,
        newer.deleted,
    )
    assert merged.ctype_timestamp == max(a.ctype_timestamp, b.ctype_timestamp)
    assert merged.meta_timestamp == max(a.meta_timestamp, b.meta_timestamp)


def test_a_post_changes_the_content_type_but_not_the_data() -> None:
    put = ObjectRow.put("o", Timestamp(10), 5, "text/plain", "etag1")
    post = ObjectRow.put("o", Timestamp(10), 5, "image/png", "etag1", Timestamp(12), Timestamp(12))
    newer_put = ObjectRow.put("o", Timestamp(11), 7, "text/csv", "etag2")
    merged = merge(merge(put, post), newer_put)
    assert (merged.size, merged.etag, merged.timestamp) == (7, "etag2", Timestamp(11))
    assert (merged.content_type, merged.ctype_timestamp) == ("image/png", Timestamp(12))
    assert merged.last_modified == Timestamp(12)


def test_a_tombstone_wins_only_by_its_timestamp() -> None:
    put = ObjectRow.put("o", Timestamp(10), 5, "text/plain", "e")
    assert merge(put, ObjectRow.tombstone("o", Timestamp(9))) == put
    assert merge(put, ObjectRow.tombstone("o", Timestamp(11))).deleted
    assert merge(put, ObjectRow.tombstone("o", Timestamp(10))).deleted  # ties: deleted > live


def test_rows_of_different_names_do_not_merge() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge(ObjectRow.tombstone("a", Timestamp(1)), ObjectRow.tombstone("b", Timestamp(1)))


@given(rows())
def test_encode_decode_round_trips(row) -> None:
    assert decode(row.name, encode(row)) == row


def test_golden_bytes() -> None:
    # A plain PUT: ctype and meta timestamps equal the data timestamp and are left out.
    put = ObjectRow.put("o", Timestamp(0x0102), 5, "t/p", "e1")
    assert encode(put) == bytes.fromhex(
        "01 00 0000000000000102 0000000000000005 0002 6531 0003 742f70"
    )
    # A tombstone at an internal timestamp: offset present; ctype and meta at zero.
    tomb = ObjectRow.tombstone("o", Timestamp(3, 10))
    assert encode(tomb) == bytes.fromhex(
        "01 17 0000000000000003 000000000000000a 0000000000000000"
        " 0000000000000000 0000000000000000 0000 0000"
    )
    assert decode("o", encode(tomb)) == tomb
    with pytest.raises(ValueError, match="version"):
        decode("o", b"\x02" + encode(put)[1:])


@pytest.mark.parametrize(
    "bad",
    [
        {"name": ""},
        {"name": "x" * 1025},
        {"name": "\ud800"},
        {"size": -1},
        {"size": 1 << 63},
        {"size": True},
        {"etag": "x" * 65536},
        {"content_type": None},
        {"content_type": "\udc80"},
        {"deleted": 1},
        {"timestamp": 1.5},
    ],
)
def test_rows_that_cannot_be_stored_are_refused(bad) -> None:
    fields = dict(
        name="o",
        timestamp=Timestamp(1),
        size=0,
        etag="",
        deleted=False,
        ctype_timestamp=Timestamp(1),
        content_type="",
        meta_timestamp=Timestamp(1),
    )
    with pytest.raises(ValueError):
        check_row(ObjectRow(**{**fields, **bad}))
    assert check_row(ObjectRow(**fields))
