"""The account server's headers and listing records: what is stored from a request and what
a HEAD or GET answers (swift/account/utils.py ``get_response_headers``,
``account_listing_response``)."""

from __future__ import annotations

from collections.abc import Mapping

from service.db_metadata import Metadata
from service.db_requests import metadata_updates
from service.listing import Subdir
from service.listing_http import Record, isoformat
from service.timestamp import Timestamp

from .info import AccountInfo
from .rows import ContainerRow


def metadata_from(headers: Mapping[str, str], timestamp: Timestamp) -> Metadata:
    return metadata_updates(headers, "account", timestamp)


def info_headers(info: AccountInfo) -> dict[str, str]:
    """A live account's HEAD and GET headers: totals, timestamps, visible metadata."""
    headers = {
        "X-Account-Container-Count": str(info.container_count),
        "X-Account-Object-Count": str(info.object_count),
        "X-Account-Bytes-Used": str(info.bytes_used),
        "X-Timestamp": info.created_at.normal,
        "X-PUT-Timestamp": info.put_timestamp.normal,
    }
    headers.update(info.visible_metadata)
    return headers


def container_record(entry: ContainerRow | Subdir) -> Record:
    """A listing entry as Swift builds it, key order included (it shows in the JSON)."""
    if isinstance(entry, Subdir):
        return {"subdir": entry.name}
    return {
        "name": entry.name,
        "count": entry.object_count,
        "bytes": entry.bytes_used,
        "last_modified": isoformat(entry.last_modified),
    }
