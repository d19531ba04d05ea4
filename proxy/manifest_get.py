"""Reading a manifest object (proxy/manifest.py): its segments, streamed one after another.

``answer`` serves a GET or HEAD whose object server answered with a manifest: the manifest's
headers with the whole object's length and ETag, then (GET) the bytes of the segments the
client's Range covers, each segment fetched with a Range of its own and ``If-Match`` on the
ETag the manifest recorded, so a segment replaced since can never be served as part of the
object.  A single range is a 206; several ranges are answered with the whole object (a 200,
which RFC 9110 allows); an unsatisfiable one is a 416.  A segment that is missing or fails
mid-way cuts the client's connection (the status went out already), as Swift's SLO does.

``segment_source`` gives the same bytes as a ``BodySource`` for a copy (proxy/copy.py), so
copying a manifest object copies the object, not its list.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence

from aiohttp import web
from multidict import CIMultiDict

from service.http_semantics import content_range, resolve_range, unsatisfied_content_range

from .backend import BACKEND_ERRORS, response_headers
from .context import Proxy
from .manifest import MANIFEST_ETAG, MANIFEST_SIZE, MAX_MANIFEST_BYTES, Segment, decode, pieces
from .manifest import total_size as manifest_size
from .object_get import Found, find_object
from .object_write import object_path_for
from .paths import SwiftPath
from .streaming import BodySource

log = logging.getLogger("torus.proxy")


class SegmentFailed(Exception):
    """A segment could not be read whole (missing, changed, or its node failed)."""


def is_manifest(found: Found) -> bool:
    return found.response is not None and MANIFEST_SIZE in found.response.headers


async def read_manifest(found: Found) -> list[Segment]:
    backend = found.response
    assert backend is not None
    if backend.content_length is not None and backend.content_length > MAX_MANIFEST_BYTES:
        raise SegmentFailed(f"a manifest of {backend.content_length} bytes")
    return decode(await backend.read())


async def answer(
    request: web.Request, proxy: Proxy, found: Found, account: str
) -> web.StreamResponse:
    backend = found.response
    assert backend is not None
    headers = response_headers(backend.headers)
    for name in ("Content-Length", "Content-Range"):
        headers.popall(name, None)
    headers["Etag"] = backend.headers.get(MANIFEST_ETAG, "")
    headers["X-Static-Large-Object"] = "True"
    if request.method == "HEAD" or backend.status == 304:
        return await _head(request, backend.status, headers, int(backend.headers[MANIFEST_SIZE]))
    try:
        segments = await read_manifest(found)
    except (SegmentFailed, ValueError, *BACKEND_ERRORS) as exc:
        log.error("GET %s: its manifest cannot be read: %s", request.raw_path, exc)
        return web.Response(status=500, text="Internal Server Error")
    span = _answer_span(request, manifest_size(segments), headers)
    if isinstance(span, web.Response):
        return span
    status, start, stop = span
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = stop - start
    await response.prepare(request)
    try:
        async for chunk in segment_chunks(proxy, account, segments, start, stop, {}):
            await response.write(chunk)
    except SegmentFailed as exc:
        log.error("GET %s: cut mid-body: %s", request.raw_path, exc)
        if request.transport is not None:
            request.transport.abort()
        return response
    except ConnectionError:  # the client went away
        return response
    await response.write_eof()
    return response


def requested_span(range_header: str | None, size: int) -> tuple[int, int, int] | web.Response:
    """``(status, start, stop)`` of the bytes a Range asks of a manifest object of ``size``
    bytes (a single range: 206; none or several: the whole object, 200), or its 416."""
    ranges = resolve_range(range_header, size)
    if ranges == []:
        return web.Response(
            status=416,
            text="Requested Range Not Satisfiable",
            headers={"Content-Range": unsatisfied_content_range(size), "Accept-Ranges": "bytes"},
        )
    if ranges is not None and len(ranges) == 1:
        return 206, *ranges[0]
    return 200, 0, size


def _answer_span(
    request: web.Request, size: int, headers: CIMultiDict[str]
) -> tuple[int, int, int] | web.Response:
    """``requested_span`` of the request's Range, a 206's Content-Range set in ``headers``."""
    span = requested_span(request.headers.get("Range"), size)
    if not isinstance(span, web.Response) and span[0] == 206:
        headers["Content-Range"] = content_range(span[1], span[2], size)
    return span


async def _head(
    request: web.Request, status: int, headers: CIMultiDict[str], size: int
) -> web.StreamResponse:
    """A HEAD's answer: what a GET's would be without the body, a single range's 206 too
    (S3's HEAD with partNumber is one)."""
    length = size
    if status == 200:
        span = _answer_span(request, size, headers)
        if isinstance(span, web.Response):
            return span
        status, start, stop = span
        length = stop - start
    response = web.StreamResponse(status=status, headers=headers)
    if status != 304:
        response.content_length = length
    await response.prepare(request)
    return response


async def segment_chunks(
    proxy: Proxy,
    account: str,
    segments: Sequence[Segment],
    start: int,
    stop: int,
    headers: Mapping[str, str],
) -> AsyncIterator[bytes]:
    """Bytes ``[start, stop)`` of the object, as the segment reads give them."""
    ring = proxy.object_ring
    chunk_size = proxy.config.stream_chunk_size
    for segment, first, end in pieces(segments, start, stop):
        path = SwiftPath(account, segment.container, segment.obj)
        part, primaries = ring.get_nodes(account, segment.container, segment.obj)
        asked = {**headers, "Range": f"bytes={first}-{end - 1}", "If-Match": segment.etag}
        found = await find_object(
            proxy, ring, part, primaries, "GET", object_path_for(part, path), asked
        )
        try:
            backend = found.response
            if backend is None or backend.status not in (200, 206):
                raise SegmentFailed(f"/{segment.container}/{segment.obj}: {found.status}")
            # A 200 is the whole segment: right only when that is what was asked.
            if backend.status == 200 and (first, end) != (0, segment.size_bytes):
                raise SegmentFailed(f"/{segment.container}/{segment.obj}: no range")
            left = end - first
            while left > 0:
                try:
                    chunk = await backend.content.read(min(chunk_size, left))
                except BACKEND_ERRORS as exc:
                    raise SegmentFailed(f"/{segment.container}/{segment.obj}: {exc}") from exc
                if not chunk:
                    raise SegmentFailed(f"/{segment.container}/{segment.obj}: short")
                left -= len(chunk)
                yield chunk
        finally:
            found.release()


def segment_source(
    proxy: Proxy, account: str, segments: Sequence[Segment], start: int, stop: int
) -> BodySource:
    """``segment_chunks`` as a copy's body: lists of pieces, [] at the end."""
    chunks = segment_chunks(proxy, account, segments, start, stop, {})

    async def read() -> list[bytes]:
        try:
            return [await anext(chunks)]
        except StopAsyncIteration:
            return []

    return read
