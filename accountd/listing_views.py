"""The forms an account listing's rows are read in, and the page rendered from them: the
account server's side of containerd_/listing_views.py (which says why).

- ``ROWS``: ``ContainerRow`` (xml, and every caller that wants the rows themselves);
- ``JSON``: each row already as its container in Swift's json listing (``str``);
- ``NAMES``: each row's name as UTF-8 bytes (plain).

``stored_json`` reads the common stored row (no timestamp offsets) in place and hands any
other row to ``rows.decode``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from service.db_listing_views import identity, pick_view, render_page, row_name
from service.listing import RowView
from service.listing_http import (
    account_xml,
    container_json,
    isoformat,
    isoformat_raw,
)

from . import rows
from .http_headers import container_record
from .rows import ContainerRow

# The head of a stored row with no timestamp offsets (flags 0), either version: version,
# flags, put, delete and stats timestamps, object count, bytes used.
_PLAIN_ROW_HEAD = struct.Struct(">BBQQQQQ")
_VERSIONS = frozenset({1, 2})  # rows.decode reads both


def decode_stored(name: bytes, data: bytes) -> ContainerRow:
    return rows.decode(name.decode("utf-8"), data)


def row_json(row: ContainerRow) -> str:
    """The row as its container in Swift's json listing (``container_record``)."""
    return container_json(row.name, row.object_count, row.bytes_used, isoformat(row.last_modified))


def stored_json(name: bytes, data: bytes) -> str:
    """``row_json(decode_stored(name, data))``, reading a row without timestamp offsets in
    place (last_modified is the put timestamp, whose offset is never shown)."""
    if len(data) < _PLAIN_ROW_HEAD.size or data[1] or data[0] not in _VERSIONS:
        return row_json(decode_stored(name, data))
    _, _, put_raw, _, _, object_count, bytes_used = _PLAIN_ROW_HEAD.unpack_from(data)
    return container_json(name.decode("utf-8"), object_count, bytes_used, isoformat_raw(put_raw))


def _stored_name(name: bytes, data: bytes) -> bytes:
    if data[0] not in _VERSIONS:  # not a row we can read: as the other views, refuse it
        decode_stored(name, data)
    return name


ROWS: RowView[ContainerRow, ContainerRow] = RowView("rows", decode_stored, identity)
JSON: RowView[ContainerRow, str] = RowView("json", stored_json, row_json)
NAMES: RowView[ContainerRow, bytes] = RowView("names", _stored_name, row_name)


def view_for(content_type: str) -> RowView[ContainerRow, Any]:
    """The view a listing in ``content_type`` (listing_http.FORMAT_TYPES) reads."""
    return pick_view(content_type, ROWS, JSON, NAMES)


def render_listing(entries: Sequence[Any], content_type: str, account: str) -> bytes:
    """A page read through ``view_for(content_type)`` as the body Swift's account server
    sends (the xml root named after ``account``; an empty plain page is empty)."""
    return render_page(
        entries,
        content_type,
        lambda page: account_xml([container_record(entry) for entry in page], account),
    )
