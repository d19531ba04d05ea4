"""The account server: a thin aiohttp app over the account broker (accountd/broker.py).

``build_app(config, cluster)`` is the process's composition root; ``torus serve account``
runs it in each worker (service/runner.py), so the broker — LMDB environments and writer
threads — is opened after the fork, in a cleanup context, and closed when the app shuts down.

One route takes every request: ``/<device>/<partition>/<account>`` for account verbs (REPLICATE
among them, sent as a POST that names it: accountd/replication_http.py),
``.../<account>/<container>`` for container rows; handlers live in accountd/http_handlers.py,
errors become statuses in accountd/http_errors.py, and every response echoes the request's
X-Trans-Id.  The account server calls no other server, so it has no backend client.
"""

from __future__ import annotations

import functools

from aiohttp import web

from service.config import AccountServerConfig, ClusterConfig
from service.db_app import PathHandler, broker_ctx, path_dispatcher
from service.http_errors import echo_trans_id
from service.methods import effective_method
from service.names import BackendPath

from . import http_handlers as h
from .app_keys import BROKER, CONFIG
from .broker import AccountBroker
from .broker_base import AccountBrokerBase
from .http_errors import middleware
from .replication_http import replicate


async def _post_or_replicate(request: web.Request, path: BackendPath) -> web.StreamResponse:
    """REPLICATE arrives as a POST that names it (service/methods.py)."""
    if effective_method(request.method, request.headers) == "REPLICATE":
        return await replicate(request, path)
    return await h.post_account(request, path)


ACCOUNT_HANDLERS: dict[str, PathHandler] = {
    "PUT": h.put_account,
    "POST": _post_or_replicate,
    "DELETE": h.delete_account,
    "HEAD": h.head_account,
    "GET": h.get_account,
}
CONTAINER_ROW_HANDLERS: dict[str, PathHandler] = {"PUT": h.put_container_row}


async def _prepare_device(request: web.Request, path: BackendPath) -> None:
    await request.app[BROKER].prepare_device(path.device)


def build_app(
    config: AccountServerConfig,
    cluster: ClusterConfig,
    *,
    broker: AccountBrokerBase | None = None,
) -> web.Application:
    """The account server.  ``broker``: use this one (tests; the caller closes it)."""
    app = web.Application(middlewares=[middleware])
    app[CONFIG] = config
    open_broker = functools.partial(
        AccountBroker,
        str(config.devices),
        cluster.hash_path_secret.encode("utf-8"),
        max_batch=config.max_batch,
        mount_check=config.mount_check,
    )
    app.cleanup_ctx.append(broker_ctx(BROKER, open_broker, broker))
    app.on_response_prepare.append(echo_trans_id)
    tables = {3: ACCOUNT_HANDLERS, 4: CONTAINER_ROW_HANDLERS}
    dispatch = path_dispatcher(3, 4, tables, prepare=_prepare_device)
    app.router.add_route("*", "/{path:.*}", dispatch)
    return app
