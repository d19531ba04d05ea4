"""Turning a handler's exception into a response: the frame every storage server shares.

Each server keeps its own mapping of domain errors to statuses in one function (its
``http_errors.error_status``) and builds its middleware from it here, so the frame (pass
aiohttp's own answers through, log a bug once as a 500, warn on 507) is written once.  The
shared checks' ``HTTPStatusError`` family needs no mapping: it carries its status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from service.errors import HTTPStatusError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (status, body, headers) for an exception the server expects; None for a bug.
ErrorStatus = Callable[[BaseException], "tuple[int, str, dict[str, str]] | None"]


def status_of_http_error(exc: BaseException) -> tuple[int, str, dict[str, str]] | None:
    if isinstance(exc, HTTPStatusError):
        return exc.status, exc.body or str(exc.status), dict(exc.headers)
    return None


def error_middleware(error_status: ErrorStatus, log: logging.Logger) -> Middleware:
    """A middleware answering ``error_status(exc)`` for what a handler raises."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise  # aiohttp's own (405 from a dispatcher): already a response
        except Exception as exc:
            found = status_of_http_error(exc) or error_status(exc)
            if found is None:
                log.exception("%s %s failed", request.method, request.raw_path)
                return web.Response(status=500, text="Internal Server Error")
            status, body, headers = found
            if status == 507:
                log.warning("%s %s: %s", request.method, request.raw_path, exc)
            return web.Response(status=status, text=body, headers=headers)

    return middleware


async def echo_trans_id(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: every answer carries the request's X-Trans-Id."""
    trans_id = request.headers.get("X-Trans-Id")
    if trans_id is not None:
        response.headers["X-Trans-Id"] = trans_id
