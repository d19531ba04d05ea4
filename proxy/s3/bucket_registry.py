"""S3's one bucket namespace: which account owns each bucket name.

S3 bucket names are global: CreateBucket of a name another account holds is
BucketAlreadyExists, while Swift's containers (and so Swift s3api's buckets) are per account.
The registry is a hidden account the proxy keeps for itself (``.s3``, outside the reseller
prefix, so no user's token reaches it; proxy/authz.py's ``PROXY_ITSELF``), container
``buckets``, one empty object per bucket name whose ``X-Object-Meta-Owner`` is the owning
storage account.  Claiming a name is a PUT with ``If-None-Match: *``: the object servers refuse
it where the name is held, so of two accounts racing for a name at most one succeeds.
Buckets made before the registry existed (or as containers through the Swift API) are not in
it: their names stay per account.
"""

from __future__ import annotations

from aiohttp import web

from ..authz import PROXY_ITSELF
from ..context import IDENTITY, Proxy
from ..paths import SwiftPath
from .context import S3Context
from .errors import S3Error
from .swift import call, error_from_status, head_object

REGISTRY = SwiftPath(".s3", "buckets")
OWNER = "X-Object-Meta-Owner"


def _entry(bucket: str) -> SwiftPath:
    return SwiftPath(REGISTRY.account, REGISTRY.container, bucket)


def _as_proxy(request: web.Request) -> web.Request:
    """The request as the proxy's own (its body and headers are never used)."""
    own = request.clone()
    own[IDENTITY] = PROXY_ITSELF
    return own


async def claim(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """Register ``ctx.bucket`` to the signer's account; BucketAlreadyOwnedByYou or
    BucketAlreadyExists if it is registered already."""
    assert ctx.bucket is not None
    own = _as_proxy(request)
    headers = {OWNER: ctx.account, "If-None-Match": "*", "Content-Length": "0"}
    for attempt in range(2):
        response = await call(own, proxy, "PUT", _entry(ctx.bucket), headers, body=b"")
        if 200 <= response.status < 300:
            return
        if response.status == 404 and attempt == 0:  # the registry's container is not there yet
            made = await call(own, proxy, "PUT", REGISTRY, {"Content-Length": "0"})
            if not 200 <= made.status < 300:
                raise error_from_status(made.status, ctx)
            continue
        if response.status == 412:
            status, found = await head_object(own, proxy, _entry(ctx.bucket), {})
            mine = 200 <= status < 300 and found.get(OWNER) == ctx.account
            code = "BucketAlreadyOwnedByYou" if mine else "BucketAlreadyExists"
            raise S3Error(code, extra={"BucketName": ctx.bucket})
        raise error_from_status(response.status, ctx)


async def release(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """Forget ``ctx.bucket`` (after its container went), if the signer's account holds it."""
    assert ctx.bucket is not None
    own = _as_proxy(request)
    status, found = await head_object(own, proxy, _entry(ctx.bucket), {})
    if 200 <= status < 300 and found.get(OWNER) == ctx.account:
        await call(own, proxy, "DELETE", _entry(ctx.bucket), {})
