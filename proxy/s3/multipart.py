"""S3 multipart uploads, kept as Swift's s3api keeps them: parts are objects of a
``<bucket>+segments`` container (S3 bucket names cannot hold ``+``, so it is never a bucket,
and ListBuckets leaves it out), and the completed object is a manifest (proxy/manifest.py).

- An upload is a marker object ``<key>/<upload id>`` in the segments container, holding the
  final object's content type and metadata; its parts are ``<key>/<upload id>/<NNNNN>``
  (five digits, so that a listing gives them in part order).  Upload ids are 32 hex digits.
- Complete checks the list (ascending numbers, each part there with its ETag, every part but
  the last at least ``s3_min_part_bytes``), then writes the manifest at the key with the
  S3 ETag ``md5(the parts' binary MD5s)-N``; parts it does not name are deleted, and so is
  the marker.  Abort deletes the marker and every part.
- Overwritten by another Complete, or deleted through S3, a manifest's parts are deleted too
  (``delete_upload_of``).  An S3 PutObject over a completed upload does not yet delete the old
  parts (docs/design/s3.md).
- ListParts costs one segments listing per page; ListMultipartUploads is
  proxy/s3/upload_listing.py's.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from ..context import Proxy
from ..manifest import MANIFEST_ETAG, MANIFEST_SIZE, Segment, encode
from ..paths import SwiftPath
from . import multipart_xml as xml
from .body import read_whole
from .context import S3Context, owner_of
from .errors import S3Error
from .object_ops import check_copy_source, copy_source, iso_time, store_body
from .swift import call, error_from_status, head_object, swift_headers
from .upload_store import (
    UPLOAD_ID_SYSMETA,
    create_upload_containers,
    delete_parts,
    delete_segment,
    marker_path,
    part_name,
    parts_prefix,
    segments_container,
    segments_listing,
    segments_path,
    upload_parts,
)

# The headers of the final object that the upload's marker keeps until Complete.
KEPT_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Cache-Control",
    "Expires",
)
MAX_COMPLETE_BODY = 4 << 20
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def _key(ctx: S3Context) -> str:
    assert ctx.key is not None
    return ctx.key


def _upload_id(query: Mapping[str, str]) -> str:
    upload_id = query.get("uploadId", "")
    if not UPLOAD_ID.fullmatch(upload_id):
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    return upload_id


def _part_number(query: Mapping[str, str]) -> int:
    text = query.get("partNumber", "")
    if not text.isdigit() or not 1 <= int(text) <= xml.MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {xml.MAX_PART_NUMBER}, inclusive",
            extra={"ArgumentName": "partNumber", "ArgumentValue": text},
        )
    return int(text)


async def _require_upload(
    request: web.Request, proxy: Proxy, ctx: S3Context, upload_id: str
) -> CIMultiDict[str]:
    """The upload's marker's headers; NoSuchUpload if it is gone (or never was)."""
    path = marker_path(ctx, _key(ctx), upload_id)
    status, headers = await head_object(request, proxy, path, {})
    if status == 404:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)
    return headers


# -- the operations ------------------------------------------------------------------------


async def create(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    """CreateMultipartUpload: the segments container (if new) and the upload's marker."""
    assert ctx.bucket is not None
    bucket_info = await call(request, proxy, "HEAD", SwiftPath(ctx.account, ctx.bucket), {})
    if not 200 <= bucket_info.status < 300:
        raise error_from_status(bucket_info.status, ctx, missing="NoSuchBucket")
    await create_upload_containers(request, proxy, ctx)
    upload_id = uuid.uuid4().hex
    headers = swift_headers(request)
    headers["Content-Length"] = "0"
    for name in ("Transfer-Encoding", "Expect", "Range"):
        headers.pop(name, None)
    if not headers.get("Content-Type"):
        headers["Content-Type"] = "application/octet-stream"
    marker = marker_path(ctx, _key(ctx), upload_id)
    response = await call(request, proxy, "PUT", marker, headers, body=b"")
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    body = xml.initiate_result(ctx.bucket, _key(ctx), upload_id)
    return web.Response(status=200, body=body, content_type="application/xml")


