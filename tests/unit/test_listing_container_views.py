"""containerd_.listing_views: a row rendered straight from its stored bytes is byte for byte
what Swift's container server makes of the same row (``object_record`` + ``json.dumps``),
for every kind of row the format holds, and so is every page in every format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from containerd_.http_headers import object_record
from containerd_.listing_views import (
    JSON,
    NAMES,
    ROWS,
    decode_stored,
    render_listing,
    row_json,
    stored_json,
    view_for,
)
from containerd_.rows import ObjectRow, encode
from service.listing import Subdir
from service.listing_http import container_xml, isoformat, isoformat_raw, to_plain
from service.timestamp import MAX_OFFSET, MAX_RAW, Timestamp

# Names and texts json must escape: quotes, backslashes, controls, non-ASCII, astral planes.
texts = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "d41d8cd98f00b204e9800998ecf8427e", 'a"b\\c', "\x00\x1f\x7f", "é😀/", "text/plain"]
)
names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
content_types = texts | st.sampled_from(
    [
        "application/octet-stream",
        "text/plain;swift_bytes=123",
        "application/x-manifest; swift_bytes=9; charset=utf-8",
        'text/plain; a="q;uoted"; swift_bytes=x7',
        "text/plain;swift_bytes=",
        "text/plain; swift_bytes=١٢",  # digits, but not ASCII ones: not a size
    ]
)
timestamps = st.builds(
    Timestamp,
    st.integers(0, MAX_RAW - 1) | st.sampled_from([0, 1_764_460_031_25389, 99_999]),
    st.sampled_from([0, 0, 0, 1, MAX_OFFSET]),
)


@st.composite
def live_rows(draw):
    timestamp = draw(timestamps)
    same = st.just(timestamp)
    return ObjectRow(
        name=draw(names),
        timestamp=timestamp,
        size=draw(st.sampled_from([0, 1, 4096, (1 << 63) - 1]) | st.integers(0, 1 << 40)),
        etag=draw(texts),
        deleted=False,
        ctype_timestamp=draw(same | timestamps),  # mostly the data's: the in-place path
        content_type=draw(content_types),
        meta_timestamp=draw(same | timestamps),
    )


def swift_json(row: ObjectRow) -> str:
    return json.dumps(object_record(row))


@given(live_rows())
def test_a_row_renders_as_swifts_record_from_its_object_and_from_its_stored_bytes(row) -> None:
    stored = encode(row)
    name = row.name.encode("utf-8")
    assert row_json(row) == swift_json(row)
    assert stored_json(name, stored) == swift_json(row)
    assert decode_stored(name, stored) == row


def test_the_common_row_is_read_in_place() -> None:
    row = ObjectRow.put("obj-000001", Timestamp(1_764_460_031_25389), 7, "text/plain", "e")
    assert encode(row)[1] == 0  # flags 0: what stored_json reads without rows.decode
    assert json.loads(stored_json(b"obj-000001", encode(row))) == {
        "bytes": 7,
        "hash": "e",
        "name": "obj-000001",
        "content_type": "text/plain",
        "last_modified": "2025-11-29T23:47:11.253890",
    }


def test_a_row_of_an_unknown_version_is_refused_by_every_view() -> None:
    bad = b"\x07 a row of an unknown version"
    for view in (ROWS, JSON, NAMES):
        with pytest.raises(ValueError, match="unknown object row version"):
            view.from_stored(b"o", bad)


@given(timestamps)
def test_isoformat_is_swifts(timestamp) -> None:
    # Swift's Timestamp.isoformat: UTC, microseconds always shown, no zone.
    whole, fraction = divmod(timestamp.raw, 100_000)
    swift = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{fraction * 10:06d}"
    )
    assert isoformat_raw(timestamp.raw) == isoformat(timestamp) == swift


@given(st.lists(live_rows() | st.builds(Subdir, names), max_size=8))
def test_every_format_renders_a_page_as_from_swifts_records(entries) -> None:
    records = [object_record(entry) for entry in entries]
    expected = {
        "application/json": json.dumps(records).encode("ascii"),
        "application/xml": container_xml(records, "c"),
        "text/xml": container_xml(records, "c"),
        "text/plain": to_plain(records),
    }
    for content_type, body in expected.items():
        view = view_for(content_type)
        page = [entry if isinstance(entry, Subdir) else view.from_row(entry) for entry in entries]
        assert render_listing(page, content_type, "c") == body
        stored = [
            entry
            if isinstance(entry, Subdir)
            else view.from_stored(entry.name.encode("utf-8"), encode(entry))
            for entry in entries
        ]
        assert render_listing(stored, content_type, "c") == body


def test_views_by_format() -> None:
    assert view_for("application/json") is JSON
    assert view_for("application/xml") is view_for("text/xml") is ROWS
    assert view_for("text/plain") is NAMES
