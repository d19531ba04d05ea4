"""S3 operations served by the Swift API's controllers, and their answers read back.

An S3 operation is one or more Swift requests (a bucket is a container of the signer's
account, an object an object of it), made by cloning the client's request with the Swift
method, path, query and headers (``call``): the clone shares the client's body stream and
the request's state (its identity, its ``S3Context``), so authorisation, quorum writes,
streaming and every check of the Swift API apply unchanged, at the cost of no extra hop.

``error_from_status`` names the S3 error for a Swift answer's status;
``translate_headers`` turns a Swift answer's headers into S3's as the answer goes out
(proxy/server.py's ``on_response_prepare``), so a GET streamed by the Swift controller goes
out with S3's headers too.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .. import account as account_controller
from .. import authz, manifest, manifest_get
from .. import container as container_controller
from .. import object as object_controller
from ..backend import BACKEND_ERRORS, backend_headers
from ..context import INTERNAL_HEADERS, Proxy
from ..copy import DESTINATION_CONDITIONS
from ..manifest import Segment
from ..object_get import Found, find_object
from ..object_write import object_names, object_path_for
from ..paths import SwiftPath
from ..streaming import BODY_FILTER, PieceSource
from . import checksums
from .context import S3, S3Context
from .errors import S3Error

# S3 request headers a Swift request carries on as they are (the rest are S3's own, or
# translated: x-amz-meta-*, Content-MD5, checksums).
PASSED_ON = (
    "Content-Type",
    "Content-Length",
    "Content-Disposition",
    "Content-Language",
    "Cache-Control",
    "Expires",
    "Expect",
    "Transfer-Encoding",
    "Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
)
AMZ_META = "x-amz-meta-"
SWIFT_META = "x-object-meta-"
CHECKSUM_SYSMETA = "X-Object-Sysmeta-S3-Checksum-"  # + the algorithm: the stored value
# Swift answer headers S3 clients have no use for (the transaction id goes out as S3's).
_DROPPED = (
    "X-Timestamp",
    "X-Trans-Id",
    "X-Openstack-Request-Id",
    "X-Put-Timestamp",
    "X-Storage-Policy",
    "X-Backend-Timestamp",
)


def swift_headers(request: web.Request, **extra: str) -> CIMultiDict[str]:
    """The client's headers that mean the same to Swift, ``x-amz-meta-*`` as object
    metadata; plus ``extra``."""
    source = request.headers
    headers: CIMultiDict[str] = CIMultiDict()
    for name in PASSED_ON:
        if name in source:
            headers[name] = source[name]
    for name, value in source.items():
        if name.lower().startswith(AMZ_META):
            headers[SWIFT_META + name[len(AMZ_META) :]] = value
    encoding = _content_encoding(source.get("Content-Encoding"))
    if encoding:
        headers["Content-Encoding"] = encoding
    headers.update(extra)
    return headers


def _content_encoding(value: str | None) -> str:
    """Content-Encoding without ``aws-chunked``: the framing is never stored."""
    if not value:
        return ""
    codings = [c.strip() for c in value.split(",")]
    return ", ".join(c for c in codings if c and c.lower() != "aws-chunked")


def swift_url(account: str, container: str | None = None, obj: str | None = None) -> str:
    path = "/v1/" + quote(account, safe="")
    if container is not None:
        path += "/" + quote(container, safe="")
    if obj is not None:
        path += "/" + quote(obj, safe="/")
    return path


async def call(
    request: web.Request,
    proxy: Proxy,
    method: str,
    path: SwiftPath,
    headers: Mapping[str, str],
    query: str = "",
    internal: Mapping[str, str] | None = None,
    body: bytes | None = None,
    destination_conditions: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """The Swift API's answer to ``method`` on ``path``, as the client's request (its body,
    its identity) would get it.  ``internal``: headers the backends get as the proxy's own
    (sysmeta), which client headers cannot set.  ``body``: a body of the proxy's own (a
    multipart manifest) instead of the client's.  ``destination_conditions``: a copy's
    If-Match/If-None-Match for its destination (proxy/copy.py)."""
    target = swift_url(path.account, path.container, path.obj) + ("?" + query if query else "")
    sub = request.clone(method=method, rel_url=URL(target, encoded=True), headers=headers)
    sub[INTERNAL_HEADERS] = dict(internal or {})
    if destination_conditions:
        sub[DESTINATION_CONDITIONS] = dict(destination_conditions)
    if body is not None:
        sub[BODY_FILTER] = _fixed_body(body)
    if path.obj is not None:
        return await object_controller.handle(sub, proxy, path)
    if path.container is not None:
        return await container_controller.handle(sub, proxy, path)
    return await account_controller.handle(sub, proxy, path)


async def head_object(
    request: web.Request, proxy: Proxy, path: SwiftPath, headers: Mapping[str, str]
) -> tuple[int, CIMultiDict[str]]:
    """A HEAD of an object for the S3 layer's own use (a copy's source): its status and
    headers, authorised as the client's HEAD, never sent to the client (the object
    controller's HEAD answer is; it writes it out itself).  A manifest's are its own, with
    its object's ETag and size in sysmeta (proxy/manifest.py)."""
    found = await _find(request, proxy, path, "HEAD", headers)
    try:
        if found.response is not None:
            return found.response.status, CIMultiDict(found.response.headers)
        return found.status, found.headers
    finally:
        found.release()


