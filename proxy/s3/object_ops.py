"""S3 object operations: PutObject, CopyObject, GetObject, HeadObject, DeleteObject.

Each is the Swift object request of the same meaning (proxy/s3/swift.py): metadata as
``X-Object-Meta-*``, Content-MD5 as the ETag the object servers verify, a checksum the client
sent in a header kept as object sysmeta (returned with ``x-amz-checksum-mode: ENABLED``);
ranges and conditional GET/HEAD are Swift's own, whose rules match S3's.

Multipart uploads are proxy/s3/multipart.py's.  A checksum sent as a trailer is stored too,
through the checksum footer's late sysmeta (proxy/s3/body.py).  Not yet (501 NotImplemented,
listed in docs/design/s3.md): setting ACLs, tagging, retention.  Conditional PUTs
(``If-None-Match: *``, ``If-Match``) are the object servers' (proxy/object_put.py).
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from aiohttp import web
from multidict import CIMultiDict

from service.http_semantics import PUT_PRECONDITIONS, http_date

from .. import infocache
from ..context import Proxy
from ..paths import SwiftPath
from . import checksums
from .context import S3Context, owner_of
from .errors import S3Error
from .listing_xml import NAMESPACE, private_acl
from .multipart_checksums import part_answer_headers
from .multipart_xml import MAX_PART_NUMBER
from .swift import (
    CHECKSUM_SYSMETA,
    call,
    error_from_status,
    head_object,
    object_segments,
    swift_headers,
)
from .upload_store import UPLOAD_ID_SYSMETA, delete_parts, segments_container

# Query parameters that select another operation on an object: not served yet.
UNSUPPORTED_SUBRESOURCES = (
    "attributes",
    "legal-hold",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
)
# response-* query parameters of a GET: the answer's header they set (presigned GETs use them).
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
COPY_SOURCE_CONDITIONS = {
    "x-amz-copy-source-if-match": "If-Match",
    "x-amz-copy-source-if-none-match": "If-None-Match",
    "x-amz-copy-source-if-modified-since": "If-Modified-Since",
    "x-amz-copy-source-if-unmodified-since": "If-Unmodified-Since",
}


async def handle(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    query = request.query
    for name in UNSUPPORTED_SUBRESOURCES:
        if name in query:
            raise S3Error("NotImplemented", f"The '{name}' operation is not implemented yet.")
    if "acl" in query:
        return await object_acl(request, proxy, ctx)
    method = request.method
    if method == "PUT":
        if "x-amz-copy-source" in request.headers:
            return await copy_object(request, proxy, ctx)
        return await put_object(request, proxy, ctx)
    if method in ("GET", "HEAD"):
        return await get_object(request, proxy, ctx)
    if method == "DELETE":
        return await delete_object(request, proxy, ctx)
    raise S3Error("MethodNotAllowed", extra={"Method": method, "ResourceType": "OBJECT"})


def _path(ctx: S3Context) -> SwiftPath:
    assert ctx.bucket is not None and ctx.key is not None
    return SwiftPath(ctx.account, ctx.bucket, ctx.key)


async def _missing(proxy: Proxy, ctx: S3Context) -> S3Error:
    """A 404's error: NoSuchBucket if the bucket is not there, else NoSuchKey."""
    assert ctx.bucket is not None
    info = await infocache.get_container_info(proxy, ctx.account, ctx.bucket)
    return error_from_status(404, ctx, missing="NoSuchKey" if info.exists else "NoSuchBucket")


