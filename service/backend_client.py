"""Server-to-server HTTP calls: object server → container server, container → account, ...

One ``aiohttp.ClientSession`` per process keeps connections to other nodes alive and pooled
(bounded).  Every call has two timeouts: ``conn_timeout_s`` to connect and ``node_timeout_s``
for the whole call, as Swift's ``conn_timeout``/``node_timeout``.  A node that cannot be
reached, refuses, resets or is too slow raises ``BackendUnavailable``, so the caller can save
an async_pending or try a handoff; any HTTP answer, even 5xx, is returned as it came.

Bodies are read whole into memory: this client is for small calls (row updates, reports,
REPLICATE).  Streaming object bodies need a different call.

In an aiohttp app, ``app.cleanup_ctx.append(backend_client_ctx(conn, node))`` puts a client at
``app[BACKEND_CLIENT]`` for the app's life.  Daemons use ``async with open_backend_client(...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import NamedTuple
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from service.methods import wire_method


class BackendUnavailable(Exception):
    """The node could not be reached or did not answer in time."""


class BackendResponse(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class BackendClient:
    def __init__(
        self, session: aiohttp.ClientSession, *, conn_timeout_s: float, node_timeout_s: float
    ) -> None:
        self._session = session
        self.conn_timeout_s = conn_timeout_s
        self.node_timeout_s = node_timeout_s

    @property
    def closed(self) -> bool:
        return self._session.closed

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
        url = backend_url(ip, port, device, partition, path, query)
        timeout = aiohttp.ClientTimeout(
            total=self.node_timeout_s if timeout_s is None else timeout_s,
            sock_connect=self.conn_timeout_s,
        )
        try:
            async with self._session.request(
                method, url, headers=headers, data=body, timeout=timeout
            ) as response:
                return BackendResponse(response.status, response.headers, await response.read())
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise BackendUnavailable(f"{method} {url}: {reason}") from exc


def backend_url(
    ip: str,
    port: int,
    device: str,
    partition: int,
    path: str,
    query: Mapping[str, str] | None = None,
) -> URL:
    """The quoted URL of a backend path; IPv6 addresses are bracketed."""
    if path and not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    # safe="/" keeps the separators; everything else in a name is percent-encoded as UTF-8.
    encoded = quote(f"/{device}/{partition}{path}", safe="/")
    host = f"[{ip}]" if ":" in ip else ip
    url = URL(f"http://{host}:{port}{encoded}", encoded=True)
    return url.with_query(dict(query)) if query else url


def new_session(max_connections: int = 256) -> aiohttp.ClientSession:
    """A session for backend calls: bounded pool, no proxies, no cookies, bodies untouched."""
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=None)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,  # never route backend traffic through an HTTP(S)_PROXY
    )


@contextlib.asynccontextmanager
async def open_backend_client(
    *, conn_timeout_s: float, node_timeout_s: float, max_connections: int = 256
) -> AsyncIterator[BackendClient]:
    """A client with its own session, closed on exit (daemons, tools, tests)."""
    async with new_session(max_connections) as session:
        yield BackendClient(session, conn_timeout_s=conn_timeout_s, node_timeout_s=node_timeout_s)


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