async def object_segments(
    request: web.Request, proxy: Proxy, path: SwiftPath
) -> tuple[int, list[Segment] | None]:
    """(status, the segments of the manifest at ``path``; None if it is a plain object)."""
    found = await _find(request, proxy, path, "GET", {})
    try:
        if not manifest_get.is_manifest(found):
            return found.status, None
        try:
            return found.status, await manifest_get.read_manifest(found)
        except (manifest_get.SegmentFailed, ValueError, *BACKEND_ERRORS):
            return 503, None
    finally:
        found.release()


async def _find(
    request: web.Request, proxy: Proxy, path: SwiftPath, method: str, headers: Mapping[str, str]
) -> Found:
    target = swift_url(path.account, path.container, path.obj)
    sub = request.clone(method=method, rel_url=URL(target, encoded=True), headers=headers)
    await authz.authorize(sub, proxy, path)
    account, container, obj = object_names(path)
    ring = proxy.object_ring
    part, primaries = ring.get_nodes(account, container, obj)
    asked = backend_headers(sub, **manifest.GET_HEADERS)
    return await find_object(
        proxy, ring, part, primaries, method, object_path_for(part, path), asked
    )


def _fixed_body(body: bytes) -> Callable[[PieceSource], PieceSource]:
    def body_filter(_client: PieceSource) -> PieceSource:
        pieces = [body, b""] if body else [b""]

        async def next_piece() -> bytes:
            return pieces.pop(0) if len(pieces) > 1 else pieces[0]

        return next_piece

    return body_filter


def body_of(response: web.StreamResponse) -> bytes:
    """A whole (not streamed) Swift answer's body."""
    assert isinstance(response, web.Response)
    body = response.body
    return body if isinstance(body, bytes) else b""


def error_from_status(status: int, ctx: S3Context, *, missing: str | None = None) -> S3Error:
    """The S3 error for a Swift answer's ``status``.  ``missing``: the code of a 404
    (NoSuchKey, NoSuchBucket); by default the key's if the request names one."""
    if status == 404:
        code = missing or ("NoSuchKey" if ctx.key is not None else "NoSuchBucket")
        extra = {"Key": ctx.key} if code == "NoSuchKey" and ctx.key else {}
        if code == "NoSuchBucket" and ctx.bucket:
            extra = {"BucketName": ctx.bucket}
        return S3Error(code, extra=extra)
    code = _STATUS_CODES.get(status)
    if code is None:
        code = "InternalError" if status >= 500 else "InvalidRequest"
    return S3Error(code)


_STATUS_CODES = {
    400: "InvalidArgument",
    401: "AccessDenied",
    403: "AccessDenied",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "ConditionalRequestConflict",
    411: "MissingContentLength",
    412: "PreconditionFailed",
    413: "EntityTooLarge",
    416: "InvalidRange",
    422: "BadDigest",
    499: "IncompleteBody",
    503: "ServiceUnavailable",
    507: "ServiceUnavailable",
}


def translate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An S3 request's answer headers, in place: the ETag quoted, object metadata as
    ``x-amz-meta-*``, the stored checksum when asked for, the request id as S3's."""
    ctx = request.get(S3)
    if ctx is None:
        return
    headers = response.headers
    etag = headers.get("Etag")
    if etag is not None and not etag.startswith('"'):
        headers["ETag"] = f'"{etag}"'
    for name in list(headers):
        lower = name.lower()
        if lower.startswith(SWIFT_META):
            # S3 keeps metadata names in lower case; Swift's answer title-cases them.
            headers[AMZ_META + name[len(SWIFT_META) :].lower()] = headers.pop(name)
        elif lower.startswith(CHECKSUM_SYSMETA.lower()):
            value = headers.pop(name)
            algorithm = lower[len(CHECKSUM_SYSMETA) :].upper()
            # A range's bytes are not what the whole object's checksum covers: none for a 206,
            # as S3 (botocore asks for checksums on every GET and checks what it gets).
            whole = response.status != 206
            if ctx.checksum_mode and whole and algorithm in checksums.ALGORITHMS:
                headers[checksums.header_name(algorithm)] = value
                # A multipart upload's COMPOSITE checksum ends in "-N" (base64 has no "-").
                headers["x-amz-checksum-type"] = "COMPOSITE" if "-" in value else "FULL_OBJECT"
    for name in _DROPPED:
        headers.popall(name, None)
    headers["x-amz-request-id"] = ctx.request_id
    headers["x-amz-id-2"] = base64.b64encode(ctx.request_id.encode()).decode()
    headers.update(ctx.extra_headers)


def header_items(headers: CIMultiDictProxy[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    return list(headers.items())
