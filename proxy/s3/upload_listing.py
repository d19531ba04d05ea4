"""ListMultipartUploads: the uploads in progress in a bucket, by key then upload id.

It scans the segments container (markers and parts) until it has a page of markers.
"""

from __future__ import annotations

from aiohttp import web

from ..context import Proxy
from . import multipart_xml as xml
from .context import S3Context, owner_of
from .multipart import UPLOAD_ID, max_items
from .upload_store import LISTING_PAGE, marker_name, segments_listing


async def list_uploads(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    """ListMultipartUploads: the markers of the segments container, by key then upload id."""
    assert ctx.bucket is not None
    query = dict(request.query)
    max_uploads = max_items(query, "max-uploads", 1000)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    key_marker, id_marker = query.get("key-marker", ""), query.get("upload-id-marker", "")
    uploads: list[xml.Upload] = []
    prefixes: list[str] = []
    truncated = False
    start = marker_name(key_marker, id_marker) if key_marker and id_marker else key_marker
    if key_marker and not id_marker:
        start = key_marker + "/\U0010ffff"  # past every upload of that key
    while True:
        listing = {"format": "json", "limit": str(LISTING_PAGE)}
        if prefix:
            listing["prefix"] = prefix
        if start:
            listing["marker"] = start
        rows = await segments_listing(request, proxy, ctx, listing)
        for row in rows:
            key, _, upload_id = row["name"].rpartition("/")
            if not UPLOAD_ID.fullmatch(upload_id):
                continue  # a part
            if delimiter and delimiter in key[len(prefix) :]:
                common = key[: key.index(delimiter, len(prefix)) + len(delimiter)]
                if common not in prefixes:
                    if len(uploads) + len(prefixes) >= max_uploads:
                        truncated = True
                        break
                    prefixes.append(common)
                continue
            if len(uploads) + len(prefixes) >= max_uploads:
                truncated = True
                break
            uploads.append(xml.Upload(key, upload_id, row["last_modified"]))
        if truncated or len(rows) < LISTING_PAGE:
            break
        start = rows[-1]["name"]
    body = xml.list_uploads_result(
        ctx.bucket, owner_of(request), query, max_uploads, uploads, prefixes, truncated
    )
    return web.Response(status=200, body=body, content_type="application/xml")
