"""The forms a container listing's rows are read in, and the page rendered from them.

A listing page is read through one of three views, chosen by the format asked for:

- ``ROWS``: ``ObjectRow`` (xml, and every caller that wants the rows themselves);
- ``JSON``: each row already as its object in Swift's json listing (``str``);
- ``NAMES``: each row's name as UTF-8 bytes (plain: a name per line).

A view is applied where a row is read: to the stored bytes in the LMDB broker
(``from_stored``), to the ``ObjectRow`` in the memory twin (``from_row``).  ``JSON`` and
``NAMES`` build no ``ObjectRow`` and no record dict per row: a 10,000-row json page went
from ~90 to ~30 ms of CPU that way (LMDB walk included), and the plain page decodes
nothing at all.  ``stored_json`` reads the common stored row (flags 0, rows.py) in place
and hands any other row to ``rows.decode``; both end in ``row_json``'s format, which a
test checks against ``json.dumps`` of Swift's records.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import Any

from service.db_listing_views import identity, pick_view, render_page, row_name
from service.listing import RowView
from service.listing_http import (
    container_xml,
    isoformat,
    isoformat_raw,
    json_string,
    object_json,
)

from . import rows
from .http_headers import object_record, split_swift_bytes
from .rows import ObjectRow

# The head of a stored row whose flags are 0: version, flags, data timestamp, size, etag length.
_PLAIN_ROW_HEAD = struct.Struct(">BBQQH")
_ETAG_AT = _PLAIN_ROW_HEAD.size


def decode_stored(name: bytes, data: bytes) -> ObjectRow:
    return rows.decode(name.decode("utf-8"), data)


def row_json(row: ObjectRow) -> str:
    """The row as its object in Swift's json listing (``object_record``, ``json.dumps``)."""
    content_type, swift_bytes = _listed_content_type(row.content_type.encode("utf-8"))
    size = row.size if swift_bytes is None else swift_bytes
    return object_json(size, row.etag, row.name, content_type, isoformat(row.last_modified))


def stored_json(name: bytes, data: bytes) -> str:
    """``row_json(decode_stored(name, data))``, reading a flags-0 row in place: live, no
    timestamp offsets, content type and metadata as old as the data (so last_modified is
    the data timestamp).  Any other row, and a malformed one, goes through rows.decode."""
    version, flags, raw, size, etag_end = _PLAIN_ROW_HEAD.unpack_from(data)
    if flags or version != rows.VERSION:
        return row_json(decode_stored(name, data))
    etag_end += _ETAG_AT
    type_at = etag_end + 2
    type_end = type_at + ((data[etag_end] << 8) | data[etag_end + 1])
    content_type, swift_bytes = _listed_content_type(data[type_at:type_end])
    return object_json(
        size if swift_bytes is None else swift_bytes,
        data[_ETAG_AT:etag_end].decode("utf-8"),
        name.decode("utf-8"),
        content_type,
        isoformat_raw(raw),
    )


@functools.lru_cache(maxsize=1024)
def _listed_content_type(stored: bytes) -> tuple[str, int | None]:
    """A stored content type as listed: json-quoted, ``swift_bytes`` taken out (a
    container's rows share a few content types, so this is mostly a cache hit)."""
    content_type, swift_bytes = split_swift_bytes(stored.decode("utf-8"))
    return json_string(content_type), swift_bytes


def _stored_name(name: bytes, data: bytes) -> bytes:
    if data[0] != rows.VERSION:  # not a row we can read: as the other views, refuse it
        decode_stored(name, data)
    return name


ROWS: RowView[ObjectRow, ObjectRow] = RowView("rows", decode_stored, identity)
JSON: RowView[ObjectRow, str] = RowView("json", stored_json, row_json)
NAMES: RowView[ObjectRow, bytes] = RowView("names", _stored_name, row_name)


def view_for(content_type: str) -> RowView[ObjectRow, Any]:
    """The view a listing in ``content_type`` (listing_http.FORMAT_TYPES) reads."""
    return pick_view(content_type, ROWS, JSON, NAMES)


def render_listing(entries: Sequence[Any], content_type: str, container: str) -> bytes:
    """A page read through ``view_for(content_type)`` as the body Swift's container server
    sends (the xml root named after ``container``; an empty plain page is empty)."""
    return render_page(
        entries,
        content_type,
        lambda page: container_xml([object_record(entry) for entry in page], container),
    )
