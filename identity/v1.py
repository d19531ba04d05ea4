"""Swift's v1 auth, answered as tempauth answers it: credentials in, a token and a URL out.

::

    GET /auth/v1.0                      X-Auth-User: test:tester     X-Auth-Key: testing
    GET /auth/v1/test/auth              X-Storage-User: tester       X-Storage-Pass: testing

``/auth/v1.0`` and ``/auth/auth`` take ``X-Auth-User: <account>:<user>`` (or
``X-Storage-User``) and ``X-Auth-Key`` (or ``X-Storage-Pass``).  ``/auth/v1/<account>/auth``
takes ``X-Storage-User: <user>`` or ``X-Auth-User: <account>:<user>`` with the path's account.
A 200 carries ``X-Auth-Token`` and ``X-Storage-Token`` (the same token), ``X-Storage-Url``
(``<base>/v1/<reseller_prefix><account>``, the base from ``storage_url_base`` or else the
request's scheme and Host) and ``X-Auth-Token-Expires`` (whole seconds left).

A wrong key, an unknown user or an ``X-Auth-User`` of another account than the path's is a 401
with ``Www-Authenticate: Swift realm="<account>"``.  Missing credentials, or an ``X-Auth-User``
without a colon, are a 400 — tempauth answers those with a 401 too, but they are the client's
malformed request, not a failed authentication.  Every token is new: tempauth hands the
same token back until it expires, which a self-contained token has no need of.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from .config import IdentityConfig
from .tokens import TokenCodec
from .users import UserDirectory

log = logging.getLogger("torus.identity")

TOKEN_PATHS = ("/auth/v1.0", "/auth/v1.0/", "/auth/auth", "/auth/auth/")
ACCOUNT_TOKEN_PATH = "/auth/v1/{account}/auth"


def add_v1_routes(
    app: web.Application, directory: UserDirectory, codec: TokenCodec, config: IdentityConfig
) -> None:
    """Serve the v1 auth paths on ``app`` (identity's own app, or the proxy's).

    aiohttp matches routes in the order they were added: add these before any catch-all route.
    """
    auth = _V1Auth(directory, codec, config)
    for path in TOKEN_PATHS:
        app.router.add_get(path, auth.get_token)
    app.router.add_get(ACCOUNT_TOKEN_PATH, auth.get_token)


@dataclass(frozen=True)
class _Credentials:
    account: str
    user: str
    key: str


class _BadCredentials(Exception):
    """Credentials missing or malformed: a 400."""


class _Denied(Exception):
    """Credentials that do not authenticate: a 401 naming the account tried."""

    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account


class _V1Auth:
    def __init__(self, directory: UserDirectory, codec: TokenCodec, config: IdentityConfig) -> None:
        self._directory = directory
        self._codec = codec
        self._config = config

    async def get_token(self, request: web.Request) -> web.Response:
        try:
            credentials = _credentials(request.headers, request.match_info.get("account"))
            found = self._directory.authenticate(
                f"{credentials.account}:{credentials.user}", credentials.key
            )
            if found is None:
                raise _Denied(credentials.account)
        except _BadCredentials as exc:
            return web.Response(status=400, text=f"Bad Request: {exc}\n")
        except _Denied as exc:
            log.info("token denied for account %r", exc.account)
            realm = exc.account.replace("\\", "\\\\").replace('"', '\\"')
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"Www-Authenticate": f'Swift realm="{realm}"'},
            )
        account, user, groups = found
        token, expires_at = self._codec.issue(account, user, groups)
        return web.Response(
            status=200,
            headers={
                "X-Auth-Token": token,
                "X-Storage-Token": token,
                "X-Storage-Url": self._storage_url(request, account),
                "X-Auth-Token-Expires": str(self._codec.seconds_left(expires_at)),
                "Cache-Control": "no-store",
            },
        )

    def _storage_url(self, request: web.Request, account: str) -> str:
        base = self._config.storage_url_base.rstrip("/")
        if not base:
            base = f"{request.scheme}://{request.host}"
        return f"{base}/v1/{quote(self._config.reseller_prefix + account, safe='')}"


def _credentials(headers: Mapping[str, str], path_account: str | None) -> _Credentials:
    """The request's credentials, tempauth's header variants and precedence included."""
    if path_account is None:  # /auth/v1.0, /auth/auth
        account_user = headers.get("X-Auth-User") or headers.get("X-Storage-User")
        key = headers.get("X-Auth-Key") or headers.get("X-Storage-Pass")
        if not account_user or not key:
            raise _BadCredentials("X-Auth-User and X-Auth-Key are required")
        account, user = _split_account_user(account_user)
        return _Credentials(account, user, key)
    # /auth/v1/<account>/auth: X-Storage-User is the bare user name.
    key = headers.get("X-Storage-Pass") or headers.get("X-Auth-Key")
    user = headers.get("X-Storage-User")
    if user:
        account = path_account
    else:
        account_user = headers.get("X-Auth-User")
        if not account_user:
            raise _BadCredentials("X-Storage-User (or X-Auth-User) is required")
        account, user = _split_account_user(account_user)
        if account != path_account:
            raise _Denied(path_account)
    if not key:
        raise _BadCredentials("X-Storage-Pass (or X-Auth-Key) is required")
    return _Credentials(account, user, key)


def _split_account_user(account_user: str) -> tuple[str, str]:
    account, colon, user = account_user.partition(":")
    if not colon or not account or not user:
        raise _BadCredentials("X-Auth-User must be '<account>:<user>'")
    return account, user
