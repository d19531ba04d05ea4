"""The account server's verbs, over the broker: thin, as errors become statuses elsewhere
(accountd/http_errors.py).

Account verbs on ``/<device>/<partition>/<account>``: PUT (201 created, 202 accepted, 403
recently deleted), POST (204), DELETE (204), HEAD (204) and GET (the listing).  Container
rows on ``.../<account>/<container>``: PUT, the report a container server (or its updater)
sends after a container PUT or DELETE.
"""

from __future__ import annotations

from aiohttp import web

from service.db_requests import (
    header_count,
    header_timestamp,
    request_timestamp,
    required_timestamp,
)
from service.errors import NotFound
from service.listing_http import (
    listing_content_type,
    listing_params,
    listing_response,
    parse_query,
)
from service.names import ACCOUNT_LISTING_LIMIT, BackendPath

from .app_keys import BROKER
from .http_errors import DELETED_STATUS
from .http_headers import info_headers, metadata_from
from .info import AccountInfo
from .listing_views import render_listing, view_for


async def put_account(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    metadata = metadata_from(request.headers, timestamp)
    created = await request.app[BROKER].create(path.device, path.account, timestamp, metadata)
    return web.Response(status=201 if created else 202)


async def post_account(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    metadata = metadata_from(request.headers, timestamp)
    _live_info(request, path)  # a deleted account's 404 says so
    await request.app[BROKER].update_metadata(path.device, path.account, metadata)
    return web.Response(status=204)


async def delete_account(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    _live_info(request, path)
    await request.app[BROKER].delete(path.device, path.account, timestamp)
    return web.Response(status=204)


def _live_info(request: web.Request, path: BackendPath) -> AccountInfo:
    info = request.app[BROKER].info(path.device, path.account, include_deleted=True)
    if info.deleted:
        raise NotFound("Not Found", headers=DELETED_STATUS)
    return info


async def head_account(request: web.Request, path: BackendPath) -> web.Response:
    query = parse_query(request.rel_url.raw_query_string)
    content_type = listing_content_type(query, request.headers.get("Accept"))
    info = _live_info(request, path)
    return web.Response(
        status=204, headers=info_headers(info), content_type=content_type, charset="utf-8"
    )


async def get_account(request: web.Request, path: BackendPath) -> web.Response:
    query = parse_query(request.rel_url.raw_query_string)
    params = listing_params(
        query,
        request.headers.get("Accept"),
        max_limit=ACCOUNT_LISTING_LIMIT,
        with_path=False,  # Swift's account listing has no path parameter
    )
    info = _live_info(request, path)
    broker = request.app[BROKER]

    view = view_for(params.content_type)

    def page() -> bytes:  # up to 10,000 rows read and rendered: in a thread if LMDB's
        entries = broker.list_containers(
            path.device, path.account, view=view, **params.broker_kwargs()
        )
        return render_listing(entries, params.content_type, path.account)

    body = await broker.run_read(page)
    return listing_response(body, params.content_type, info_headers(info))


async def put_container_row(request: web.Request, path: BackendPath) -> web.Response:
    """Merge a container server's report; 204 if it reports a deleted container (Swift)."""
    headers = request.headers
    put_timestamp = required_timestamp(headers, "X-Put-Timestamp")
    delete_timestamp = required_timestamp(headers, "X-Delete-Timestamp")
    object_count = header_count(headers, "X-Object-Count")
    bytes_used = header_count(headers, "X-Bytes-Used")
    # The stats version (containerd_/info.py).  A sender that keeps none (Swift's container
    # server): its totals are as fresh as the container's own newest change.
    stats_timestamp = header_timestamp(headers, "X-Stats-Timestamp") or max(
        put_timestamp, delete_timestamp
    )
    stats_sum = header_count(headers, "X-Stats-Sum", default=0)
    override = headers.get("X-Account-Override-Deleted", "").lower() == "yes"
    assert path.container is not None
    await request.app[BROKER].put_container(
        path.device,
        path.account,
        path.container,
        put_timestamp,
        delete_timestamp,
        stats_timestamp,
        object_count,
        bytes_used,
        stats_sum=stats_sum,
        override_deleted=override,
    )
    return web.Response(status=204 if delete_timestamp > put_timestamp else 201)
