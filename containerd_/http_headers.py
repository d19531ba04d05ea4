"""The container server's headers and listing records: what is stored from a request and
what a HEAD or GET answers (swift/container/server.py ``gen_resp_headers``,
``update_object_record``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from service.db_metadata import Metadata
from service.db_requests import metadata_updates
from service.http_semantics import http_date
from service.listing import Subdir
from service.listing_http import Record, isoformat
from service.timestamp import Timestamp

from .info import ContainerInfo
from .rows import ObjectRow

# Stored besides X-Container-Meta-* and X-Container-Sysmeta-*: ACLs, container sync, and
# versioning (Swift keeps X-Versions-Location only with allow_versions; it is always here).
SAVED_HEADERS = frozenset(
    {
        "x-container-read",
        "x-container-write",
        "x-container-sync-key",
        "x-container-sync-to",
        "x-versions-location",
        "x-history-location",
    }
)

# Swift's parse_content_type: "; key=value" parameters, value a token or a quoted string.
_TOKEN = r'[^()<>@,;:\\"/\[\]?={}\x00-\x20\x7f]+'
_PARAM = re.compile(rf'(?:\s*;\s*({_TOKEN})\s*(?:=\s*({_TOKEN}|"(?:[^"\\]|\\.)*"))?)')


def metadata_from(headers: Mapping[str, str], timestamp: Timestamp) -> Metadata:
    return metadata_updates(headers, "container", timestamp, SAVED_HEADERS)


def backend_headers(info: ContainerInfo) -> dict[str, str]:
    """What even a deleted container's 404 carries: the proxy compares replicas by them."""
    return {
        "X-Backend-Timestamp": info.created_at.internal,
        "X-Backend-PUT-Timestamp": info.put_timestamp.internal,
        "X-Backend-DELETE-Timestamp": info.delete_timestamp.internal,
        "X-Backend-Status-Changed-At": info.status_changed_at.internal,
    }


def info_headers(info: ContainerInfo) -> dict[str, str]:
    """A live container's HEAD and GET headers: totals, timestamps, visible metadata."""
    headers = backend_headers(info)
    headers.update(
        {
            "X-Container-Object-Count": str(info.object_count),
            "X-Container-Bytes-Used": str(info.bytes_used),
            "X-Timestamp": info.created_at.normal,
            "X-PUT-Timestamp": info.put_timestamp.normal,
            "Last-Modified": http_date(info.put_timestamp),
        }
    )
    headers.update(info.visible_metadata)
    return headers


def object_record(entry: ObjectRow | Subdir) -> Record:
    """A listing entry as Swift builds it, key order included (it shows in the JSON)."""
    if isinstance(entry, Subdir):
        return {"subdir": entry.name}
    content_type, swift_bytes = split_swift_bytes(entry.content_type)
    return {
        "bytes": entry.size if swift_bytes is None else swift_bytes,
        "hash": entry.etag,
        "name": entry.name,
        "content_type": content_type,
        "last_modified": isoformat(entry.last_modified),
    }


def split_swift_bytes(content_type: str) -> tuple[str, int | None]:
    """Swift's extract_swift_bytes: a manifest's row carries the size of what it stands for
    as a ``swift_bytes=N`` content-type parameter, listed as its bytes and not as a parameter.
    Like Swift, the other parameters are listed as ``;key=value``."""
    if ";" not in content_type:
        return content_type, None
    base, _, params = content_type.partition(";")
    swift_bytes = None
    for key, value in _PARAM.findall(";" + params):
        if key.strip() != "swift_bytes":
            base += f";{key.strip()}={value.strip()}"
        elif value.strip().isascii() and value.strip().isdigit():
            swift_bytes = int(value.strip())
    return base, swift_bytes
