"""The proxy server: the Swift API over the storage servers.

``build_app(config, cluster, identity)`` is the process's composition root; ``torus serve
proxy`` runs it in each worker (service/runner.py: several workers share the port with
``SO_REUSEPORT``).  The rings are loaded here, once (a bad ring stops start-up); the
``Proxy`` with its backend connection pool is made in a cleanup context, on the worker's loop.

The pipeline, in order:

1. ``_transaction`` middleware: a transaction id (Swift's ``tx<21 hex>-<10 hex time>``,
   plus ``-<X-Trans-Id-Extra>``) for every request, sent to every backend, answered in
   ``X-Trans-Id`` and ``X-Openstack-Request-Id`` on every response, logged on the access line;
   errors raised below become statuses here (a bug is a logged 500).
2. Routes: ``/auth/v1.0`` and ``/auth/v1/<account>/auth`` (identity/v1.py, tempauth's v1 auth
   on the proxy's port); ``/metrics``, which service/runner.py adds to every server (so, like
   ``/healthcheck``, it never reaches ``_authenticate``; docs/design/metrics.md); then
   everything else through ``_dispatch``: ``/healthcheck`` (200 ``OK``), ``/info``
   (proxy/discovery.py), ``/v1/<account>[/<container>[/<object>]]``, and the S3 API
   (proxy/s3/frontend.py: S3-signed requests, and paths that are not the Swift API's).
3. ``_dispatch`` parses the path (proxy/paths.py: the raw path, so ``%2F`` stays part of an
   object's name), validates ``X-Auth-Token`` (or ``X-Storage-Token``) locally: a token that
   fails is a 401 at once, as tempauth's; no token leaves ``request[IDENTITY]`` None.  Then
   the controller: proxy/account.py, proxy/container.py or proxy/object.py, each of which
   authorises first (proxy/authz.py).
4. On the way out (``on_response_prepare``): the transaction id is set, and gatekept headers
   (``X-Backend-*``, sysmeta) are stripped, whatever built the response.

``Expect: 100-continue``: the catch-all route's expect handler sends nothing for a PUT; the
object controller sends the client its 100 only once the backends are ready for the body
(proxy/streaming.py), so a 401, 404, 411 or 503 reaches the client before a body sent for
nothing.

The access line is service/runner.py's ``AccessLogger``, which logs the request's
``X-Trans-Id`` header; the proxy's id is made here, not sent by the client, so a logging filter
on that logger (``TransIdLogFilter``) puts the proxy's id in its place.  The filter reads it
from a context variable set by the middleware: aiohttp logs the access line from the task that
ran the handler, so each line gets its own request's id.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from identity.config import IdentityConfig
from identity.ec2 import Ec2Credentials
from identity.tokens import TokenCodec
from identity.users import UserDirectory
from identity.v1 import add_v1_routes
from service.config import ClusterConfig
from service.errors import HTTPStatusError
from service.runner import ACCESS_LOGGER

from . import account, authz, container, discovery
from . import object as object_controller
from .backend import GATEKEPT
from .config import ProxyConfig
from .context import IDENTITY, PROXY, TRANS_ID, Proxy, load_rings, proxy_ctx
from .paths import parse_swift_path
from .s3 import frontend as s3_frontend
from .s3 import swift as s3_swift
from .s3.context import S3_CREDENTIALS
from .streaming import send_continue

log = logging.getLogger("torus.proxy")
_TRANS_ID_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("torus_trans_id")
MAX_TRANS_ID_EXTRA = 32  # characters of X-Trans-Id-Extra kept, as Swift


def build_app(
    config: ProxyConfig, cluster: ClusterConfig, identity: IdentityConfig
) -> web.Application:
    """The proxy.  ``identity`` gives the token secret (shared with the identity service) and
    the users of the v1 auth served here."""
    rings = load_rings(cluster)
    tokens = TokenCodec.from_config(identity)
    directory = UserDirectory.from_config(identity.users, reseller_prefix=identity.reseller_prefix)
    app = web.Application(middlewares=[_transaction])
    app[S3_CREDENTIALS] = Ec2Credentials.from_directory(directory)
    app.cleanup_ctx.append(proxy_ctx(config, cluster, rings, tokens))
    app.on_response_prepare.append(_outgoing_headers)
    add_v1_routes(app, directory, tokens, identity)
    app.router.add_route("*", "/{tail:.*}", _dispatch, expect_handler=_expect_handler)
    install_trans_id_log_filter()
    return app


def new_trans_id(extra: str | None = None, *, clock: float | None = None) -> str:
    """Swift's transaction id: ``tx`` + 21 random hex digits + ``-`` + the time in 10 hex
    digits, then ``-<extra>`` (the client's ``X-Trans-Id-Extra``, 32 characters at most)."""
    now = int(time.time() if clock is None else clock)
    trans_id = f"tx{os.urandom(11).hex()[:21]}-{now:010x}"
    if extra:
        trans_id += "-" + quote(extra[:MAX_TRANS_ID_EXTRA])
    return trans_id


@web.middleware
async def _transaction(request: web.Request, handler: Handler) -> web.StreamResponse:
    trans_id = new_trans_id(request.headers.get("X-Trans-Id-Extra"))
    request[TRANS_ID] = trans_id
    _TRANS_ID_VAR.set(trans_id)
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # already a response (the controllers' 4xx, aiohttp's 405)
    except HTTPStatusError as exc:
        return web.Response(
            status=exc.status, text=exc.body or str(exc.status), headers=exc.headers
        )
    except Exception:
        log.exception("%s %s failed (%s)", request.method, request.raw_path, trans_id)
        return web.Response(status=500, text="Internal Server Error")


async def _outgoing_headers(request: web.Request, response: web.StreamResponse) -> None:
    trans_id = request.get(TRANS_ID)
    headers = response.headers
    if trans_id is not None:
        headers["X-Trans-Id"] = trans_id
        headers["X-Openstack-Request-Id"] = trans_id
    s3_swift.translate_headers(request, response)  # before the gatekept ones go: it reads some
    if _body_in_doubt(request):
        response.force_close()  # closed after this answer...
        headers["Connection"] = "close"  # ...and said so (its headers were made already)
    gatekept = [name for name in headers if GATEKEPT.match(name)]
    for name in gatekept:
        headers.popall(name, None)


def _body_in_doubt(request: web.Request) -> bool:
    """An answer given before a body sent with ``Expect: 100-continue`` was read: the client
    may send the body or not (it need not, without our 100), so the connection cannot carry
    another request: aiohttp would take the next request's first bytes for the rest of this
    body (boto3 sends every PUT so, and re-uses the connection after an early error)."""
    if request.headers.get("Expect", "").lower() != "100-continue":
        return False
    return request.content_length != 0 and not request.content.at_eof()


async def _expect_handler(request: web.Request) -> None:
    """A PUT's 100 Continue waits for the backends (proxy/streaming.py); others' go now."""
    if request.method != "PUT":
        await send_continue(request)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    route = request.path
    if route == "/healthcheck":
        return web.Response(text="OK")
    if route == "/info":
        return await discovery.info_response(request)
    proxy = request.app[PROXY]
    if s3_frontend.is_s3(request):
        return await s3_frontend.handle(request, proxy)
    path = parse_swift_path(request.raw_path)
    _authenticate(request, proxy, path.account)
    if path.obj is not None:
        return await object_controller.handle(request, proxy, path)
    if path.container is not None:
        return await container.handle(request, proxy, path)
    return await account.handle(request, proxy, path)


def _authenticate(request: web.Request, proxy: Proxy, account_name: str) -> None:
    """``request[IDENTITY]``: who the token speaks for (None without a token); a token that
    does not validate is a 401 now, as tempauth denies its own tokens it cannot validate."""
    headers = request.headers
    token = headers.get("X-Auth-Token") or headers.get("X-Storage-Token")
    if not token:
        request[IDENTITY] = None
        return
    identity = proxy.tokens.validate(token)
    if identity is None:
        raise authz.denial(401, account_name)
    request[IDENTITY] = identity


class TransIdLogFilter(logging.Filter):
    """Puts the proxy's transaction id last in each access line's arguments (where the
    runner's AccessLogger puts the request's X-Trans-Id header)."""

    def filter(self, record: logging.LogRecord) -> bool:
        trans_id = _TRANS_ID_VAR.get(None)
        if trans_id is not None and isinstance(record.args, tuple) and record.args:
            record.args = (*record.args[:-1], trans_id)
        return True


def install_trans_id_log_filter() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, TransIdLogFilter) for f in logger.filters):
        logger.addFilter(TransIdLogFilter())
