"""The account controller: ``/v1/<account>``, every verb (Swift's AccountController), and
account autocreate.

- GET, HEAD (owner only): forwarded — query string and ``Accept`` as sent — to one replica
  that has the account (``backend.first_response``); the account servers render the
  listing.  A recently deleted account is 410 Gone.  A missing one, with
  ``allow_account_autocreate``, is answered as Swift does: an empty account (204, or 200
  with an empty json/xml listing; zero counts, ``X-Timestamp`` now), without creating it.
- PUT, DELETE (reseller admin only; Swift also wants ``allow_account_management``): to
  every replica, the quorum's answer.  A DELETE with a query string is 400, as in Swift.
- POST (owner): metadata to every replica; a missing account is created first
  (autocreate), then the POST is sent again.
- OPTIONS: the allowed methods (no CORS at the account level, as in Swift).

``ensure_account`` is the autocreate the other writes use (container PUT): an account that
does not exist is PUT to the account servers before the first write under it.

The request and response helpers container.py shares live at the end of this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from multidict import CIMultiDict

from ring.device import Device
from service.errors import HTTPStatusError
from service.listing_http import listing_params, listing_response, parse_query, render_listing
from service.timestamp import Timestamp

from . import authz, backend, constraints, infocache
from .acl import READ_ACL, WRITE_ACL, clean_acl
from .context import Proxy
from .paths import SwiftPath

ALLOWED_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT")
# Of the client's headers, the ones a backend read may use (format negotiation, freshness).
READ_HEADERS = frozenset({"accept", "x-newest"})
# Of backend_headers(), what every account or container request carries.
_BASE_HEADERS = frozenset({"x-trans-id", "user-agent", "x-timestamp"})

Handler = Callable[[web.Request, Proxy, SwiftPath], Awaitable[web.StreamResponse]]


async def handle(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    handler = _HANDLERS.get(request.method)
    if handler is None:
        return method_not_allowed(ALLOWED_METHODS)
    return await handler(request, proxy, path)


def _path_for(part: int, account: str, query: str = "") -> Callable[[Device], str]:
    suffix = f"?{query}" if query else ""
    return lambda node: backend.backend_path(node.device, part, account) + suffix


async def get_or_head(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    account = path.account
    ring = proxy.account_ring
    part = ring.get_part(account)
    path_for = _path_for(part, account, request.rel_url.raw_query_string)
    headers = read_headers(request)
    response = await backend.first_response(proxy, ring, part, request.method, path_for, headers)
    if response is None:
        return backend.service_unavailable()
    if response.status == 404:
        if response.headers.get("X-Account-Status", "").lower() == "deleted":
            return web.Response(status=410, text="Gone")
        if proxy.config.allow_account_autocreate:
            return empty_account(request, account)
    owner = authz.request_is_owner(request, proxy, path)
    return client_response(request, response, owner=owner)


def empty_account(request: web.Request, account: str) -> web.Response:
    """Swift's answer for an account autocreate has not made yet: as if it were there,
    empty (its ``account_listing_response`` over no containers)."""
    query = parse_query(request.rel_url.raw_query_string)
    try:
        params = listing_params(
            query,
            request.headers.get("Accept"),
            max_limit=constraints.ACCOUNT_LISTING_LIMIT,
            with_path=False,
        )
    except HTTPStatusError as exc:
        return web.Response(status=exc.status, text=exc.body, headers=exc.headers)
    now = Timestamp.now().normal
    headers = {
        "X-Account-Container-Count": "0",
        "X-Account-Object-Count": "0",
        "X-Account-Bytes-Used": "0",
        "X-Timestamp": now,
        "X-PUT-Timestamp": now,
    }
    if request.method == "HEAD":
        return web.Response(
            status=204, headers=headers, content_type=params.content_type, charset="utf-8"
        )
    body = render_listing([], params.content_type, "account", account)
    return listing_response(body, params.content_type, headers)


async def put(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    headers = write_headers(request, proxy, path, "account")
    try:
        return await _replicated(proxy, path.account, "PUT", headers)
    finally:
        infocache.invalidate(proxy, path.account)


async def post(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    headers = write_headers(request, proxy, path, "account")
    account = path.account
    try:
        response = await _replicated(proxy, account, "POST", headers)
        if response.status == 404 and proxy.config.allow_account_autocreate:
            created = await _autocreate(request, proxy, account)
            if created is not None:
                return created  # it could not be created: that answer
            response = await _replicated(proxy, account, "POST", headers)
    finally:
        infocache.invalidate(proxy, account)
    return response


async def delete(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    if request.rel_url.raw_query_string:
        # Swift refuses it, lest a client think a query (a listing's prefix, say) narrows
        # what is deleted.
        return web.Response(status=400, text="Bad request")
    try:
        return await _replicated(proxy, path.account, "DELETE", base_headers(request))
    finally:
        infocache.invalidate(proxy, path.account)


async def options(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    return web.Response(status=200, headers={"Allow": ", ".join(ALLOWED_METHODS)})


_HANDLERS: dict[str, Handler] = {
    "GET": get_or_head,
    "HEAD": get_or_head,
    "PUT": put,
    "POST": post,
    "DELETE": delete,
    "OPTIONS": options,
}


async def _replicated(
    proxy: Proxy, account: str, method: str, headers: Mapping[str, str]
) -> web.Response:
    ring = proxy.account_ring
    part, primaries = ring.get_nodes(account)
    return await backend.quorum_request(
        proxy, ring, part, method, _path_for(part, account), [dict(headers)] * len(primaries)
    )


# -- autocreate -----------------------------------------------------------------------------


async def ensure_account(request: web.Request, proxy: Proxy, account: str) -> None:
    """Make sure ``account`` exists before a write under it (the caller authorised it):
    create it if it is missing and ``allow_account_autocreate`` is set.  Raises 404 if it
    is missing (deleted, or autocreate is off), 503 if its replicas cannot say or it could
    not be created."""
    info = await infocache.get_account_info(proxy, account)
    if info.exists:
        return
    if info.status == infocache.UNAVAILABLE:
        raise web.HTTPServiceUnavailable(text="Service Unavailable")
    if info.deleted or not proxy.config.allow_account_autocreate:
        raise web.HTTPNotFound(text="Not Found")
    failed = await _autocreate(request, proxy, account)
    if failed is not None:
        raise web.HTTPServiceUnavailable(text="Service Unavailable")


async def _autocreate(request: web.Request, proxy: Proxy, account: str) -> web.Response | None:
    """PUT the account to its replicas; None if it now exists, else the quorum's answer.

    A 409 counts as created, as in Swift (another proxy got there first)."""
    try:
        response = await _replicated(proxy, account, "PUT", base_headers(request))
    finally:
        infocache.invalidate(proxy, account)
    if 200 <= response.status < 300 or response.status == 409:
        infocache.remember(proxy, account, infocache.AccountInfo(status=204))
        return None
    return response


# -- shared with container.py ---------------------------------------------------------------


def method_not_allowed(allowed: tuple[str, ...]) -> web.Response:
    return web.Response(
        status=405, text="Method Not Allowed", headers={"Allow": ", ".join(allowed)}
    )


def base_headers(request: web.Request) -> dict[str, str]:
    """X-Trans-Id, User-Agent and (for a write) the request's one X-Timestamp."""
    return {
        name: value
        for name, value in backend.backend_headers(request).items()
        if name.lower() in _BASE_HEADERS
    }


