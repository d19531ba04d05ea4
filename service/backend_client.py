"""Server-to-server HTTP calls: object server → container server, container → account, ...

One ``ConnectionPool`` per process (service/http11.py: a lean HTTP/1.1 client) keeps
connections to other nodes alive and pooled (bounded).  Every call has two timeouts:
``conn_timeout_s`` to connect and ``node_timeout_s`` for the whole call, as Swift's
``conn_timeout``/``node_timeout``.  A node that cannot be reached, refuses, resets, answers
what is not HTTP or is too slow raises ``BackendUnavailable``, so the caller can save an
async_pending or try a handoff; any HTTP answer, even 5xx, is returned as it came.

Bodies are sent and read whole, in memory: this client is for small calls (row updates,
reports, REPLICATE).  Streamed object bodies use the pool directly (the proxy:
``ConnectionPool.open`` for GETs, ``open_upload``, service/http11_upload.py, for PUTs).  It
replaced an ``aiohttp.ClientSession``, whose machinery cost about 0.1 ms of CPU more per call:
on the object PUT path every write makes one call per container replica it names.

In an aiohttp app, ``app.cleanup_ctx.append(backend_client_ctx(conn, node))`` puts a client at
``app[BACKEND_CLIENT]`` for the app's life.  Daemons use ``async with open_backend_client(...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import quote, urlencode

from aiohttp import web
from yarl import URL

from service.http11 import ConnectionPool
from service.http11 import Response as BackendResponse
from service.methods import wire_method


class BackendUnavailable(Exception):
    """The node could not be reached or did not answer in time."""


class BackendClient:
    def __init__(
        self, pool: ConnectionPool, *, conn_timeout_s: float, node_timeout_s: float
    ) -> None:
        self._pool = pool
        self.conn_timeout_s = conn_timeout_s
        self.node_timeout_s = node_timeout_s

    @property
    def closed(self) -> bool:
        return self._pool.closed

    async def request(
        self,
        method: str,
        ip: str,
        port: int,
        device: str,
        partition: int,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        *,
        query: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> BackendResponse:
        """``method /<device>/<partition><path>`` on ``ip:port``; ``path`` is ``/a[/c[/o]]``.

        Names in ``path`` are plain text (any UTF-8, '?' and '%' included); they are quoted
        here.  ``timeout_s`` replaces ``node_timeout_s`` for this call.  REPLICATE and SSYNC
        go as a POST that names them (service/methods.py): aiohttp servers refuse them as is.
        """
        method, headers = wire_method(method, headers)
        target = backend_target(device, partition, path, query)
        try:
            return await self._pool.request(
                ip,
                port,
                method,
                target,
                headers,
                body,
                conn_timeout_s=self.conn_timeout_s,
                total_timeout_s=self.node_timeout_s if timeout_s is None else timeout_s,
            )
        except (TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            host = f"[{ip}]" if ":" in ip else ip
            raise BackendUnavailable(f"{method} http://{host}:{port}{target}: {reason}") from exc


def backend_target(
    device: str, partition: int, path: str, query: Mapping[str, str] | None = None
) -> str:
    """The quoted request target ``/<device>/<partition><path>[?query]``."""
    if path and not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    # safe="/" keeps the separators; everything else in a name is percent-encoded as UTF-8.
    target = quote(f"/{device}/{partition}{path}", safe="/")
    return f"{target}?{urlencode(query, quote_via=quote)}" if query else target


def backend_url(
    ip: str,
    port: int,
    device: str,
    partition: int,
    path: str,
    query: Mapping[str, str] | None = None,
) -> URL:
    """The URL of a backend path (as ``request`` sends it); IPv6 addresses are bracketed."""
    host = f"[{ip}]" if ":" in ip else ip
    target = backend_target(device, partition, path, query)
    return URL(f"http://{host}:{port}{target}", encoded=True)


@contextlib.asynccontextmanager
async def open_backend_client(
    *, conn_timeout_s: float, node_timeout_s: float, max_connections: int = 256
) -> AsyncIterator[BackendClient]:
    """A client with its own connection pool, closed on exit (daemons, tools, tests)."""
    pool = ConnectionPool(max_connections=max_connections)
    try:
        yield BackendClient(pool, conn_timeout_s=conn_timeout_s, node_timeout_s=node_timeout_s)
    finally:
        await pool.close()


BACKEND_CLIENT = web.AppKey("backend_client", BackendClient)


def backend_client_ctx(
    conn_timeout_s: float, node_timeout_s: float, max_connections: int = 256
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that opens ``app[BACKEND_CLIENT]`` and closes it at app cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_backend_client(
            conn_timeout_s=conn_timeout_s,
            node_timeout_s=node_timeout_s,
            max_connections=max_connections,
        ) as client:
            app[BACKEND_CLIENT] = client
            yield

    return ctx
