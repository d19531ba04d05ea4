"""Server-side copy: ``COPY`` with ``Destination``, and ``PUT`` with ``X-Copy-From``.

Both become one thing, as in Swift's copy middleware: a GET of the source (with
``X-Newest: true``, so the newest version is the one copied) whose body streams straight into
a PUT of the destination (proxy/streaming.py) — never held whole in memory.  The request is
authorised twice: to read the source and to write the destination.

- ``Destination: <container>/<object>`` (COPY) and ``X-Copy-From: <container>/<object>``
  (PUT) are percent-decoded; a leading ``/`` is optional.  Anything else is a 412.
  ``Destination-Account`` / ``X-Copy-From-Account`` name another account.
- Conditional headers (``If-Match``, ...) apply to the source, as Swift's ``copy_get`` sends
  them; so does a single ``Range`` (the destination gets those bytes; S3's UploadPartCopy
  with ``x-amz-copy-source-range`` is one).  Conditions on the destination come only from
  the proxy itself (``DESTINATION_CONDITIONS``: S3's CopyObject with If-Match/If-None-Match),
  and make its PUT a conditional one (proxy/object_put.py).
- A manifest source (proxy/manifest.py) is copied as the object it describes: its segments'
  bytes, not its list.
- Metadata: the source's user metadata, ``X-Delete-At``, content type and the stored
  ``Content-*``/``Cache-Control``/``Expires`` headers are copied, and the request's own
  headers override them; with ``X-Fresh-Metadata: true`` only the request's are kept (the
  content type still comes from the source unless the request sets one).
- The source's ETag is sent on, so each object server checks the bytes it stored.
- The answer is the PUT's (201), plus ``X-Copied-From``, ``X-Copied-From-Last-Modified`` and
  (another account) ``X-Copied-From-Account``.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from aiohttp import web
from multidict import CIMultiDictProxy

from service.names import MAX_FILE_SIZE

from . import authz, constraints, manifest, manifest_get
from .backend import BACKEND_ERRORS, backend_headers
from .context import Proxy
from .manifest import total_size
from .object_get import Found, answer, find_object, is_true
from .object_put import guess_content_type, store_object
from .object_write import check_container, delete_at_header, object_names, object_path_for
from .paths import SwiftPath
from .streaming import BodySource

# What a copy takes from its source besides X-Object-Meta-* (Swift's copy_headers_into).
COPIED_HEADERS = frozenset(
    {
        "content-type",
        "content-encoding",
        "content-disposition",
        "content-language",
        "cache-control",
        "expires",
        "x-robots-tag",
        "x-delete-at",
    }
)
# If-Match / If-None-Match for the destination's PUT, set by the proxy's own layers (S3's
# CopyObject): a client's conditional headers are the source's.
DESTINATION_CONDITIONS = web.RequestKey("torus.destination_conditions", dict[str, str])
# Request headers that are about the source, not the destination.
_SOURCE_ONLY = (
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Range",
    "Destination",
    "Destination-Account",
    "X-Copy-From",
    "X-Copy-From-Account",
    "X-Fresh-Metadata",
    "X-Newest",
)


class SourceFailed(Exception):
    """The source's object server failed mid-body: the copy cannot complete (503)."""


