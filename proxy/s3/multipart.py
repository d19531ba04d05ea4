"""S3 multipart uploads, kept much as Swift's s3api keeps them: parts are objects of a
``<bucket>+segments`` container, each upload in progress a marker object in ``<bucket>+uploads``
(upload_store.py names both; S3 bucket names cannot hold ``+``, so neither is ever a bucket,
and ListBuckets leaves them out), and the completed object is a manifest (proxy/manifest.py).

- The marker holds the final object's content type and metadata; the parts are
  ``<key>/<upload id>/<NNNNN>`` (five digits, so that a listing gives them in part order).
  Upload ids are 32 hex digits.
- Complete checks the list (ascending numbers, each part there with its ETag, every part but
  the last at least ``s3_min_part_bytes``), then writes the manifest at the key with the
  S3 ETag ``md5(the parts' binary MD5s)-N``; parts it does not name are deleted, and so is
  the marker.  Abort deletes the marker and every part.
- Overwritten (another Complete, PutObject, CopyObject) or deleted through S3, a manifest's
  parts are deleted too (object_ops.completed_upload_at finds them).
- ListParts costs one segments listing per page; ListMultipartUploads is
  proxy/s3/upload_listing.py's (one uploads listing per page).
- Checksums (proxy/s3/multipart_checksums.py): an upload created with
  ``x-amz-checksum-algorithm`` keeps it and its type as marker sysmeta; each part must carry
  that checksum, kept in the part's listing row (its content type's parameter) when it came
  in a header, else read with a HEAD of the part; Complete checks the listed part checksums,
  computes the object's (COMPOSITE or FULL_OBJECT) and stores it as the manifest's checksum
  sysmeta.  UploadPartCopy into such an upload is not implemented (501): the copy streams
  inside the proxy past no checksum.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from ..context import Proxy
from ..manifest import MANIFEST_ETAG, MANIFEST_SIZE, Segment, encode
from ..paths import SwiftPath
from . import multipart_checksums as mpc
from . import multipart_xml as xml
from .body import read_whole
from .checksums import MultipartChecksum, multipart_checksum
from .context import S3Context, owner_of
from .errors import S3Error
from .object_ops import (
    check_copy_source,
    completed_upload_at,
    copy_source,
    iso_time,
    put_conditions,
    store_body,
    write_condition_error,
)
from .swift import CHECKSUM_SYSMETA, call, error_from_status, head_object, swift_headers
from .upload_store import (
    UPLOAD_ID_SYSMETA,
    create_upload_containers,
    delete_marker,
    delete_parts,
    delete_segment,
    marker_headers,
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


def new_upload_id() -> str:
    """32 hex digits: the start time in microseconds, then 64 random bits, so that uploads of
    one key list in the order they began (ListMultipartUploads orders a key's uploads by id,
    AWS by initiation time) and no two collide."""
    return f"{time.time_ns() // 1000:016x}{secrets.token_hex(8)}"


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
    headers = await marker_headers(request, proxy, ctx, _key(ctx), upload_id)
    if headers is None:
        raise S3Error("NoSuchUpload", extra={"UploadId": upload_id})
    return headers


# -- the operations ------------------------------------------------------------------------


async def create(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    """CreateMultipartUpload: the segments container (if new) and the upload's marker."""
    assert ctx.bucket is not None
    upload_checksum = multipart_checksum(request.headers)  # refused before anything is written
    bucket_info = await call(request, proxy, "HEAD", SwiftPath(ctx.account, ctx.bucket), {})
    if not 200 <= bucket_info.status < 300:
        raise error_from_status(bucket_info.status, ctx, missing="NoSuchBucket")
    await create_upload_containers(request, proxy, ctx)
    upload_id = new_upload_id()
    headers = swift_headers(request)
    headers["Content-Length"] = "0"
    for name in ("Transfer-Encoding", "Expect", "Range"):
        headers.pop(name, None)
    if not headers.get("Content-Type"):
        headers["Content-Type"] = "application/octet-stream"
    marker = marker_path(ctx, _key(ctx), upload_id)
    internal = mpc.marker_sysmeta(upload_checksum)
    response = await call(request, proxy, "PUT", marker, headers, internal=internal, body=b"")
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    body = xml.initiate_result(ctx.bucket, _key(ctx), upload_id)
    return web.Response(
        status=200,
        body=body,
        content_type="application/xml",
        headers=mpc.answer_headers(upload_checksum),
    )


