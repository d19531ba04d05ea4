"""What the account and container listing views share (containerd_/listing_views.py says why
a listing is read through views): the rows view's identity, the names view's name, the
choice of a view by content type, and a page rendered in json and plain text (xml differs:
each server hands its own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from service.listing import RowView, Subdir
from service.listing_http import json_list, subdir_json


def identity(row: Any) -> Any:
    return row


def row_name(row: Any) -> bytes:
    return row.name.encode("utf-8")


def pick_view(
    content_type: str, rows: RowView[Any, Any], json: RowView[Any, Any], names: RowView[Any, Any]
) -> RowView[Any, Any]:
    """The view a listing in ``content_type`` (listing_http.FORMAT_TYPES) reads."""
    if content_type.endswith("/json"):
        return json
    if content_type.endswith("/xml"):
        return rows
    return names


def render_page(
    entries: Sequence[Any], content_type: str, xml: Callable[[Sequence[Any]], bytes]
) -> bytes:
    """A page read through ``pick_view(content_type, ...)`` as the body Swift sends; ``xml``
    renders an xml page (an empty plain page is empty)."""
    if content_type.endswith("/json"):
        return json_list(
            subdir_json(entry.name) if type(entry) is Subdir else entry for entry in entries
        )
    if content_type.endswith("/xml"):
        return xml(entries)
    return b"".join(
        (entry.name.encode("utf-8") if type(entry) is Subdir else entry) + b"\n"
        for entry in entries
    )
