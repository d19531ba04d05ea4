"""The container server's verbs, over the broker: thin, as errors become statuses elsewhere
(containerd_/http_errors.py).

Container verbs on ``/<device>/<partition>/<account>/<container>``: PUT (201 created, 202
accepted), POST (204), DELETE (204), HEAD (204) and GET (the listing).  Object rows on
``.../<container>/<object>``: PUT and DELETE, sent by object servers and their updater.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from service.backend_client import BACKEND_CLIENT
from service.db_requests import (
    header_count,
    header_timestamp,
    request_timestamp,
    required_text,
)
from service.errors import NotFound
from service.listing_http import (
    listing_content_type,
    listing_params,
    listing_response,
    parse_query,
)
from service.names import CONTAINER_LISTING_LIMIT, BackendPath
from service.timestamp import Timestamp
from service.update_targets import UpdateTargets, parse_update_targets

from . import account_update
from .app_keys import BROKER, RNG
from .errors import ContainerNotFound
from .http_headers import backend_headers, info_headers, metadata_from
from .info import ContainerInfo
from .listing_views import render_listing, view_for


def _names(path: BackendPath) -> tuple[str, str, str]:
    assert path.container is not None
    return path.device, path.account, path.container


async def put_container(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    metadata = metadata_from(request.headers, timestamp)
    targets = parse_update_targets(request.headers, "Account")
    created = await request.app[BROKER].create(*_names(path), timestamp, metadata)
    if await _report(request, path, targets, timestamp):
        raise NotFound("Not Found")  # Swift's answer when no account replica has the account
    return web.Response(status=201 if created else 202)


async def post_container(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    metadata = metadata_from(request.headers, timestamp)
    await request.app[BROKER].update_metadata(*_names(path), metadata)
    return web.Response(status=204)


async def delete_container(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    targets = parse_update_targets(request.headers, "Account")
    try:
        await request.app[BROKER].delete(*_names(path), timestamp)
    except ContainerNotFound:
        # Already deleted: the newer delete timestamp is recorded, and reported as Swift
        # does (never created: there is nothing to report, and info raises again).
        with contextlib.suppress(ContainerNotFound):
            await _report(request, path, targets, timestamp)
        raise
    if await _report(request, path, targets, timestamp):
        raise NotFound("Not Found")
    return web.Response(status=204)


async def _report(
    request: web.Request, path: BackendPath, targets: UpdateTargets | None, timestamp: Timestamp
) -> bool:
    """Send the container's row to its account replicas; True if all of them answered 404."""
    if targets is None:
        return False
    broker = request.app[BROKER]
    info = broker.info(*_names(path), include_deleted=True)
    return await account_update.send(
        request.app[BACKEND_CLIENT],
        broker,
        request.app[RNG],
        targets,
        path,
        account_update.report_headers(info, request.headers),
        timestamp,
    )


def _live_info(request: web.Request, path: BackendPath) -> ContainerInfo:
    info = request.app[BROKER].info(*_names(path), include_deleted=True)
    if info.deleted:
        raise NotFound("Not Found", headers=backend_headers(info))
    return info


async def head_container(request: web.Request, path: BackendPath) -> web.Response:
    query = parse_query(request.rel_url.raw_query_string)
    content_type = listing_content_type(query, request.headers.get("Accept"))
    info = _live_info(request, path)
    return web.Response(
        status=204, headers=info_headers(info), content_type=content_type, charset="utf-8"
    )


async def get_container(request: web.Request, path: BackendPath) -> web.Response:
    query = parse_query(request.rel_url.raw_query_string)
    params = listing_params(
        query,
        request.headers.get("Accept"),
        max_limit=CONTAINER_LISTING_LIMIT,
        with_path=True,
    )
    info = _live_info(request, path)
    broker = request.app[BROKER]
    names = _names(path)

    view = view_for(params.content_type)

    def page() -> bytes:  # up to 10,000 rows read and rendered: in a thread if LMDB's
        entries = broker.list_objects(*names, view=view, **params.broker_kwargs())
        return render_listing(entries, params.content_type, names[2])

    body = await broker.run_read(page)
    return listing_response(body, params.content_type, info_headers(info))


# -- object rows ---------------------------------------------------------------------------


async def put_object_row(request: web.Request, path: BackendPath) -> web.Response:
    headers = request.headers
    timestamp = request_timestamp(headers)
    size = header_count(headers, "X-Size")
    content_type = required_text(headers, "X-Content-Type")
    etag = required_text(headers, "X-Etag")
    ctype_timestamp = header_timestamp(headers, "X-Content-Type-Timestamp")
    meta_timestamp = header_timestamp(headers, "X-Meta-Timestamp")
    assert path.obj is not None
    await request.app[BROKER].put_object(
        *_names(path),
        path.obj,
        timestamp,
        size,
        content_type,
        etag,
        ctype_timestamp=ctype_timestamp,
        meta_timestamp=meta_timestamp,
    )
    return web.Response(status=201)


async def delete_object_row(request: web.Request, path: BackendPath) -> web.Response:
    timestamp = request_timestamp(request.headers)
    assert path.obj is not None
    await request.app[BROKER].delete_object(*_names(path), path.obj, timestamp)
    return web.Response(status=204)