async def upload_part(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    upload_id = _upload_id(request.query)
    number = _part_number(request.query)
    upload_checksum = mpc.upload_of_marker(await _require_upload(request, proxy, ctx, upload_id))
    path = segments_path(ctx, part_name(_key(ctx), upload_id, number))
    if "x-amz-copy-source" in request.headers:
        if upload_checksum is not None:
            # The copy streams inside the proxy, past no checksum: the part would have none.
            raise S3Error(
                "NotImplemented",
                "UploadPartCopy into an upload with a checksum algorithm is not implemented yet.",
            )
        return await _upload_part_copy(request, proxy, ctx, path)
    mpc.check_part(upload_checksum, ctx.checksum)
    headers = swift_headers(request)
    for name in ("Content-Type", "Content-Disposition", "Cache-Control", "Expires"):
        headers.pop(name, None)
    headers["Content-Type"] = mpc.part_content_type(ctx.checksum)  # the listing row keeps it
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
    upload_checksum = mpc.upload_of_marker(marker)
    listed = (
        [mpc.listed_part_digest(upload_checksum, p.number, p.checksums) for p in requested]
        if upload_checksum is not None
        else []
    )
    uploaded = await upload_parts(request, proxy, ctx, upload_id)
    key = _key(ctx)
    segments, digests, part_checksums = [], [], []
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
        if upload_checksum is not None:
            stored = await _part_checksum(request, proxy, ctx, row, upload_checksum.algorithm)
            if stored is None or stored.digest != listed[i]:
                raise S3Error(
                    "InvalidPart",
                    extra={
                        "UploadId": upload_id,
                        "PartNumber": str(wanted.number),
                        "ETag": wanted.etag,
                    },
                )
            part_checksums.append((stored.digest, row["bytes"]))
        container = segments_container(ctx.bucket)
        segments.append(Segment(container, row["name"], wanted.etag, row["bytes"]))
        digests.append(bytes.fromhex(wanted.etag))
    etag = f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(segments)}"
    size = sum(s.size_bytes for s in segments)
    object_checksum = _object_checksum(upload_checksum, part_checksums, request.headers)
    replaced = await completed_upload_at(request, proxy, ctx)
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
    if upload_checksum is not None and object_checksum is not None:
        internal[CHECKSUM_SYSMETA + upload_checksum.algorithm.lower()] = object_checksum
    path = SwiftPath(ctx.account, ctx.bucket, key)
    headers.update(put_conditions(request))  # AWS's conditional Complete
    response = await call(request, proxy, "PUT", path, headers, internal=internal, body=manifest)
    if response.status in (409, 412):  # the upload stays, to be completed again or aborted
        raise await write_condition_error(request, proxy, ctx, path, response.status)
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    # What the manifest does not name goes: parts left out, the marker, an older upload's parts.
    named = {wanted.number for wanted in requested}
    for number, row in uploaded.items():
        if number not in named:
            await delete_segment(request, proxy, segments_path(ctx, row["name"]))
    await delete_marker(request, proxy, ctx, key, upload_id)
    if replaced is not None and replaced != upload_id:
        await delete_parts(request, proxy, ctx, replaced)
    location = f"/{ctx.bucket}/{key}"
    shown = None
    if upload_checksum is not None and object_checksum is not None:
        shown = (upload_checksum.algorithm, object_checksum, upload_checksum.type)
    body = xml.complete_result(location, ctx.bucket, key, etag, shown)
    return web.Response(status=200, body=body, content_type="application/xml")


def _object_checksum(
    upload: MultipartChecksum | None,
    parts: list[tuple[bytes, int]],
    headers: Mapping[str, str],
) -> str | None:
    """The completed object's checksum (None for an upload without an algorithm), checked
    against a whole-object checksum the Complete request sends."""
    computed = None if upload is None else mpc.object_checksum(upload, parts)
    mpc.check_object_checksum(upload, headers, computed)
    return computed


async def _part_checksum(
    request: web.Request, proxy: Proxy, ctx: S3Context, row: dict, algorithm: str
) -> mpc.PartChecksum | None:
    """A part's stored ``algorithm`` checksum: from its listing row's content type (a header
    checksum), else from its sysmeta, at the cost of a HEAD (a trailer checksum)."""
    found = mpc.part_checksum_of_row(row.get("content_type"))
    if found is not None:
        return found if found.algorithm == algorithm else None
    status, headers = await head_object(request, proxy, segments_path(ctx, row["name"]), {})
    if not 200 <= status < 300:
        return None
    return mpc.part_checksum_of_sysmeta(
        algorithm, headers.get(CHECKSUM_SYSMETA + algorithm.lower())
    )


async def abort(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    upload_id = _upload_id(request.query)
    await _require_upload(request, proxy, ctx, upload_id)
    await delete_parts(request, proxy, ctx, upload_id)
    await delete_marker(request, proxy, ctx, _key(ctx), upload_id)
    return web.Response(status=204)


async def list_parts(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    assert ctx.bucket is not None
    query = request.query
    upload_id = _upload_id(query)
    upload_checksum = mpc.upload_of_marker(await _require_upload(request, proxy, ctx, upload_id))
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
    parts = []
    for r in rows[:max_parts]:
        checksum = mpc.part_checksum_of_row(r.get("content_type"))
        if checksum is None and upload_checksum is not None:
            checksum = await _part_checksum(request, proxy, ctx, r, upload_checksum.algorithm)
        number = int(r["name"][len(prefix) :])
        shown = None if checksum is None else (checksum.algorithm, checksum.b64())
        parts.append(xml.Part(number, r["hash"].strip('"'), r["bytes"], r["last_modified"], shown))
    body = xml.list_parts_result(
        ctx.bucket,
        _key(ctx),
        upload_id,
        owner_of(request),
        after,
        max_parts,
        parts,
        truncated,
        None if upload_checksum is None else (upload_checksum.algorithm, upload_checksum.type),
    )
    return web.Response(status=200, body=body, content_type="application/xml")


def max_items(query: Mapping[str, str], name: str, most: int) -> int:
    """A listing's ``max-*`` parameter: at most ``most``, that if absent."""
    text = query.get(name, str(most))
    if not text.isdigit():
        raise S3Error("InvalidArgument", extra={"ArgumentName": name, "ArgumentValue": text})
    return min(int(text), most)
