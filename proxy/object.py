"""The object controller: ``/v1/<account>/<container>/<object>``, every verb.

``handle(request, proxy, path)`` authorises (proxy/authz.py) and dispatches:

- GET, HEAD: proxy/object_get.py (a replica that has it, streamed back); a manifest object's
  segments one after another (proxy/manifest_get.py).
- PUT: proxy/object_put.py (streamed to every replica at once, a quorum answers); with
  ``X-Copy-From``, and COPY: proxy/copy.py.
- POST (metadata) and DELETE: one request per replica, the quorum's answer
  (proxy/object_write.py).
- OPTIONS: the methods allowed, and a CORS preflight answered from the container's settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import authz, infocache, manifest, manifest_get
from .backend import backend_headers
from .container import cors_preflight
from .context import Proxy
from .copy import copy, copy_from
from .object_get import answer, find_object, is_true
from .object_put import put
from .object_write import delete, object_names, object_path_for, post
from .paths import SwiftPath

ALLOWED_METHODS = ("COPY", "DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT")
Handler = Callable[[web.Request, Proxy, SwiftPath], Awaitable[web.StreamResponse]]


async def handle(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    handler = _HANDLERS.get(request.method)
    if handler is None:
        return web.Response(
            status=405, text="Method Not Allowed", headers={"Allow": ", ".join(ALLOWED_METHODS)}
        )
    return await handler(request, proxy, path)


async def get_or_head(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    account, container, obj = object_names(path)
    ring = proxy.object_ring
    part, primaries = ring.get_nodes(account, container, obj)
    headers = backend_headers(request, **manifest.GET_HEADERS)
    found = await find_object(
        proxy,
        ring,
        part,
        primaries,
        request.method,
        object_path_for(part, path),
        headers,
        newest=is_true(request.headers.get("X-Newest")),
    )
    if manifest_get.is_manifest(found) and request.query.get("multipart-manifest") != "get":
        try:
            return await manifest_get.answer(request, proxy, found, path.account)
        finally:
            found.release()
    return await answer(request, proxy, found)


async def options(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    """The allowed methods; with an ``Origin``, Swift's CORS preflight against the
    container's settings (proxy/container.py answers it the same way for containers)."""
    if not request.headers.get("Origin"):
        return web.Response(status=200, headers={"Allow": ", ".join(ALLOWED_METHODS)})
    account, container, _ = object_names(path)
    info = await infocache.get_container_info(proxy, account, container)
    return cors_preflight(request, info, ALLOWED_METHODS)


async def put_or_copy(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    if "X-Copy-From" in request.headers:
        return await copy_from(request, proxy, path)
    return await put(request, proxy, path)


_HANDLERS: dict[str, Handler] = {
    "GET": get_or_head,
    "HEAD": get_or_head,
    "PUT": put_or_copy,
    "POST": post,
    "DELETE": delete,
    "COPY": copy,
    "OPTIONS": options,
}
