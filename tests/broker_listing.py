"""A container's json listing as the container server answers it, straight from a broker
(containerd_/memory.py's in-memory one in unit tests): the rows the S3 listing code pages
through, without a server."""

from __future__ import annotations

import json
from collections.abc import Mapping

from containerd_.listing_views import JSON
from containerd_.memory import MemoryContainerBroker
from service.listing import Subdir


def json_listing(
    broker: MemoryContainerBroker,
    device: str,
    account: str,
    container: str,
    query: Mapping[str, str],
) -> list[dict]:
    """The rows of a ``format=json`` listing of ``container`` for ``query`` (prefix,
    delimiter, marker, limit): objects as dicts, common prefixes as ``{"subdir": ...}``."""
    page = broker.list_objects(
        device,
        account,
        container,
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        marker=query.get("marker", ""),
        limit=int(query["limit"]),
        view=JSON,
    )
    return [{"subdir": row.name} if isinstance(row, Subdir) else json.loads(row) for row in page]
