"""The object server: a thin aiohttp app over the object engine (objectd/engine.py).

``build_app(config, cluster)`` is the process's composition root; ``torus serve object`` runs
it in each worker (service/runner.py), so the engine — LMDB environments and writer threads —
is opened after the fork, in a cleanup context, and closed when the app shuts down.  Its
devices are opened there too, in a worker thread, and every ``READER_CHECK_INTERVAL_S`` the
LMDB reader slots of dead processes (a worker killed mid-read) are freed.  At shutdown, the
writes and container updates of cancelled handlers end before the engine closes.

Every request goes through one route: object verbs on ``/<device>/<partition>/<account>/
<container>/<object>`` (the object may hold '/'), REPLICATE on ``/<device>/<partition>
[/<suffix>-<suffix>...]`` (sent as a POST naming it: service/methods.py).  Errors become
statuses in objectd/http_errors.py; every response echoes the request's X-Trans-Id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote

from aiohttp import web

from service.backend_client import backend_client_ctx
from service.config import ClusterConfig, ObjectServerConfig
from service.errors import BadRequest
from service.methods import effective_method
from service.names import check_device, parse_partition

from .app_keys import CONFIG, ENGINE, FINISHING, RNG, WRITE_LEASES, Engine
from .engine import ObjectEngine
from .finishing import finish
from .http_errors import Handler, error_middleware
from .http_get import handle_get, handle_head
from .http_write import handle_delete, handle_post, handle_put, send_continue
from .replication_receiver import handle_ssync
from .write_leases import WriteLeases

log = logging.getLogger("torus.objectd")
READER_CHECK_INTERVAL_S = 60.0


def build_app(
    config: ObjectServerConfig,
    cluster: ClusterConfig,
    *,
    engine: Engine | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> web.Application:
    """The object server.  ``engine``: use this one (tests; the caller closes it)."""
    app = web.Application(middlewares=[error_middleware])
    app[CONFIG] = config
    app[RNG] = rng if rng is not None else random.Random()
    app[FINISHING] = set()
    app.cleanup_ctx.append(_engine_ctx(config, cluster, engine, clock))
    app.cleanup_ctx.append(backend_client_ctx(config.conn_timeout_s, config.node_timeout_s))
    app.cleanup_ctx.append(_finishing_ctx)  # last: it ends first, while both are still open
    app.on_response_prepare.append(_echo_trans_id)
    app.router.add_route("*", "/{path:.*}", _dispatch, expect_handler=_defer_continue)
    return app


def _engine_ctx(
    config: ObjectServerConfig,
    cluster: ClusterConfig,
    engine: Engine | None,
    clock: Callable[[], float],
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if engine is not None:
            app[ENGINE] = engine
            app[WRITE_LEASES] = WriteLeases(None)  # an engine of the caller's: maybe no files
            yield
            return
        opened = ObjectEngine(
            str(config.devices),
            cluster.hash_path_secret.encode("utf-8"),
            inline_max_bytes=config.inline_max_bytes,
            block_size_bytes=config.block_size_bytes,
            max_batch=config.max_batch,
            mount_check=config.mount_check,
            clock=clock,
        )
        app[ENGINE] = opened
        app[WRITE_LEASES] = leases = WriteLeases(str(config.devices))
        checker = None
        try:
            await asyncio.to_thread(opened.open_devices)  # not on the loop: LMDB opens, sweeps
            checker = asyncio.create_task(_check_readers(opened))
            yield
        finally:
            if checker is not None:
                checker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checker
            # Joins the writer threads after they finish what is queued: not on the loop.
            await asyncio.to_thread(opened.close)
            leases.close()

    return ctx


async def _check_readers(engine: ObjectEngine) -> None:
    while True:
        await asyncio.sleep(READER_CHECK_INTERVAL_S)
        try:
            # finish: a cancellation waits for the check, so the engine never closes under it.
            await finish(asyncio.to_thread(engine.reader_check))
        except Exception:
            log.exception("freeing the LMDB reader slots of dead processes failed")


async def _finishing_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    while app[FINISHING]:
        await asyncio.wait(set(app[FINISHING]))


async def handle_replicate(request: web.Request) -> web.Response:
    """Suffix hashes of a partition as JSON ``{suffix: hash}``; listed suffixes recalculated."""
    parts = unquote(request.raw_path.partition("?")[0]).split("/")
    if parts[0] or not 3 <= len(parts) <= 4 or "" in parts[1:]:
        raise BadRequest(f"Invalid path: {request.raw_path}")
    device, partition = check_device(parts[1]), parse_partition(parts[2])
    suffixes = parts[3].split("-") if len(parts) == 4 else []
    try:
        hashes = await request.app[ENGINE].suffix_hashes(device, partition, suffixes)
    except ValueError as exc:  # a suffix that is not three hex digits
        raise BadRequest(str(exc)) from None
    return web.Response(body=json.dumps(hashes, sort_keys=True), content_type="application/json")


HANDLERS: dict[str, Handler] = {
    "PUT": handle_put,
    "GET": handle_get,
    "HEAD": handle_head,
    "POST": handle_post,
    "DELETE": handle_delete,
    "REPLICATE": handle_replicate,
    "SSYNC": handle_ssync,  # the replication push: objectd/replication_receiver.py
}


async def _dispatch(request: web.Request) -> web.StreamResponse:
    method = effective_method(request.method, request.headers)
    handler = HANDLERS.get(method)
    if handler is None:
        raise web.HTTPMethodNotAllowed(method, sorted(HANDLERS), text="Method Not Allowed")
    return await handler(request)


async def _defer_continue(request: web.Request) -> None:
    """aiohttp's expect handler.  A PUT sends its 100 Continue only after its checks
    (handle_put), so that a 409, 412 or 507 reaches the client before a body sent for nothing."""
    if request.method != "PUT":
        await send_continue(request)


async def _echo_trans_id(request: web.Request, response: web.StreamResponse) -> None:
    trans_id = request.headers.get("X-Trans-Id")
    if trans_id is not None:
        response.headers["X-Trans-Id"] = trans_id
