"""Object PUT: checks, the headers every replica gets, the body fanned out, the quorum's answer.

Before any byte of the body is read: authorisation, Swift's PUT checks
(``constraints.check_object_put``: 411 without a length or chunked coding, 413 over 5 GiB,
400 for bad metadata or X-Delete-*), the container's existence (404), the content type
(guessed from the object name with the standard library's built-in table when the client
sends none or ``X-Detect-Content-Type: true``; no system mime files are read), and
``X-Delete-After`` turned into ``X-Delete-At``.  The body then goes to every replica at once
(proxy/streaming.py).

The answer: the status class a quorum of replicas agrees on (Swift's ``best_response``).  A
2xx quorum is a 201 with the ETag the object servers computed (unquoted, as Swift's PUT
answers it) and Last-Modified; replicas that stored different ETags are a 500, since the body
each got was not the same.  An ETag the client sent that does not match is the object
servers' 422.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from service.http_semantics import CONDITIONAL_CONFLICT_HEADER, PUT_PRECONDITIONS, http_date
from service.timestamp import Timestamp

from . import authz, constraints
from .backend import (
    BackendResponse,
    backend_headers,
    best_response_index,
    quorum_size,
    request_timestamp,
    response_headers,
    service_unavailable,
)
from .context import Proxy
from .manifest import ETAG_IS_AT, MANIFEST_ETAG
from .object_get import is_true
from .object_write import (
    check_container,
    container_update_headers,
    delete_at_header,
    object_names,
    object_path_for,
)
from .paths import SwiftPath
from .streaming import (
    LATE_SYSMETA,
    BodySource,
    BodyTooLarge,
    ClientDisconnected,
    ClientTimeout,
    EtagMismatch,
    client_body,
    put_replicas,
    send_continue,
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# The standard library's built-in table only: the same guess on every host.
_MIME_TYPES = mimetypes.MimeTypes()


async def put(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    await authz.authorize(request, proxy, path)
    constraints.check_object_put(request)
    missing = await check_container(proxy, path)
    if missing is not None:
        return missing
    headers = backend_headers(request)
    set_content_type(headers, path)
    delete_at_header(request, headers)
    length = request.content_length if not _is_chunked(request) else None

    async def ready_for_body() -> None:
        await send_continue(request)

    read = client_body(request, proxy, length)
    return await store_object(proxy, request, path, headers, read, length, ready_for_body)


def _is_chunked(request: web.Request) -> bool:
    coding = request.headers.get("Transfer-Encoding", "")
    return coding.split(",")[-1].strip().lower() == "chunked"


def guess_content_type(obj: str) -> str:
    return _MIME_TYPES.guess_type(obj, strict=False)[0] or DEFAULT_CONTENT_TYPE


def set_content_type(headers: dict[str, str], path: SwiftPath) -> None:
    """Guess the Content-Type when none (or an empty one) is sent, or when asked to."""
    detect = is_true(headers.pop("X-Detect-Content-Type", None))
    if detect or not headers.get("Content-Type"):
        headers["Content-Type"] = guess_content_type(object_names(path)[2])


async def store_object(
    proxy: Proxy,
    request: web.Request,
    path: SwiftPath,
    headers: dict[str, str],
    read: BodySource,
    length: int | None,
    ready_for_body: Callable[[], Awaitable[None]],
) -> web.StreamResponse:
    """Send the body ``read`` gives to every replica of ``path``; the client's answer."""
    account, container, obj = object_names(path)
    conditional = any(name in headers for name in PUT_PRECONDITIONS)
    if conditional:  # against the ETag a manifest's clients see, as a GET's are
        headers = {**headers, ETAG_IS_AT: MANIFEST_ETAG}
    ring = proxy.object_ring
    part, primaries = ring.get_nodes(account, container, obj)
    per_replica = container_update_headers(proxy, headers, path, len(primaries))
    try:
        responses = await put_replicas(
            proxy,
            ring,
            part,
            object_path_for(part, path),
            per_replica,
            read,
            length,
            ready_for_body,
            client_etag=headers.get("Etag"),
            late_sysmeta=request.get(LATE_SYSMETA),
            conditional=conditional,
        )
    except EtagMismatch:
        return web.Response(status=422, text="Unprocessable Entity")
    except ClientDisconnected:
        return web.Response(status=499, reason="Client Disconnect", text="Client Disconnect")
    except ClientTimeout:
        return web.Response(status=408, text="Request Timeout")
    except BodyTooLarge:
        return web.Response(status=413, text="Your request is too large.")
    return put_answer(responses, request_timestamp(request), conditional=conditional)


def put_answer(
    responses: Sequence[BackendResponse | None], timestamp: Timestamp, *, conditional: bool
) -> web.Response:
    """Swift's answer to an object PUT from the replicas' answers, with its special cases.

    A conditional PUT (If-None-Match, If-Match): one replica whose stored version fails the
    condition (412) makes it a 412, as Swift's; without a 2xx quorum, a replica where another
    conditional write of the object was in progress makes it a 409 (the client may retry).
    (The body went to no replica then: ``put_replicas`` sends a conditional PUT's body only
    once a quorum passed and none failed.)  Without a 2xx quorum, a replica holding a newer
    version (409) makes it a 202 (this write lost to a newer one, not the client's error)."""
    statuses = [503 if r is None else r.status for r in responses]
    if conditional and 412 in statuses:
        return web.Response(status=412, text="Precondition Failed")
    index = best_response_index(statuses, quorum_size(len(responses)))
    chosen = None if index is None else responses[index]
    stored = chosen is not None and 200 <= chosen.status < 300
    if not stored and conditional and any(_lease_conflict(r) for r in responses):
        return web.Response(status=409, text="A conditional write of this object is in progress")
    if not stored and 409 in statuses:
        return web.Response(status=202, text="Accepted")
    if chosen is None:
        return service_unavailable()
    if not 200 <= chosen.status < 300:
        return web.Response(
            status=chosen.status, headers=response_headers(chosen.headers), body=chosen.body
        )
    etags = {
        r.headers.get("ETag", "").strip('"')
        for r in responses
        if r is not None and 200 <= r.status < 300
    }
    if len(etags) > 1:
        return web.Response(status=500, text="Object servers returned mismatched ETags")
    headers = {
        "ETag": etags.pop(),
        "Last-Modified": http_date(timestamp),
        "Content-Type": "text/html; charset=UTF-8",
    }
    return web.Response(status=201, headers=headers)


def _lease_conflict(response: BackendResponse | None) -> bool:
    """An object server's 409 for another conditional write of the object in progress."""
    return response is not None and CONDITIONAL_CONFLICT_HEADER in response.headers
