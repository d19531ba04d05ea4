"""The S3 service operation: ListBuckets, the signer's account's containers.

The account listing also holds the containers of multipart uploads (``<bucket>+segments``,
``<bucket>+uploads``: never buckets, S3 names cannot hold ``+``).  They are left out and the
listing goes on past them until the page is full (``max-buckets`` buckets, and one more to
say whether it is truncated) or the account's end, so a page is never short of buckets that
follow it.  A bucket's upload containers sort right after it (``+`` is below every
character of a bucket name), so a page costs one listing, or two when buckets have uploads:
a listing that came short asks next for as many rows a missing bucket as it found (more
listings only when upload containers bunch up past what it saw).  At most three rows a
bucket, more only where a deleted bucket left upload containers that still hold parts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode

from aiohttp import web

from service.listing import MAX_LIMIT

from ..context import Proxy
from ..paths import SwiftPath
from . import listing_xml
from .context import S3Context, owner_of
from .errors import S3Error
from .swift import body_of, call, error_from_status
from .upload_store import is_upload_container

Fetch = Callable[[dict[str, str]], Awaitable[list[dict]]]  # a json listing of the account


async def handle(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    if request.method != "GET":
        raise S3Error(
            "MethodNotAllowed", extra={"Method": request.method, "ResourceType": "SERVICE"}
        )
    params = listing_xml.parse_list_buckets(request.query)

    async def fetch(query: dict[str, str]) -> list[dict]:
        return await _account_listing(request, proxy, ctx, query)

    rows = await bucket_rows(params, fetch)
    body = listing_xml.render_list_buckets(params, rows, owner_of(request))
    return web.Response(status=200, body=body, content_type="application/xml")


async def bucket_rows(params: listing_xml.ListBucketsParams, fetch: Fetch) -> list[dict]:
    """The account listing's rows of buckets from the page's start: ``page_size + 1`` of them
    (what render_list_buckets takes a page and its truncation from), fewer at the end."""
    wanted = params.page_size + 1
    query = params.listing_query()
    buckets: list[dict] = []
    seen = 0  # rows listed, buckets and upload containers
    while len(buckets) < wanted:
        limit = _rows_to_ask(wanted - len(buckets), seen, len(buckets))
        rows = await fetch({**query, "limit": str(limit)})
        seen += len(rows)
        buckets += [row for row in rows if not is_upload_container(row["name"])]
        if len(rows) < limit:
            break
        query["marker"] = rows[-1]["name"]
    return buckets[:wanted]


def _rows_to_ask(missing: int, seen: int, kept: int) -> int:
    """Rows to ask for ``missing`` more buckets: as many a bucket as the listing took so far
    (with its upload containers), so that a page costs one listing, or two when buckets
    have uploads, not one per shortfall."""
    rows_per_bucket = seen / kept if kept else max(seen, 1)
    return min(max(missing, math.ceil(missing * rows_per_bucket)), MAX_LIMIT)


async def _account_listing(
    request: web.Request, proxy: Proxy, ctx: S3Context, query: Mapping[str, str]
) -> list[dict]:
    response = await call(request, proxy, "GET", SwiftPath(ctx.account), {}, urlencode(query))
    if response.status == 204:
        return []
    if response.status != 200:
        raise error_from_status(response.status, ctx)
    return json.loads(body_of(response))
