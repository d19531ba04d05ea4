"""The S3 API's front door: which requests are S3's, who signed them, and their operation.

A request is S3's when it carries S3 authentication (an ``AWS4-HMAC-SHA256`` or ``AWS``
Authorization header, or a presigned query) or when its path is not the Swift API's
(``/v1/...``, ``/info``, ``/healthcheck``; ``/auth/...`` and ``/metrics`` have routes of
their own).  So ``/bucket/key`` is S3 path-style; with a Host of ``<bucket>.<domain>`` for a
domain of ``s3_domains``, ``/key`` is S3 virtual-host-style.

Then, in order: the bucket and key from the path (and Host); the SigV4 signature checked
(proxy/s3/sigv4.py) with the secret of its access key (identity/ec2.py); the request's
identity set, as a Swift token's would be, so the Swift controllers' authorisation applies
unchanged; the body's decoding set up (aws-chunked, payload hash, checksums:
proxy/s3/body.py); and the operation (proxy/s3/service_ops.py, bucket_ops.py,
object_ops.py), which serves it through the Swift controllers (proxy/s3/swift.py).  Every
failure is an ``S3Error``, answered as S3's XML error body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from identity.ec2 import Ec2Credential
from service.errors import HTTPStatusError

from ..authz import reseller_prefix
from ..constraints import VALID_API_VERSIONS
from ..context import IDENTITY, TRANS_ID, Proxy
from . import (
    body,
    bucket_ops,
    multipart,
    object_ops,
    post_object,
    service_ops,
    sigv2,
    sigv4,
    upload_listing,
)
from .context import S3, S3_CREDENTIALS, S3Context
from .errors import S3Error
from .swift import error_from_status
from .unserved import refuse_unserved

log = logging.getLogger("torus.proxy")
Operation = Callable[[web.Request, Proxy, S3Context], Awaitable[web.StreamResponse]]
_SWIFT_ONLY = ("/info", "/healthcheck")
MAX_KEY_BYTES = 1024  # S3's limit on a key (UTF-8); Swift's object names may be longer


def is_s3(request: web.Request) -> bool:
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith(("AWS4-", "AWS ")):
        return True
    query = request.query
    if "X-Amz-Algorithm" in query or "AWSAccessKeyId" in query:
        return True
    path = request.path
    if path in _SWIFT_ONLY:
        return False
    return path.split("/", 2)[1] not in VALID_API_VERSIONS


async def handle(request: web.Request, proxy: Proxy) -> web.StreamResponse:
    raw_path, _, raw_query = request.raw_path.partition("?")
    try:
        bucket, key = _bucket_and_key(raw_path, request.host, proxy.config.s3_domains)
    except S3Error as exc:
        return error_response(request, exc, raw_path)
    resource = "/" + (bucket or "") + ("/" + key if key else "")
    ctx = S3Context(request_id=request[TRANS_ID], bucket=bucket, key=key, resource=resource)
    request[S3] = ctx
    try:
        if post_object.is_post_object(request, ctx):  # the form's policy signature is its auth
            return await post_object.handle(request, proxy, ctx)
        _authenticate(request, proxy, ctx, raw_path, raw_query)
        return await _operation(request, proxy, ctx)
    except S3Error as exc:
        return error_response(request, exc, resource)
    except web.HTTPException as exc:  # a Swift controller's refusal (authz, a bad path)
        _log_refusal(request, resource, exc.status, exc.text)
        return error_response(request, error_from_status(exc.status, ctx), resource)
    except HTTPStatusError as exc:
        _log_refusal(request, resource, exc.status, exc.body)
        return error_response(request, error_from_status(exc.status, ctx), resource)


def _log_refusal(request: web.Request, resource: str, status: int, text: str | None) -> None:
    """A refusal of the Swift layer, which the S3 error's code alone may not explain."""
    log.info("S3 %s %s: the Swift API answered %d %s", request.method, resource, status, text)


