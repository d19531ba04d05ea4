"""The S3 service operation: ListBuckets, the signer's account's containers."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from ..context import Proxy
from ..paths import SwiftPath
from . import listing_xml
from .context import S3Context, owner_of
from .errors import S3Error
from .swift import body_of, call, error_from_status
from .upload_store import is_upload_container


async def handle(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    if request.method != "GET":
        raise S3Error(
            "MethodNotAllowed", extra={"Method": request.method, "ResourceType": "SERVICE"}
        )
    params = listing_xml.parse_list_buckets(request.query)
    query = urlencode(params.listing_query())
    response = await call(request, proxy, "GET", SwiftPath(ctx.account), {}, query)
    if response.status == 204:
        rows = []
    elif response.status == 200:
        rows = json.loads(body_of(response))
    else:
        raise error_from_status(response.status, ctx)
    # Multipart uploads' containers are no buckets (S3 names cannot hold their "+").
    rows = [row for row in rows if not is_upload_container(row["name"])]
    body = listing_xml.render_list_buckets(params, rows, owner_of(request))
    return web.Response(status=200, body=body, content_type="application/xml")
