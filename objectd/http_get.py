"""GET and HEAD of one object: preconditions, Range (one or many), and verified streaming.

The engine verifies every block before yielding any byte of it, so the first chunk is pulled
*before* the status line goes out: a body that fails at once (quarantined) is still a clean
404.  A failure after the headers went out cannot become a status any more; the connection
is then aborted, so the client sees a short body rather than bytes that failed their check.

Bodies are streamed from the engine, never with sendfile: the bytes must pass through memory
to be verified anyway, and a sendfile of the file afterwards would send bytes read a second
time, unverified.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from service.errors import PreconditionFailed, RangeNotSatisfiable
from service.http_semantics import (
    PART_END,
    closing_delimiter,
    content_range,
    evaluate_preconditions,
    multipart_content_type,
    multipart_length,
    new_boundary,
    part_header,
    resolve_range,
    unsatisfied_content_range,
)

from . import backend_headers
from .app_keys import ENGINE, RNG
from .http_headers import object_headers
from .http_write import object_path
from .metadata import ObjectMetadata
from .version_handle import OpenVersion

log = logging.getLogger("torus.objectd")
Ranges = list[tuple[int, int]]
# What a 304 repeats of the 200 it stands for (RFC 9110 §15.4.5).
_NOT_MODIFIED_HEADERS = ("ETag", "Last-Modified", "Cache-Control", "Expires", "X-Timestamp")


async def handle_get(request: web.Request) -> web.StreamResponse:
    return await _get_or_head(request, head=False)


async def handle_head(request: web.Request) -> web.StreamResponse:
    return await _get_or_head(request, head=True)


async def _get_or_head(request: web.Request, *, head: bool) -> web.StreamResponse:
    engine, path = request.app[ENGINE], object_path(request)
    assert path.container is not None and path.obj is not None
    names = (path.device, path.partition, path.account, path.container, path.obj)
    if head:
        return await _answer(request, engine.get(*names), None)
    # The body is pinned with the metadata: an overwrite landing mid-GET cannot make it a 404.
    with await engine.open_version(*names) as version:
        return await _answer(request, version.meta, version)


async def _answer(
    request: web.Request, meta: ObjectMetadata, version: OpenVersion | None
) -> web.StreamResponse:
    """The answer to a GET of ``version`` or (None) a HEAD of ``meta``."""
    headers = object_headers(meta)
    # A manifest is matched against its client's ETag, kept in sysmeta (X-Backend-Etag-Is-At).
    etag = backend_headers.conditional_etag(request.headers, meta)
    status = evaluate_preconditions(
        request.headers, method=request.method, etag=etag, last_modified=meta.meta_timestamp
    )
    if status == 304:
        kept = {k: v for k, v in headers.items() if k in _NOT_MODIFIED_HEADERS}
        return web.Response(status=304, headers=kept)
    if status == 412:
        raise PreconditionFailed("Precondition Failed")
    size = meta.size_bytes
    if version is None:
        return await _send(request, web.StreamResponse(headers=headers), size, None)
    range_header = request.headers.get("Range")
    if range_header is not None and backend_headers.ignores_range(request.headers, meta):
        range_header = None  # the proxy wants the whole manifest, whatever its client's Range
    ranges = resolve_range(range_header, size)
    if ranges == []:
        raise RangeNotSatisfiable(
            "Requested Range Not Satisfiable",
            headers={"Content-Range": unsatisfied_content_range(size), "Accept-Ranges": "bytes"},
        )
    if ranges is None:
        body = version.read()
        return await _send(request, web.StreamResponse(headers=headers), size, body)
    response = web.StreamResponse(status=206, headers=headers)
    if len(ranges) == 1:
        start, stop = ranges[0]
        response.headers["Content-Range"] = content_range(start, stop, size)
        return await _send(request, response, stop - start, version.read(start, stop))
    boundary = new_boundary(request.app[RNG])
    part_type = headers["Content-Type"]
    response.headers["Content-Type"] = multipart_content_type(boundary)
    length = multipart_length(ranges, part_type, boundary, size)
    body = _multipart(version, ranges, part_type, boundary)
    return await _send(request, response, length, body)


async def _multipart(
    version: OpenVersion, ranges: Ranges, part_type: str, boundary: str
) -> AsyncIterator[bytes]:
    """The multipart/byteranges body, laid out as Swift's multi_range_iterator does.

    Each part's header goes out with the part's first verified chunk, so the body's first
    item holds object bytes, and a failure there is still a clean error status (``_send``).
    """
    size = version.meta.size_bytes
    for start, stop in ranges:
        async with contextlib.aclosing(version.read(start, stop)) as part:
            first = await anext(part, b"")
            yield part_header(boundary, part_type, start, stop, size) + first
            async for chunk in part:
                yield chunk
        yield PART_END
    yield closing_delimiter(boundary)


async def _send(
    request: web.Request,
    response: web.StreamResponse,
    length: int,
    body: AsyncIterator[bytes] | None,
) -> web.StreamResponse:
    """Prepare ``response`` with ``length`` and stream ``body`` (None: HEAD, no body)."""
    response.content_length = length
    if body is None:
        await response.prepare(request)
        return response
    try:
        # A failure here (quarantine of the first block) is still an ordinary error status.
        first = await anext(body, b"")
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
            async for chunk in body:
                await response.write(chunk)
        except Exception as exc:
            _abort(request, exc)
            return response
    finally:
        await body.aclose()  # type: ignore[attr-defined]
    return response


def _abort(request: web.Request, exc: Exception) -> None:
    """Cut the connection mid-body: the short body is the only signal left to the client."""
    if isinstance(exc, ConnectionError):
        log.info("%s %s: client went away: %s", request.method, request.raw_path, exc)
    else:
        log.warning("%s %s: aborted mid-body: %r", request.method, request.raw_path, exc)
    if request.transport is not None:
        request.transport.abort()