def read_headers(request: web.Request) -> dict[str, str]:
    """A backend GET/HEAD's headers: the base ones, plus Accept and X-Newest."""
    headers = base_headers(request)
    for name, value in request.headers.items():
        if name.lower() in READ_HEADERS:
            headers[name] = value
    return headers


def write_headers(
    request: web.Request,
    proxy: Proxy,
    path: SwiftPath,
    kind: str,
    pass_through: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """A PUT or POST's backend headers for ``kind`` ("account", "container"), checked: the
    base headers plus the transferred ones (``transfer_headers``); ACLs cleaned (400 if
    malformed); metadata within Swift's limits (400); owner-only headers dropped unless the
    requester owns the account."""
    incoming = request.headers
    constraints.check_metadata(incoming, kind)
    transferred = transfer_headers(incoming, kind, pass_through)
    for name in (READ_ACL, WRITE_ACL):
        if transferred.get(name):
            try:
                transferred[name] = clean_acl(name, transferred[name])
            except ValueError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
    if not authz.request_is_owner(request, proxy, path):
        for name in authz.SWIFT_OWNER_HEADERS:
            transferred.pop(name, None)
    return {**base_headers(request), **transferred}


def transfer_headers(
    incoming: Mapping[str, str], kind: str, pass_through: frozenset[str]
) -> dict[str, str]:
    """Swift's Controller.transfer_headers: ``X-<Kind>-Meta-*`` and the ``pass_through``
    headers as sent; ``X-Remove-<Kind>-Meta-<key>`` and ``X-Remove-<header>`` as empty values
    (which delete), a value sent for the same header winning.  Keys in lower case."""
    meta = f"x-{kind}-meta-"
    remove_meta = f"x-remove-{kind}-meta-"
    removable = {"x-remove-" + name[len("x-") :]: name for name in pass_through}
    out: dict[str, str] = {}
    for name in incoming:
        lower = name.lower()
        if lower.startswith(remove_meta) and len(lower) > len(remove_meta):
            out[meta + lower[len(remove_meta) :]] = ""
        elif lower in removable:
            out[removable[lower]] = ""
    for name, value in incoming.items():
        lower = name.lower()
        if (lower.startswith(meta) and len(lower) > len(meta)) or lower in pass_through:
            out[lower] = value
    return out


def client_response(
    request: web.Request, response: backend.BackendResponse, *, owner: bool
) -> web.Response:
    """A backend's answer to a GET or HEAD as the client's: framing and hop-by-hop headers
    dropped (the proxy's server strips ``X-Backend-*`` and sysmeta on the way out), and the
    owner-only headers too unless the requester owns the account."""
    headers: CIMultiDict[str] = backend.response_headers(response.headers)
    if not owner:
        for name in authz.SWIFT_OWNER_HEADERS:
            headers.popall(name, None)
    body = None if request.method == "HEAD" else response.body
    return web.Response(status=response.status, headers=headers, body=body)