async def put_object(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    """PutObject; over a completed multipart upload, that upload's parts go."""
    replaced = await completed_upload_at(request, proxy, ctx)
    answer = await store_body(request, proxy, ctx, _path(ctx), swift_headers(request))
    if replaced is not None:
        await delete_parts(request, proxy, ctx, replaced)
    return answer


async def completed_upload_at(request: web.Request, proxy: Proxy, ctx: S3Context) -> str | None:
    """The id of the completed multipart upload the key holds, if it does: its parts are to
    go once it is overwritten or deleted.  A HEAD of the key, spared where the bucket never
    had a multipart upload (its segments container, cached, is not there)."""
    assert ctx.bucket is not None
    uploads = await infocache.get_container_info(proxy, ctx.account, segments_container(ctx.bucket))
    if not uploads.exists:
        return None
    status, headers = await head_object(request, proxy, _path(ctx), {})
    return headers.get(UPLOAD_ID_SYSMETA) if 200 <= status < 300 else None


async def store_body(
    request: web.Request,
    proxy: Proxy,
    ctx: S3Context,
    path: SwiftPath,
    headers: CIMultiDict[str],
) -> web.Response:
    """The request's body stored at ``path`` (an object, or a multipart upload's part) with
    ``headers``: Content-MD5 as the ETag the object servers check, a checksum in a header kept
    as sysmeta; S3's answer (200, the ETag, the checksum)."""
    if ctx.body_length is None and "Transfer-Encoding" not in headers:
        raise S3Error("MissingContentLength")
    if ctx.body_length is not None:
        headers["Content-Length"] = str(ctx.body_length)
        headers.pop("Transfer-Encoding", None)
    put_conditions(request)
    content_md5 = request.headers.get("Content-MD5")
    md5_hex = checksums.content_md5_hex(content_md5)
    if md5_hex is not None:
        headers["Etag"] = md5_hex
    requested = ctx.checksum
    sysmeta = {}
    if requested is not None and requested.expected_b64 is not None:
        sysmeta[CHECKSUM_SYSMETA + requested.algorithm.lower()] = requested.expected_b64
    response = await call(request, proxy, "PUT", path, headers, internal=sysmeta)
    status = response.status
    if status == 422 and content_md5:
        raise checksums.content_md5_mismatch(content_md5)
    if status == 404:
        raise await _missing(proxy, ctx)
    if status in (409, 412):
        raise await write_condition_error(request, proxy, ctx, path, status)
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)
    answer = web.Response(status=200, headers={"ETag": f'"{response.headers["Etag"]}"'})
    if requested is not None and ctx.checksum_value is not None:
        answer.headers[checksums.header_name(requested.algorithm)] = ctx.checksum_value
    return answer


def put_conditions(request: web.Request) -> dict[str, str]:
    """A write's own conditions (PutObject, CopyObject's destination): If-Match, and
    If-None-Match, which S3 takes only as ``*``."""
    headers = request.headers
    conditions = {n: headers[n] for n in PUT_PRECONDITIONS if n in headers}
    if conditions.get("If-None-Match", "*").strip() != "*":
        raise S3Error("NotImplemented", "If-None-Match on a write takes only '*'.")
    return conditions


async def write_condition_error(
    request: web.Request, proxy: Proxy, ctx: S3Context, path: SwiftPath, status: int
) -> S3Error:
    """A conditional PUT refused: 409, another conditional write of the key was in progress
    (the object servers lease the key from the check to the commit: objectd/write_leases.py);
    412, the condition failed, which for If-Match on a key with no object AWS calls
    NoSuchKey (told apart by a HEAD, on this failure only)."""
    if status == 409:
        return S3Error("ConditionalRequestConflict")
    if "If-Match" in request.headers:
        head_status, _ = await head_object(request, proxy, path, {})
        if head_status == 404:
            return await _missing(proxy, ctx)
        return S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
    return S3Error("PreconditionFailed", extra={"Condition": "If-None-Match"})


