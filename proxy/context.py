"""What every proxy request handler reaches: the ``Proxy`` of its worker, and the request keys.

One ``Proxy`` per worker process, built in the app's cleanup context (after the fork, on the
worker's loop) and kept at ``app[PROXY]``: the rings, loaded once and swapped only when a ring
file changes on disk (checked every ``ring_check_interval_s``, off the request path), the one
``service.http11.ConnectionPool`` that keeps connections to the backends alive (the lean
HTTP/1.1 client: about half the CPU of aiohttp's per backend call, and streamed PUT bodies
written to each replica with no await per chunk; closed at the worker's shutdown), the error
counts that make a failing node skipped for a while, and the token codec.

Request keys (``request[IDENTITY]``, ``request[TRANS_ID]``) are typed ``web.RequestKey``s,
set by proxy/server.py before any controller runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from identity.tokens import Identity, TokenCodec
from ring.ring import Ring
from service.config import ClusterConfig
from service.http11 import ConnectionPool
from service.timestamp import Timestamp

from .config import ProxyConfig
from .generations import GenerationTable
from .nodes import NodeErrors

log = logging.getLogger("torus.proxy")

RING_NAMES = ("account", "container", "object")
# The validated identity.tokens.Identity, or None: no token was sent.
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("torus.identity")
# The request's transaction id (tx<21 hex>-<10 hex time>).
TRANS_ID = web.RequestKey("torus.trans_id", str)
# The X-Timestamp of the request's writes, assigned once (backend.request_timestamp).
TIMESTAMP = web.RequestKey("torus.timestamp", Timestamp)
# Headers the proxy itself adds to a request's backend requests, sysmeta included (the S3
# layer's, proxy/s3/swift.py): never the client's, which the gatekeeper strips.
INTERNAL_HEADERS = web.RequestKey("torus.internal_headers", dict)


@dataclass
class Proxy:
    config: ProxyConfig
    cluster: ClusterConfig
    account_ring: Ring
    container_ring: Ring
    object_ring: Ring
    pool: ConnectionPool
    errors: NodeErrors
    tokens: TokenCodec
    info_cache: dict = field(default_factory=dict)  # owned by proxy/infocache.py
    # Shared with this host's other workers of the proxy (proxy/generations.py).
    generations: GenerationTable = field(default_factory=GenerationTable.private)
    rng: random.Random = field(default_factory=random.Random)  # shuffles read nodes


PROXY = web.AppKey("proxy", Proxy)


def ring_path(cluster: ClusterConfig, name: str) -> Path:
    """``<ring_dir>/<name>.ring``, as ``torus ring ... write_ring`` names it."""
    return Path(cluster.ring_dir) / f"{name}.ring"


def load_rings(cluster: ClusterConfig) -> dict[str, Ring]:
    """The account, container and object rings; a missing or bad file raises."""
    secret = cluster.hash_path_secret.encode("utf-8")
    return {name: Ring.load(ring_path(cluster, name), secret) for name in RING_NAMES}


@contextlib.asynccontextmanager
async def open_pool(config: ProxyConfig) -> AsyncIterator[ConnectionPool]:
    """The worker's one keep-alive pool to the backends (bounded), closed on exit.  It sends
    only the headers it is given (no Content-Type, Accept or Accept-Encoding of its own: an
    object POST without a type must not change it), bodies untouched, no HTTP(S)_PROXY."""
    pool = ConnectionPool(max_connections=config.max_backend_connections)
    try:
        yield pool
    finally:
        await pool.close()


def proxy_ctx(
    config: ProxyConfig,
    cluster: ClusterConfig,
    rings: dict[str, Ring],
    tokens: TokenCodec,
    *,
    clock: Callable[[], float] | None = None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that puts the worker's ``Proxy`` at ``app[PROXY]`` and closes its
    connection pool at cleanup; ``rings`` were loaded by ``build_app`` (a bad ring stops
    start-up)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        errors = NodeErrors(
            config.error_suppression_limit, config.error_suppression_interval_s, clock=clock
        )
        generations = GenerationTable.for_server(config.bind_ip, config.bind_port)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(generations.close)
            pool = await stack.enter_async_context(open_pool(config))
            proxy = Proxy(
                config=config,
                cluster=cluster,
                account_ring=rings["account"],
                container_ring=rings["container"],
                object_ring=rings["object"],
                pool=pool,
                errors=errors,
                tokens=tokens,
                generations=generations,
            )
            app[PROXY] = proxy
            watcher = asyncio.create_task(_watch_rings(proxy))
            try:
                yield
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    return ctx


async def _watch_rings(proxy: Proxy) -> None:
    """Reload a ring whose file changed (a new ``write_ring``), in a thread, then swap it in."""
    seen = {name: _mtime(ring_path(proxy.cluster, name)) for name in RING_NAMES}
    secret = proxy.cluster.hash_path_secret.encode("utf-8")
    while True:
        await asyncio.sleep(proxy.config.ring_check_interval_s)
        for name in RING_NAMES:
            path = ring_path(proxy.cluster, name)
            mtime = _mtime(path)
            if mtime is None or mtime == seen[name]:
                continue
            try:
                ring = await asyncio.to_thread(Ring.load, path, secret)
            except Exception:
                log.exception("reloading %s failed; keeping the ring already loaded", path)
                continue
            seen[name] = mtime
            setattr(proxy, f"{name}_ring", ring)
            log.info("reloaded %s (version %d)", path, ring.version)


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