async def copy(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    """COPY of ``path`` (the source) to its ``Destination``."""
    container, obj = _container_object(request, "Destination")
    account = _account(request, "Destination-Account", path.account)
    return await _copy(request, proxy, path, SwiftPath(account, container, obj))


async def copy_from(request: web.Request, proxy: Proxy, path: SwiftPath) -> web.StreamResponse:
    """PUT of ``path`` (the destination) from its ``X-Copy-From``."""
    container, obj = _container_object(request, "X-Copy-From")
    account = _account(request, "X-Copy-From-Account", path.account)
    if request.content_length:
        raise web.HTTPBadRequest(text="Copy requests require a zero byte body")
    return await _copy(request, proxy, SwiftPath(account, container, obj), path)


def _container_object(request: web.Request, header: str) -> tuple[str, str]:
    message = f"{header} header must be of the form <container name>/<object name>"
    value = unquote(request.headers.get(header, "")).lstrip("/")
    container, _, obj = value.partition("/")
    if not container or not obj:
        raise web.HTTPPreconditionFailed(text=message)
    return container, obj


def _account(request: web.Request, header: str, default: str) -> str:
    value = request.headers.get(header)
    if value is None:
        return default
    account = unquote(value)
    if not account or "/" in account:
        raise web.HTTPPreconditionFailed(text="Account name cannot contain slashes")
    return account


async def _copy(
    request: web.Request, proxy: Proxy, source: SwiftPath, dest: SwiftPath
) -> web.StreamResponse:
    await authz.authorize(request.clone(method="GET"), proxy, source)
    dest_request = request if request.method == "PUT" else request.clone(method="PUT")
    await authz.authorize(dest_request, proxy, dest)
    constraints.check_metadata(request.headers, "object")
    missing = await check_container(proxy, dest)
    if missing is not None:
        return missing
    found = await _get_source(request, proxy, source)
    try:
        if found.response is None or not 200 <= found.status < 300:
            return await answer(request, proxy, found)
        source_headers = found.response.headers
        if manifest_get.is_manifest(found):
            source_body = await _manifest_body(request, proxy, found, source.account)
            if isinstance(source_body, web.Response):
                return source_body
            body, length = source_body
        else:
            body, length = _source_body(proxy, found), found.response.content_length
        if length is not None and length > MAX_FILE_SIZE:
            return web.Response(status=413, text="Your request is too large.")
        headers = _dest_headers(request, dest, source_headers)
        if manifest_get.is_manifest(found):
            headers.pop("Etag", None)  # the list's, not the object's
        delete_at_header(request, headers)
        response = await store_object(proxy, request, dest, headers, body, length, _nothing)
    except SourceFailed:
        return web.Response(status=503, text="Service Unavailable")
    finally:
        found.release()
    if 200 <= response.status < 300:
        response.headers["X-Copied-From"] = quote(f"{source.container}/{source.obj}")
        if "Last-Modified" in source_headers:
            response.headers["X-Copied-From-Last-Modified"] = source_headers["Last-Modified"]
        if source.account != dest.account:
            response.headers["X-Copied-From-Account"] = quote(source.account)
    return response


async def _nothing() -> None:
    return None


async def _manifest_body(
    request: web.Request, proxy: Proxy, found: Found, account: str
) -> tuple[BodySource, int] | web.Response:
    """A manifest source's segments (the bytes of the request's Range) and their length, or
    the 416 of a range it does not have."""
    try:
        segments = await manifest_get.read_manifest(found)
    except (manifest_get.SegmentFailed, ValueError, *BACKEND_ERRORS) as exc:
        raise SourceFailed(str(exc)) from exc
    span = manifest_get.requested_span(request.headers.get("Range"), total_size(segments))
    if isinstance(span, web.Response):
        return span
    _status, start, stop = span
    return manifest_get.segment_source(proxy, account, segments, start, stop), stop - start


async def _get_source(request: web.Request, proxy: Proxy, source: SwiftPath) -> Found:
    account, container, obj = object_names(source)
    headers = backend_headers(request.clone(method="GET"), **manifest.GET_HEADERS)
    ring = proxy.object_ring
    part, primaries = ring.get_nodes(account, container, obj)
    return await find_object(
        proxy, ring, part, primaries, "GET", object_path_for(part, source), headers, newest=True
    )


def _dest_headers(
    request: web.Request, dest: SwiftPath, source_headers: CIMultiDictProxy[str]
) -> dict[str, str]:
    headers = backend_headers(request)
    for name in _SOURCE_ONLY:
        headers.pop(name, None)
    headers.update(request.get(DESTINATION_CONDITIONS, {}))
    fresh = is_true(request.headers.get("X-Fresh-Metadata"))
    for name, value in source_headers.items():
        lower = name.lower()
        if lower == "content-type":
            copied = True
        elif fresh:
            copied = False
        else:
            copied = lower.startswith("x-object-meta-") or lower in COPIED_HEADERS
        if copied and lower not in request.headers and name.title() not in headers:
            headers[name.title()] = value
    if is_true(headers.pop("X-Detect-Content-Type", None)):
        headers["Content-Type"] = guess_content_type(object_names(dest)[2])
    etag = source_headers.get("ETag")
    if etag and source_headers.get("Content-Range") is None:
        headers["Etag"] = etag.strip('"')
    return headers


def _source_body(proxy: Proxy, found: Found) -> BodySource:
    """The source's body in chunks of about ``stream_chunk_size`` (each read gives what the
    connection has buffered, up to 256 KiB): few, large writes to the destination's
    replicas."""
    assert found.response is not None
    content = found.response.content
    chunk_size = proxy.config.stream_chunk_size

    async def read() -> list[bytes]:
        pieces = []
        got = 0
        try:
            while got < chunk_size and (piece := await content.read(chunk_size - got)):
                pieces.append(piece)
                got += len(piece)
        except Exception as exc:  # the source's node failed or timed out mid-body
            raise SourceFailed(str(exc)) from exc
        return pieces

    return read