async def get_object(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    query = request.query
    headers = swift_headers(request)
    ctx.checksum_mode = request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    if "partNumber" in query:
        await _part_range(request, proxy, ctx, query["partNumber"], headers)
    for name, header in RESPONSE_OVERRIDES.items():
        if name in query:
            ctx.extra_headers[header] = query[name]
    response = await call(request, proxy, request.method, _path(ctx), headers)
    status = response.status
    if status < 300 or status == 304:
        return response  # streamed already (a GET): proxy/s3/swift.py translates its headers
    if status == 404:
        raise await _missing(proxy, ctx)
    raise error_from_status(status, ctx)


async def _part_range(
    request: web.Request, proxy: Proxy, ctx: S3Context, text: str, headers: CIMultiDict[str]
) -> None:
    """``partNumber`` on a GET/HEAD: the part's bytes as a Range (a plain object is one part),
    and ``x-amz-mp-parts-count`` for a multipart object."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument", extra={"ArgumentName": "partNumber", "ArgumentValue": text}
        )
    if "Range" in headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query")
    number = int(text)
    status, segments = await object_segments(request, proxy, _path(ctx))
    if status == 404:
        raise await _missing(proxy, ctx)
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)
    if segments is None:
        if number != 1:
            raise S3Error("InvalidPartNumber")
        return
    if number > len(segments):
        raise S3Error("InvalidPartNumber")
    start = sum(s.size_bytes for s in segments[: number - 1])
    size = segments[number - 1].size_bytes
    if size:
        headers["Range"] = f"bytes={start}-{start + size - 1}"
    ctx.extra_headers["x-amz-mp-parts-count"] = str(len(segments))
    if ctx.checksum_mode:
        # The part's own checksum (the whole object's is not for a part: swift.py drops it
        # from a 206), at the cost of one HEAD of the part.
        part = segments[number - 1]
        part_path = SwiftPath(ctx.account, part.container, part.obj)
        part_status, part_headers = await head_object(request, proxy, part_path, {})
        if 200 <= part_status < 300:
            ctx.extra_headers.update(part_answer_headers(part_headers))


async def object_acl(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    """GetObjectAcl: objects are private, the owner's FULL_CONTROL (as GetBucketAcl);
    setting an ACL is not served."""
    if request.method != "GET":
        raise S3Error("NotImplemented", "Setting an object's ACL is not implemented.")
    status, _ = await head_object(request, proxy, _path(ctx), {})
    if status == 404:
        raise await _missing(proxy, ctx)
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n' + private_acl(owner_of(request))
    return web.Response(status=200, body=body.encode(), content_type="application/xml")


async def delete_object(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    """DeleteObject; a completed multipart upload's parts go with it."""
    upload_id = await completed_upload_at(request, proxy, ctx)
    response = await call(request, proxy, "DELETE", _path(ctx), swift_headers(request))
    if upload_id and 200 <= response.status < 300:
        await delete_parts(request, proxy, ctx, upload_id)
    status = response.status
    if status == 404:
        error = await _missing(proxy, ctx)
        if error.code == "NoSuchBucket":
            raise error
    elif not 200 <= status < 300:
        raise error_from_status(status, ctx)
    return web.Response(status=204)  # S3 deletes a missing key without complaint


async def copy_object(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    source_bucket, source_key = copy_source(request.headers["x-amz-copy-source"])
    source = SwiftPath(ctx.account, source_bucket, source_key)
    replace = _metadata_directive(request)
    storage_class = "x-amz-storage-class" in request.headers  # a change of class only (rclone)
    if source == _path(ctx) and not replace and not storage_class:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect "
            "location or encryption attributes.",
        )
    await check_copy_source(request, proxy, ctx, source)
    conditions = put_conditions(request)
    headers = swift_headers(request) if replace else {}
    for name in ("Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"):
        headers.pop(name, None)
    # Quoted: Swift's X-Copy-From is percent-decoded (a key holding "%41" stays itself).
    headers["X-Copy-From"] = quote(f"/{source_bucket}/{source_key}")
    headers["Content-Length"] = "0"
    if replace:
        headers["X-Fresh-Metadata"] = "true"
    replaced = await completed_upload_at(request, proxy, ctx)
    response = await call(
        request, proxy, "PUT", _path(ctx), headers, destination_conditions=conditions
    )
    status = response.status
    if status == 404:
        raise await _missing(proxy, ctx)
    if status in (409, 412) and conditions:
        raise await write_condition_error(request, proxy, ctx, _path(ctx), status)
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)
    if replaced is not None:  # a manifest's copy is a plain object (proxy/copy.py), onto itself too
        await delete_parts(request, proxy, ctx, replaced)
    etag = response.headers.get("Etag", "")
    modified = response.headers.get("Last-Modified") or http_date(0)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<CopyObjectResult xmlns="{NAMESPACE}">'
        f"<LastModified>{iso_time(modified)}</LastModified>"
        f"<ETag>&quot;{escape(etag.strip(chr(34)))}&quot;</ETag>"
        "</CopyObjectResult>"
    )
    return web.Response(status=200, body=body.encode(), content_type="application/xml")


def copy_source(value: str) -> tuple[str, str]:
    """``x-amz-copy-source``: ``[/]bucket/key[?versionId=...]``, URL-encoded."""
    path, _, version = value.partition("?")
    if version and version not in ("versionId=null", "versionId="):
        raise S3Error("NotImplemented", "Copying a version other than null is not implemented.")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            extra={"ArgumentName": "x-amz-copy-source"},
        )
    return bucket, key


def _metadata_directive(request: web.Request) -> bool:
    """True for REPLACE, False for COPY (the default); InvalidArgument otherwise."""
    value = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if value not in ("COPY", "REPLACE"):
        raise S3Error(
            "InvalidArgument",
            "Unknown metadata directive.",
            extra={"ArgumentName": "x-amz-metadata-directive", "ArgumentValue": value},
        )
    return value == "REPLACE"


async def check_copy_source(
    request: web.Request, proxy: Proxy, ctx: S3Context, source: SwiftPath
) -> None:
    """The source exists and meets the x-amz-copy-source-if-* conditions (412 otherwise):
    checked on a HEAD of the source before the copy (Swift's copy reads it again)."""
    headers = {
        swift: request.headers[amz]
        for amz, swift in COPY_SOURCE_CONDITIONS.items()
        if amz in request.headers
    }
    status, _ = await head_object(request, proxy, source, headers)
    if status == 404:
        info = await infocache.get_container_info(proxy, ctx.account, source.container or "")
        raise S3Error("NoSuchKey" if info.exists else "NoSuchBucket")
    if status in (304, 412):
        raise S3Error("PreconditionFailed")
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)


def iso_time(http_time: str) -> str:
    return parsedate_to_datetime(http_time).strftime("%Y-%m-%dT%H:%M:%S.000Z")
