"""The container controller: ``/v1/<account>/<container>``, every verb (Swift's
ContainerController).

- GET, HEAD: authorised with the container's read ACL (a listing through a referrer rule
  needs ``.rlistings``), then forwarded — query string and ``Accept`` as the client sent
  them — to one replica that has the container (``backend.first_response``): the container
  servers render listings in json, xml and plain themselves, so the proxy passes the answer
  through.  A marker past the end is their empty page.
- PUT (owner only): ACLs validated and cleaned (400), metadata limits (400), a storage
  policy other than the one there is (``Policy-0``) refused (400); the account is
  created first if it does not exist (``account.ensure_account``); then a PUT to every
  replica, each naming its share of the account's replicas in
  ``X-Account-Host/-Partition/-Device`` for the report the container server sends
  (containerd_/account_update.py).  201 created, 202 already there.
- POST (owner only): metadata and ACLs to every replica; 404 if the container is missing.
- DELETE (owner only): to every replica, naming the account replicas; 409 if not empty.
- OPTIONS: the allowed methods; with ``Origin``, Swift's CORS preflight from the
  container's ``X-Container-Meta-Access-Control-*``.

Writes go to every replica at once, the quorum's answer is the client's
(``backend.quorum_request``), and this worker's cached info of the container is dropped.
Only headers Swift's proxy transfers reach the container servers (user metadata, the ACLs,
sync and versioning settings; ``X-Remove-*`` as empty values); system metadata and
``X-Account-*`` routing headers from a client never do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from ring.device import Device

from . import authz, backend, infocache
from .account import (
    base_headers,
    client_response,
    ensure_account,
    method_not_allowed,
    read_headers,
    write_headers,
)
from .acl import READ_ACL, WRITE_ACL
from .context import Proxy
from .paths import SwiftPath

ALLOWED_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT")
# Swift's ContainerController.pass_through_headers (plus X-History-Location, which Swift's
# versioned_writes lets through): stored by the container servers as they come.
PASS_THROUGH_HEADERS = frozenset(
    {
        READ_ACL,
        WRITE_ACL,
        "x-container-sync-key",
        "x-container-sync-to",
        "x-versions-location",
        "x-history-location",
    }
)
STORAGE_POLICY = "Policy-0"  # the one policy there is (/info lists it)

Handler = Callable[[web.Request, Proxy, SwiftPath], Awaitable[web.StreamResponse]]


async def handle(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    handler = _HANDLERS.get(request.method)
    if handler is None:
        return method_not_allowed(ALLOWED_METHODS)
    return await handler(request, proxy, path)


def _names(path: SwiftPath) -> tuple[str, str]:
    assert path.container is not None
    return path.account, path.container


def _path_for(part: int, account: str, container: str, query: str = "") -> Callable[[Device], str]:
    suffix = f"?{query}" if query else ""
    return lambda node: backend.backend_path(node.device, part, account, container) + suffix


async def get_or_head(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    account, container = _names(path)
    ring = proxy.container_ring
    part = ring.get_part(account, container)
    path_for = _path_for(part, account, container, request.rel_url.raw_query_string)
    headers = read_headers(request)
    response = await backend.first_response(proxy, ring, part, request.method, path_for, headers)
    if response is None:
        return backend.service_unavailable()
    owner = authz.request_is_owner(request, proxy, path)
    answer = client_response(request, response, owner=owner)
    if 200 <= response.status < 300:
        answer.headers["X-Storage-Policy"] = STORAGE_POLICY
    return answer


async def put(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    headers = write_headers(request, proxy, path, "container", PASS_THROUGH_HEADERS)
    policy = request.headers.get("X-Storage-Policy")
    if policy is not None and policy.lower() != STORAGE_POLICY.lower():
        raise web.HTTPBadRequest(text=f"Invalid X-Storage-Policy '{policy}'")
    account, container = _names(path)
    await ensure_account(request, proxy, account)
    ring = proxy.container_ring
    part, primaries = ring.get_nodes(account, container)
    per_replica = with_account_targets(proxy, account, headers, len(primaries))
    try:
        response = await backend.quorum_request(
            proxy, ring, part, "PUT", _path_for(part, account, container), per_replica
        )
    finally:
        infocache.invalidate(proxy, account, container)
        infocache.invalidate(proxy, account)  # its container count changed
    return response


async def post(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    headers = write_headers(request, proxy, path, "container", PASS_THROUGH_HEADERS)
    account, container = _names(path)
    ring = proxy.container_ring
    part, primaries = ring.get_nodes(account, container)
    try:
        response = await backend.quorum_request(
            proxy,
            ring,
            part,
            "POST",
            _path_for(part, account, container),
            [headers] * len(primaries),
        )
    finally:
        infocache.invalidate(proxy, account, container)
    return response


async def delete(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    headers = base_headers(request)
    account, container = _names(path)
    ring = proxy.container_ring
    part, primaries = ring.get_nodes(account, container)
    per_replica = with_account_targets(proxy, account, headers, len(primaries))
    try:
        response = await backend.quorum_request(
            proxy, ring, part, "DELETE", _path_for(part, account, container), per_replica
        )
    finally:
        infocache.invalidate(proxy, account, container)
        infocache.invalidate(proxy, account)
    if response.status == 202:  # no replica had the container (Swift's reading)
        return web.Response(status=404, text="Not Found")
    return response


async def options(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    """Swift's Controller.OPTIONS: the allowed methods; a CORS preflight (``Origin``) is 401
    unless the container allows the origin and the requested method is one of ours."""
    allow = ", ".join(ALLOWED_METHODS)
    origin = request.headers.get("Origin")
    if not origin:
        return web.Response(status=200, headers={"Allow": allow})
    account, container = _names(path)
    info = await infocache.get_container_info(proxy, account, container)
    return cors_preflight(request, info, ALLOWED_METHODS)


def cors_preflight(
    request: web.Request, info: infocache.ContainerInfo, allowed_methods: tuple[str, ...]
) -> web.Response:
    allow = ", ".join(allowed_methods)
    origin = request.headers.get("Origin", "")
    cors = info.cors if info.exists else {}
    allowed_origins = cors.get("allow-origin", "").split()
    method = request.headers.get("Access-Control-Request-Method")
    if ("*" not in allowed_origins and origin not in allowed_origins) or (
        method not in allowed_methods
    ):
        return web.Response(status=401, text="Unauthorized", headers={"Allow": allow})
    headers = {"Allow": allow, "Access-Control-Allow-Methods": allow}
    if cors.get("allow-origin", "").strip() == "*":
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    if "max-age" in cors:
        headers["Access-Control-Max-Age"] = cors["max-age"]
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
        headers["Vary"] = ", ".join(
            filter(None, [headers.get("Vary"), "Access-Control-Request-Headers"])
        )
    return web.Response(status=200, headers=headers)


_HANDLERS: dict[str, Handler] = {
    "GET": get_or_head,
    "HEAD": get_or_head,
    "PUT": put,
    "POST": post,
    "DELETE": delete,
    "OPTIONS": options,
}


def with_account_targets(
    proxy: Proxy, account: str, base: Mapping[str, str], replicas: int
) -> list[dict[str, str]]:
    """``base`` once per container replica, each naming its share of the account's replicas
    (account replica ``j`` goes with container replica ``j mod replicas``, as Swift spreads
    them) in ``X-Account-Host/-Partition/-Device``."""
    apart, anodes = proxy.account_ring.get_nodes(account)
    hosts: list[list[str]] = [[] for _ in range(replicas)]
    devices: list[list[str]] = [[] for _ in range(replicas)]
    for j, node in enumerate(anodes):
        ip = f"[{node.ip}]" if ":" in node.ip else node.ip
        hosts[j % replicas].append(f"{ip}:{node.port}")
        devices[j % replicas].append(node.device)
    out = []
    for i in range(replicas):
        headers = dict(base)
        if hosts[i]:
            headers["X-Account-Host"] = ",".join(hosts[i])
            headers["X-Account-Device"] = ",".join(devices[i])
            headers["X-Account-Partition"] = str(apart)
        out.append(headers)
    return out
