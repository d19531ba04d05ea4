"""S3 bucket operations: a bucket is a container of the signer's account.

CreateBucket, DeleteBucket, HeadBucket, ListObjects v1/v2, ListObjectVersions (null versions:
buckets are unversioned), GetBucketLocation, GetBucketVersioning, GetBucketAcl (the owner's
FULL_CONTROL: what a private bucket's ACL is), ListMultipartUploads (none exist: multipart
uploads are not served yet), DeleteObjects.  Other bucket subresources answer 501.

Bucket names are global, as on S3 (proxy/s3/bucket_registry.py): BucketAlreadyOwnedByYou
when the signer's account holds the name, BucketAlreadyExists when another account does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlencode
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from aiohttp import web

from .. import infocache
from ..context import Proxy
from ..paths import SwiftPath
from . import bucket_registry, listing_xml
from .body import read_whole
from .context import S3Context, owner_of
from .errors import S3Error
from .listing_xml import NAMESPACE, private_acl
from .swift import body_of, call, error_from_status, swift_headers
from .upload_store import delete_upload_containers

MAX_DELETE_KEYS = 1000
MAX_SMALL_BODY = 1 << 20  # a CreateBucket or DeleteObjects body
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
# Bucket settings that cannot be set yet, so a GET truthfully finds none (as S3 answers a
# bucket without one; clients such as s3cmd ask).
NEVER_SET = {"policy": "NoSuchBucketPolicy", "cors": "NoSuchCORSConfiguration"}
UNSUPPORTED_SUBRESOURCES = (
    "accelerate",
    "analytics",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
)


async def handle(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    query = request.query
    for name in UNSUPPORTED_SUBRESOURCES:
        if name in query:
            raise S3Error("NotImplemented", f"The bucket '{name}' operation is not implemented.")
    for name, missing in NEVER_SET.items():
        if name in query:
            if request.method != "GET":
                raise S3Error("NotImplemented", f"Setting a bucket's {name} is not implemented.")
            await _require(request, proxy, ctx)
            raise S3Error(missing, extra={"BucketName": ctx.bucket or ""})
    method = request.method
    if method == "PUT":
        if "acl" in query or "versioning" in query:
            raise S3Error(
                "NotImplemented", "Changing a bucket's ACL or versioning is not implemented."
            )
        return await create_bucket(request, proxy, ctx)
    if method == "DELETE":
        return await delete_bucket(request, proxy, ctx)
    if method == "HEAD":
        return await head_bucket(request, proxy, ctx)
    if method == "POST" and "delete" in query:
        return await delete_objects(request, proxy, ctx)
    if method == "GET":
        return await get_bucket(request, proxy, ctx)
    raise S3Error("MethodNotAllowed", extra={"Method": method, "ResourceType": "BUCKET"})


def _path(ctx: S3Context) -> SwiftPath:
    assert ctx.bucket is not None
    return SwiftPath(ctx.account, ctx.bucket)


def check_bucket_name(name: str) -> None:
    """S3's DNS-compatible names: 3-63 characters of a-z, 0-9, '.', '-', starting and
    ending with a letter or digit, no '..', not an IP address."""
    if not _BUCKET_NAME.fullmatch(name) or ".." in name or _IP_ADDRESS.fullmatch(name):
        raise S3Error("InvalidBucketName", extra={"BucketName": name})


async def _exists(request: web.Request, proxy: Proxy, ctx: S3Context) -> bool:
    response = await call(request, proxy, "HEAD", _path(ctx), {})
    if response.status == 404:
        return False
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    return True


async def create_bucket(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    assert ctx.bucket is not None
    check_bucket_name(ctx.bucket)
    body = await read_whole(request, MAX_SMALL_BODY)
    if body.strip():
        _check_location(body, proxy.config.s3_region)
    await bucket_registry.claim(request, proxy, ctx)
    if await _exists(request, proxy, ctx):  # made before the registry, or through Swift
        raise S3Error("BucketAlreadyOwnedByYou", extra={"BucketName": ctx.bucket})
    response = await call(request, proxy, "PUT", _path(ctx), {"Content-Length": "0"})
    if not 200 <= response.status < 300:
        await bucket_registry.release(request, proxy, ctx)
        raise error_from_status(response.status, ctx)
    infocache.invalidate(proxy, ctx.account, ctx.bucket)
    return web.Response(status=200, headers={"Location": "/" + ctx.bucket})


def _check_location(body: bytes, region: str) -> None:
    """A CreateBucketConfiguration's LocationConstraint must be this region (or absent)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise S3Error("MalformedXML") from None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "LocationConstraint":
            location = (element.text or "").strip()
            if location and location != region:
                raise S3Error(
                    "InvalidLocationConstraint",
                    "The specified location-constraint is not valid",
                    extra={"LocationConstraint": location},
                )