async def upload_part(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    upload_id = _upload_id(request.query)
    number = _part_number(request.query)
    await _require_upload(request, proxy, ctx, upload_id)
    path = segments_path(ctx, part_name(_key(ctx), upload_id, number))
    if "x-amz-copy-source" in request.headers:
        return await _upload_part_copy(request, proxy, ctx, path)
    headers = swift_headers(request)
    for name in ("Content-Type", "Content-Disposition", "Cache-Control", "Expires"):
        headers.pop(name, None)
    headers["Content-Type"] = "application/octet-stream"
    return await store_body(request, proxy, ctx, path, headers)


async def _upload_part_copy(
    request: web.Request, proxy: Proxy, ctx: S3Context, path: SwiftPath
) -> web.Response:
    """UploadPartCopy: a Swift copy into the part, with ``x-amz-copy-source-range`` as its
    Range (proxy/copy.py copies that range only, from a manifest source too)."""
    bucket, key = copy_source(request.headers["x-amz-copy-source"])
    await check_copy_source(request, proxy, ctx, SwiftPath(ctx.account, bucket, key))
    headers = CIMultiDict(
        {
            "X-Copy-From": quote(f"/{bucket}/{key}"),  # decoded by Swift's copy: quoted
            "Content-Length": "0",
            "X-Fresh-Metadata": "true",
        }
    )
    headers["Content-Type"] = "application/octet-stream"
    copy_range = request.headers.get("x-amz-copy-source-range")
    if copy_range is not None:
        match = _COPY_RANGE.fullmatch(copy_range.strip())
        if match is None or int(match[2]) < int(match[1]):
            raise S3Error(
                "InvalidArgument",
                "The x-amz-copy-source-range value must be of the form bytes=first-last "
                "where first and last are the zero-based offsets of the first and last bytes "
                "to copy",
                extra={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": copy_range},
            )
        headers["Range"] = copy_range.strip()
    response = await call(request, proxy, "PUT", path, headers)
    if response.status == 416:
        raise S3Error("InvalidRange")
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    etag = response.headers.get("Etag", "").strip('"')
    modified = iso_time(response.headers.get("Last-Modified", "Thu, 01 Jan 1970 00:00:00 GMT"))
    return web.Response(
        status=200, body=xml.copy_part_result(etag, modified), content_type="application/xml"
    )


async def complete(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    assert ctx.bucket is not None
    upload_id = _upload_id(request.query)
    requested = xml.parse_complete(await read_whole(request, MAX_COMPLETE_BODY))
    marker = await _require_upload(request, proxy, ctx, upload_id)
    uploaded = await upload_parts(request, proxy, ctx, upload_id)
    key = _key(ctx)
    segments, digests = [], []
    minimum = proxy.config.s3_min_part_bytes
    for i, wanted in enumerate(requested):
        row = uploaded.get(wanted.number)
        if row is None or row["hash"].strip('"') != wanted.etag:
            raise S3Error(
                "InvalidPart",
                extra={"UploadId": upload_id, "PartNumber": str(wanted.number)},
            )
        if i < len(requested) - 1 and row["bytes"] < minimum:
            raise S3Error(
                "EntityTooSmall",
                extra={
                    "ProposedSize": str(row["bytes"]),
                    "MinSizeAllowed": str(minimum),
                    "PartNumber": str(wanted.number),
                    "ETag": wanted.etag,
                },
            )
        container = segments_container(ctx.bucket)
        segments.append(Segment(container, row["name"], wanted.etag, row["bytes"]))
        digests.append(bytes.fromhex(wanted.etag))
    etag = f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(segments)}"
    size = sum(s.size_bytes for s in segments)
    replaced = await _upload_at(request, proxy, ctx)
    headers = CIMultiDict({name: marker[name] for name in KEPT_HEADERS if name in marker})
    for name, value in marker.items():
        if name.lower().startswith("x-object-meta-"):
            headers[name] = value
    manifest = encode(segments)
    headers["Content-Length"] = str(len(manifest))
    internal = {
        MANIFEST_SIZE: str(size),
        MANIFEST_ETAG: etag,
        UPLOAD_ID_SYSMETA: upload_id,
        "X-Backend-Container-Update-Override-Etag": etag,
        "X-Backend-Container-Update-Override-Size": str(size),
    }
    path = SwiftPath(ctx.account, ctx.bucket, key)
    response = await call(request, proxy, "PUT", path, headers, internal=internal, body=manifest)
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    # What the manifest does not name goes: parts left out, the marker, an older upload's parts.
    named = {wanted.number for wanted in requested}
    for number, row in uploaded.items():
        if number not in named:
            await delete_segment(request, proxy, segments_path(ctx, row["name"]))
    await delete_segment(request, proxy, marker_path(ctx, key, upload_id))
    if replaced is not None and replaced != upload_id:
        await delete_parts(request, proxy, ctx, replaced)
    location = f"/{ctx.bucket}/{key}"
    body = xml.complete_result(location, ctx.bucket, key, etag)
    return web.Response(status=200, body=body, content_type="application/xml")


async def _upload_at(request: web.Request, proxy: Proxy, ctx: S3Context) -> str | None:
    """The upload id of the completed upload stored at the key, if that is what it holds."""
    assert ctx.bucket is not None
    path = SwiftPath(ctx.account, ctx.bucket, _key(ctx))
    status, headers = await head_object(request, proxy, path, {})
    if not 200 <= status < 300:
        return None
    return headers.get(UPLOAD_ID_SYSMETA)


async def abort(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    upload_id = _upload_id(request.query)
    await _require_upload(request, proxy, ctx, upload_id)
    await delete_parts(request, proxy, ctx, upload_id)
    await delete_segment(request, proxy, marker_path(ctx, _key(ctx), upload_id))
    return web.Response(status=204)


async def list_parts(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    assert ctx.bucket is not None
    query = request.query
    upload_id = _upload_id(query)
    await _require_upload(request, proxy, ctx, upload_id)
    max_parts = max_items(query, "max-parts", 1000)
    marker_text = query.get("part-number-marker", "0")
    if not marker_text.isdigit():
        raise S3Error("InvalidArgument", extra={"ArgumentName": "part-number-marker"})
    after = int(marker_text)
    prefix = parts_prefix(_key(ctx), upload_id)
    listing = {"format": "json", "prefix": prefix, "limit": str(max_parts + 1)}
    if after:
        listing["marker"] = prefix + f"{after:05d}"
    rows = [
        r
        for r in await segments_listing(request, proxy, ctx, listing)
        if r["name"][len(prefix) :].isdigit()
    ]
    truncated = len(rows) > max_parts
    parts = [
        xml.Part(
            int(r["name"][len(prefix) :]), r["hash"].strip('"'), r["bytes"], r["last_modified"]
        )
        for r in rows[:max_parts]
    ]
    body = xml.list_parts_result(
        ctx.bucket, _key(ctx), upload_id, owner_of(request), after, max_parts, parts, truncated
    )
    return web.Response(status=200, body=body, content_type="application/xml")


def max_items(query: Mapping[str, str], name: str, most: int) -> int:
    """A listing's ``max-*`` parameter: at most ``most``, that if absent."""
    text = query.get(name, str(most))
    if not text.isdigit():
        raise S3Error("InvalidArgument", extra={"ArgumentName": name, "ArgumentValue": text})
    return min(int(text), most)
