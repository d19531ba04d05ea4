"""Who may do what: Swift's tempauth ``authorize``, over identities identity/ issued.

The decision (``decide``) is pure; ``authorize`` gathers what it needs — the request's
identity, and the container's ACL when one can matter — and raises the denial.

In order, as tempauth decides (swift/common/middleware/tempauth.py):

1. An account outside the reseller prefix (``AUTH_``) is not ours to grant: denied.
2. A reseller admin (group ``.reseller_admin``) owns every account of the prefix except the
   prefix itself and ``.``-accounts (``AUTH_.internal``): anything, account PUT and DELETE
   included.
3. The account's admin (a user whose groups hold the storage account name, ``AUTH_test``)
   owns it: anything but an account PUT or DELETE.
4. OPTIONS is let through (a CORS preflight carries no token; the handler answers it).
5. The container's ACL — the read ACL for container GET/HEAD and object GET/HEAD, the write
   ACL for object PUT/POST/DELETE/COPY; nothing for account requests and container writes:
   a referrer rule that matches allows object requests, and the container listing too when
   the ACL holds ``.rlistings``; then any of the user's groups in the ACL allows.
6. Otherwise denied: 401 without a token, 403 with one.

Before all of these: the proxy's own requests (``PROXY_ITSELF``) may do anything in a
``.``-account outside the reseller prefix, and nothing else.

The owner (2, 3) also sees and sets the owner-only headers (ACLs, sync keys, temp URL keys;
``SWIFT_OWNER_HEADERS``); ``is_owner`` answers that for the handlers.  Known gap: no account
ACLs (``X-Account-Access-Control``), so /info says ``"account_acls": false``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from identity.tokens import Identity

from .acl import LISTINGS, parse_acl, referrer_allowed
from .context import IDENTITY, Proxy
from .infocache import get_container_info
from .paths import SwiftPath

DEFAULT_RESELLER_PREFIX = "AUTH_"
READ_METHODS = frozenset({"GET", "HEAD"})
# Swift's default swift_owner_headers: only an owner sets them or sees them in an answer.
SWIFT_OWNER_HEADERS = frozenset(
    {
        "x-container-read",
        "x-container-write",
        "x-container-sync-key",
        "x-container-sync-to",
        "x-account-meta-temp-url-key",
        "x-account-meta-temp-url-key-2",
        "x-container-meta-temp-url-key",
        "x-container-meta-temp-url-key-2",
        "x-account-access-control",
    }
)

ALLOWED = None  # decide()'s answer when the request may go on
# The proxy's own requests to the hidden accounts it keeps (a ``.``-account outside the
# reseller prefix: the S3 bucket registry, proxy/s3/bucket_registry.py).  Compared by
# identity: a token always decodes to a new Identity, so no client can be this one.
PROXY_ITSELF = Identity(account=".proxy", user=".proxy", groups=frozenset(), expires_at=math.inf)


def is_owner(
    identity: Identity | None,
    method: str,
    path: SwiftPath,
    reseller_prefix: str = DEFAULT_RESELLER_PREFIX,
) -> bool:
    """Whether ``identity`` owns ``path.account`` for this request (steps 1-3)."""
    if identity is None or not path.account.startswith(reseller_prefix):
        return False
    name = path.account[len(reseller_prefix) :]
    if identity.is_reseller_admin and name and not name.startswith("."):
        return True
    account_write = method in ("PUT", "DELETE") and path.container is None
    return identity.is_account_admin(path.account) and not account_write


def acl_kind(method: str, path: SwiftPath) -> str | None:
    """Which container ACL can grant this request: "read", "write" or None (owner only)."""
    if path.container is None:
        return None
    if path.obj is None:
        return "read" if method in READ_METHODS else None
    return "read" if method in READ_METHODS else "write"


def decide(
    identity: Identity | None,
    method: str,
    path: SwiftPath,
    *,
    acl: str | None,
    referrer: str | None,
    reseller_prefix: str = DEFAULT_RESELLER_PREFIX,
) -> int | None:
    """``ALLOWED`` (None), or the status of the denial: 401 anonymous, 403 with a token.

    ``acl`` is the container ACL ``acl_kind`` names (None when there is none to consult)."""
    if identity is PROXY_ITSELF:
        return ALLOWED if path.account.startswith(".") else _denied(identity)
    if not path.account.startswith(reseller_prefix):
        return _denied(identity)
    if is_owner(identity, method, path, reseller_prefix) or method == "OPTIONS":
        return ALLOWED
    referrers, groups = parse_acl(acl)
    if referrer_allowed(referrer, referrers) and (path.obj is not None or LISTINGS in groups):
        return ALLOWED
    if identity is not None and _any_in(identity.groups, groups):
        return ALLOWED
    return _denied(identity)


def _any_in(user_groups: Iterable[str], acl_groups: list[str]) -> bool:
    granted = set(acl_groups)
    return any(group in granted for group in user_groups)


def _denied(identity: Identity | None) -> int:
    return 403 if identity is not None else 401


def reseller_prefix(proxy: Proxy) -> str:
    """The proxy's reseller prefix: the identity service's, whose tokens are named
    ``<reseller_prefix>tk`` (identity/tokens.py), so tokens and accounts agree."""
    prefix = getattr(proxy.config, "reseller_prefix", None)
    if prefix is not None:
        return prefix
    token_prefix = proxy.tokens.prefix
    return token_prefix[:-2] if token_prefix.endswith("tk") else DEFAULT_RESELLER_PREFIX


def request_identity(request: web.Request) -> Identity | None:
    return request.get(IDENTITY)


def request_is_owner(request: web.Request, proxy: Proxy, path: SwiftPath) -> bool:
    """``is_owner`` for this request: whether owner-only headers may be set and shown."""
    return is_owner(request_identity(request), request.method, path, reseller_prefix(proxy))


async def authorize(request: web.Request, proxy: Proxy, path: SwiftPath) -> None:
    """Let the request on, or raise ``web.HTTPUnauthorized`` / ``web.HTTPForbidden``.

    The container's ACL is looked up (proxy/infocache.py, cached) only when an ACL could
    grant what the owner rules did not; a missing container has no ACL."""
    identity = request_identity(request)
    prefix = reseller_prefix(proxy)
    method = request.method
    kind = acl_kind(method, path)
    acl = None
    owner = is_owner(identity, method, path, prefix)
    consult = not owner and method != "OPTIONS" and path.account.startswith(prefix)
    if consult and kind is not None:
        assert path.container is not None
        info = await get_container_info(proxy, path.account, path.container)
        acl = info.read_acl if kind == "read" else info.write_acl
    status = decide(
        identity,
        method,
        path,
        acl=acl,
        referrer=request.headers.get("Referer"),
        reseller_prefix=prefix,
    )
    if status is not None:
        raise denial(status, path.account)


def denial(status: int, account: str) -> web.HTTPException:
    """tempauth's denied_response: 401 names the realm, as clients expect; 403 otherwise."""
    if status == 401:
        headers: dict[str, Any] = {"Www-Authenticate": f'Swift realm="{quote(account)}"'}
        return web.HTTPUnauthorized(text="Unauthorized", headers=headers)
    return web.HTTPForbidden(text="Forbidden")