def error_response(request: web.Request, error: S3Error, resource: str) -> web.Response:
    ctx = request.get(S3)
    request_id = ctx.request_id if ctx is not None else request.get(TRANS_ID, "")
    headers = {"Content-Type": "application/xml", **error.headers}
    if request.method == "HEAD":  # a HEAD's error has no body: the status says it all
        return web.Response(status=error.status, headers=headers)
    return web.Response(status=error.status, body=error.xml(resource, request_id), headers=headers)


def _bucket_and_key(raw_path: str, host: str, domains: str) -> tuple[str | None, str | None]:
    """(bucket, key) of a path-style or virtual-host-style request; None where absent."""
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.") from None
    if "\x00" in path:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.")
    host_bucket = _host_bucket(host, domains)
    if host_bucket is not None:
        key = path[1:] if path.startswith("/") else path
        return host_bucket, key or None
    bucket, _, key = path[1:].partition("/")
    return bucket or None, key or None


def _host_bucket(host: str, domains: str) -> str | None:
    name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
    for domain in filter(None, (d.strip().lower() for d in domains.split(","))):
        if name.endswith("." + domain):
            return name[: -len(domain) - 1]
    return None


def _authenticate(
    request: web.Request, proxy: Proxy, ctx: S3Context, raw_path: str, raw_query: str
) -> None:
    """The signature checked, then ``request[IDENTITY]`` and ``ctx.account`` set, and the
    body's decoding installed.  Anonymous S3 requests are refused: public buckets are not
    served (Swift's ``.r:*`` ACLs still are, on the Swift API)."""
    headers = request.headers
    signed_v2 = sigv2.parse(raw_query, headers)
    signed: sigv4.SignedRequest | None = None
    signing_key: bytes | None = None
    if signed_v2 is not None:
        credential = _credential(request, signed_v2.access_key)
        sigv2.check_time(signed_v2, headers, time.time())
        host_bucket = _host_bucket(request.host, proxy.config.s3_domains)
        sigv2.verify(
            signed_v2, credential.secret, request.method, raw_path, raw_query, headers, host_bucket
        )
    else:
        signed = sigv4.parse(request.method, raw_path, raw_query, headers)
        if signed is None:
            raise S3Error("AccessDenied", "Anonymous access is not supported.")
        credential = _credential(request, signed.credential.access_key)
        sigv4.check_time(signed, time.time())
        sigv4.check_region(signed, proxy.config.s3_region)
        signing_key = sigv4.verify(
            signed, credential.secret, request.method, raw_path, raw_query, headers
        )
    request[IDENTITY] = credential.identity
    ctx.account = reseller_prefix(proxy) + credential.identity.account
    body.install(request, signed, signing_key)  # V2: no aws-chunked, no signing key


def _credential(request: web.Request, access_key: str) -> Ec2Credential:
    credential = request.app[S3_CREDENTIALS].get(access_key)
    if credential is None:
        raise S3Error("InvalidAccessKeyId", extra={"AWSAccessKeyId": access_key})
    return credential


async def _operation(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    refuse_unserved(request.headers)
    if ctx.bucket is None:
        return await service_ops.handle(request, proxy, ctx)
    if ctx.key is not None and len(ctx.key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", extra={"Size": str(len(ctx.key.encode()))})
    multipart_op = _multipart_operation(request, ctx)
    if multipart_op is not None:
        return await multipart_op(request, proxy, ctx)
    if ctx.key is None:
        return await bucket_ops.handle(request, proxy, ctx)
    return await object_ops.handle(request, proxy, ctx)


def _multipart_operation(request: web.Request, ctx: S3Context) -> Operation | None:
    query, method = request.query, request.method
    if ctx.key is None:
        return upload_listing.list_uploads if method == "GET" and "uploads" in query else None
    if "uploads" in query:
        return multipart.create if method == "POST" else None
    if "uploadId" not in query:
        return None
    return {
        "PUT": multipart.upload_part,
        "POST": multipart.complete,
        "GET": multipart.list_parts,
        "DELETE": multipart.abort,
    }.get(method)
