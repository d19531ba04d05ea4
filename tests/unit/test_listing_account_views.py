"""accountd.listing_views: a container row rendered straight from its stored bytes is byte
for byte what Swift's account server makes of it (``container_record`` + ``json.dumps``),
in either stored version, and so is every page in every format."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accountd.http_headers import container_record
from accountd.listing_views import (
    JSON,
    NAMES,
    ROWS,
    decode_stored,
    render_listing,
    row_json,
    stored_json,
    view_for,
)
from accountd.rows import ContainerRow, encode
from service.listing import Subdir
from service.listing_http import account_xml, to_plain
from service.timestamp import MAX_OFFSET, MAX_RAW, Timestamp

names = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=1, max_size=12
) | st.sampled_from(['a"b\\c', "\x01\x1f\x7f", "é😀", "c"])
timestamps = st.builds(
    Timestamp,
    st.integers(0, MAX_RAW - 1) | st.sampled_from([0, 1_764_460_031_25389]),
    st.sampled_from([0, 0, 0, 1, MAX_OFFSET]),
)
counts = st.sampled_from([0, 1, (1 << 63) - 1]) | st.integers(0, 1 << 40)
container_rows = st.builds(
    ContainerRow,
    name=names,
    put_timestamp=timestamps,
    delete_timestamp=timestamps,
    stats_timestamp=timestamps,
    object_count=counts,
    bytes_used=counts,
    stats_sum=st.sampled_from([0, 1, (1 << 192) - 1]),
)


def version_1(row: ContainerRow) -> bytes:
    """The row as the first format stored it: no stats sum."""
    stats_sum_bytes = (row.stats_sum.bit_length() + 7) // 8
    stored = encode(row)
    return b"\x01" + stored[1 : len(stored) - 1 - stats_sum_bytes]  # its length byte too


@given(container_rows)
def test_a_row_renders_as_swifts_record_from_its_object_and_from_its_stored_bytes(row) -> None:
    swift = json.dumps(container_record(row))
    name = row.name.encode("utf-8")
    assert row_json(row) == swift
    assert stored_json(name, encode(row)) == swift
    assert stored_json(name, version_1(row)) == swift
    assert decode_stored(name, version_1(row)).stats_sum == 0


def test_the_common_row_is_read_in_place() -> None:
    at = Timestamp(1_764_460_031_25389)
    row = ContainerRow("c", at, Timestamp(0), at, 3, 4096)
    assert encode(row)[1] == 0  # flags 0: what stored_json reads without rows.decode
    assert json.loads(stored_json(b"c", encode(row))) == {
        "name": "c",
        "count": 3,
        "bytes": 4096,
        "last_modified": "2025-11-29T23:47:11.253890",
    }


def test_a_row_of_an_unknown_version_is_refused_by_every_view() -> None:
    bad = b"\x07" + bytes(60)
    for view in (ROWS, JSON, NAMES):
        with pytest.raises(ValueError, match="unknown container row version"):
            view.from_stored(b"c", bad)


@given(st.lists(container_rows | st.builds(Subdir, names), max_size=8))
def test_every_format_renders_a_page_as_from_swifts_records(entries) -> None:
    records = [container_record(entry) for entry in entries]
    expected = {
        "application/json": json.dumps(records).encode("ascii"),
        "application/xml": account_xml(records, "AUTH_a"),
        "text/plain": to_plain(records),
    }
    for content_type, body in expected.items():
        view = view_for(content_type)
        for convert in (
            view.from_row,
            lambda row, view=view: view.from_stored(row.name.encode("utf-8"), encode(row)),
        ):
            page = [entry if isinstance(entry, Subdir) else convert(entry) for entry in entries]
            assert render_listing(page, content_type, "AUTH_a") == body