async def delete_bucket(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    response = await call(request, proxy, "DELETE", _path(ctx), {})
    status = response.status
    if status == 409:
        raise S3Error("BucketNotEmpty", extra={"BucketName": ctx.bucket or ""})
    if not 200 <= status < 300:
        raise error_from_status(status, ctx)
    await delete_upload_containers(request, proxy, ctx)
    await bucket_registry.release(request, proxy, ctx)
    return web.Response(status=204)


async def head_bucket(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    response = await call(request, proxy, "HEAD", _path(ctx), {})
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    return web.Response(status=200, headers={"x-amz-bucket-region": proxy.config.s3_region})


async def get_bucket(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    query = request.query
    if "location" in query:
        await _require(request, proxy, ctx)
        # us-east-1 is the empty constraint, as AWS answers it.
        region = proxy.config.s3_region
        text = "" if region == "us-east-1" else escape(region)
        return _xml(f'<LocationConstraint xmlns="{NAMESPACE}">{text}</LocationConstraint>')
    if "versioning" in query:
        await _require(request, proxy, ctx)
        return _xml(f'<VersioningConfiguration xmlns="{NAMESPACE}"/>')
    if "acl" in query:
        await _require(request, proxy, ctx)
        return _xml(private_acl(owner_of(request)))
    owner = owner_of(request)
    bucket = ctx.bucket or ""
    if "versions" in query:
        versions = listing_xml.parse_list_object_versions(query)
        rows = await _listing(request, proxy, ctx, versions.listing_query())
        return _xml_bytes(listing_xml.render_list_object_versions(bucket, versions, rows, owner))
    params = listing_xml.parse_list_objects(query)
    rows = await _listing(request, proxy, ctx, params.listing_query())
    if params.version == 2:
        return _xml_bytes(listing_xml.render_list_objects_v2(bucket, params, rows, owner))
    return _xml_bytes(listing_xml.render_list_objects(bucket, params, rows, owner))


async def _require(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """The bucket exists and the signer may read it (NoSuchBucket / AccessDenied)."""
    if not await _exists(request, proxy, ctx):
        raise error_from_status(404, ctx, missing="NoSuchBucket")


async def _listing(
    request: web.Request, proxy: Proxy, ctx: S3Context, query: Mapping[str, str]
) -> list[dict]:
    response = await call(request, proxy, "GET", _path(ctx), {}, urlencode(query))
    if response.status == 204:
        return []
    if response.status != 200:
        raise error_from_status(response.status, ctx, missing="NoSuchBucket")
    return json.loads(body_of(response))


async def delete_objects(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    """DeleteObjects: up to 1000 keys, each deleted as DeleteObject would; ``Quiet`` lists
    only the failures."""
    if "Content-MD5" not in request.headers and ctx.checksum is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    body = await read_whole(request, MAX_SMALL_BODY)
    keys, quiet = _delete_request(body)
    await _require(request, proxy, ctx)
    deleted, errors = [], []
    for key in keys:
        path = SwiftPath(ctx.account, ctx.bucket, key)
        response = await call(request, proxy, "DELETE", path, swift_headers(request))
        status = response.status
        if 200 <= status < 300 or status == 404:
            deleted.append(key)
        else:
            error = error_from_status(status, ctx)
            errors.append((key, error.code, error.message))
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="{NAMESPACE}">']
    if not quiet:
        parts += [f"<Deleted><Key>{escape(key)}</Key></Deleted>" for key in deleted]
    parts += [
        f"<Error><Key>{escape(key)}</Key><Code>{code}</Code><Message>{escape(message)}</Message>"
        "</Error>"
        for key, code, message in errors
    ]
    parts.append("</DeleteResult>")
    return _xml_bytes("".join(parts).encode())


def _delete_request(body: bytes) -> tuple[list[str], bool]:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise S3Error("MalformedXML") from None
    keys, quiet = [], False
    for element in root:
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "Quiet":
            quiet = (element.text or "").strip().lower() == "true"
        elif tag == "Object":
            key = None
            for child in element:
                name = child.tag.rsplit("}", 1)[-1]
                if name == "Key":
                    key = child.text or ""
                elif name == "VersionId" and (child.text or "") not in ("", "null"):
                    raise S3Error("NotImplemented", "Deleting a version is not implemented.")
            if not key:
                raise S3Error("MalformedXML")
            keys.append(key)
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML")
    return keys, quiet


def _xml(text: str) -> web.Response:
    return _xml_bytes(('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode())


def _xml_bytes(body: bytes) -> web.Response:
    return web.Response(status=200, body=body, content_type="application/xml")
