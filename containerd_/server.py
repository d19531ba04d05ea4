"""The container server: a thin aiohttp app over the container broker (containerd_/broker.py).

``build_app(config, cluster)`` is the process's composition root; ``torus serve container``
runs it in each worker (service/runner.py), so the broker — LMDB environments and writer
threads — is opened after the fork, in a cleanup context, and closed when the app shuts down.

One route takes every request: ``/<device>/<partition>/<account>/<container>`` for container
verbs (REPLICATE among them, sent as a POST that names it: containerd_/replication_http.py),
``.../<container>/<object>`` (the object may hold '/') for object rows; handlers live in
containerd_/http_handlers.py, errors become statuses in containerd_/http_errors.py, and every
response echoes the request's X-Trans-Id.
"""

from __future__ import annotations

import functools
import random

from aiohttp import web

from service.backend_client import backend_client_ctx
from service.config import ClusterConfig, ContainerServerConfig
from service.db_app import PathHandler, broker_ctx, path_dispatcher
from service.http_errors import echo_trans_id
from service.methods import effective_method
from service.names import BackendPath

from . import http_handlers as h
from .app_keys import BROKER, CONFIG, RNG
from .broker import ContainerBroker
from .broker_base import ContainerBrokerBase
from .http_errors import middleware
from .replication_http import replicate


async def _post_or_replicate(request: web.Request, path: BackendPath) -> web.StreamResponse:
    """REPLICATE arrives as a POST that names it (service/methods.py)."""
    if effective_method(request.method, request.headers) == "REPLICATE":
        return await replicate(request, path)
    return await h.post_container(request, path)


CONTAINER_HANDLERS: dict[str, PathHandler] = {
    "PUT": h.put_container,
    "POST": _post_or_replicate,
    "DELETE": h.delete_container,
    "HEAD": h.head_container,
    "GET": h.get_container,
}
OBJECT_ROW_HANDLERS: dict[str, PathHandler] = {
    "PUT": h.put_object_row,
    "DELETE": h.delete_object_row,
}


async def _prepare_device(request: web.Request, path: BackendPath) -> None:
    await request.app[BROKER].prepare_device(path.device)


def build_app(
    config: ContainerServerConfig,
    cluster: ClusterConfig,
    *,
    broker: ContainerBrokerBase | None = None,
    rng: random.Random | None = None,
) -> web.Application:
    """The container server.  ``broker``: use this one (tests; the caller closes it)."""
    app = web.Application(middlewares=[middleware])
    app[CONFIG] = config
    app[RNG] = rng if rng is not None else random.Random()
    open_broker = functools.partial(
        ContainerBroker,
        str(config.devices),
        cluster.hash_path_secret.encode("utf-8"),
        max_batch=config.max_batch,
        mount_check=config.mount_check,
    )
    app.cleanup_ctx.append(broker_ctx(BROKER, open_broker, broker))
    app.cleanup_ctx.append(backend_client_ctx(config.conn_timeout_s, config.node_timeout_s))
    app.on_response_prepare.append(echo_trans_id)
    tables = {4: CONTAINER_HANDLERS, 5: OBJECT_ROW_HANDLERS}
    dispatch = path_dispatcher(4, 5, tables, prepare=_prepare_device)
    app.router.add_route("*", "/{path:.*}", dispatch)
    return app
