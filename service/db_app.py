"""The frame the container and account servers share: a broker opened in a cleanup context,
and one route dispatching on the backend path's depth and the method.

Each server's ``build_app`` stays its composition root; this only keeps the two from writing
the same plumbing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from aiohttp import web

from service.names import BackendPath, parse_backend_path

PathHandler = Callable[[web.Request, BackendPath], Awaitable[web.StreamResponse]]


class Closable(Protocol):
    def close(self) -> None: ...


B = TypeVar("B", bound=Closable)


def broker_ctx(
    key: web.AppKey[B], open_broker: Callable[[], B], injected: B | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` putting a broker at ``app[key]``: ``injected`` as is (its owner
    closes it), else ``open_broker()`` — in the worker, after any fork — closed at cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if injected is not None:
            app[key] = injected
            yield
            return
        opened = open_broker()
        app[key] = opened
        try:
            yield
        finally:
            # Joins the writer threads after they finish what is queued: not on the loop.
            await asyncio.to_thread(opened.close)

    return ctx


def path_dispatcher(
    min_parts: int,
    max_parts: int,
    tables: Mapping[int, Mapping[str, PathHandler]],
    prepare: Callable[[web.Request, BackendPath], Awaitable[None]] | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler for every request: parse the backend path (400/412 if bad), pick the table
    for its number of parts (device and partition included), then the method's handler (405
    if it has none).  ``prepare`` is awaited before the handler: the brokers' device opening,
    off the event loop (it raises nothing: the handler's own calls do, in their order)."""

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = parse_backend_path(request.raw_path, min_parts=min_parts, max_parts=max_parts)
        depth = 2 + sum(name is not None for name in (path.account, path.container, path.obj))
        handlers = tables[depth]
        handler = handlers.get(request.method)
        if handler is None:
            allowed = sorted(handlers)
            raise web.HTTPMethodNotAllowed(request.method, allowed, text="Method Not Allowed")
        if prepare is not None:
            await prepare(request, path)
        return await handler(request, path)

    return dispatch
