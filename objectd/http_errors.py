"""What the object server answers when a request fails: every mapping in one place.

Handlers raise; ``error_middleware`` turns the exception into a response.  The engine's
errors (objectd/errors.py) and the shared checks' ``HTTPStatusError`` family meet here, as do
the two ways a PUT body can fail to arrive (the client went away: 499; it stalled: 408).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from service.errors import HTTPStatusError

from .errors import (
    ChecksumFooterMismatch,
    ChecksumFooterMissing,
    DeviceUnavailable,
    DiskFull,
    EtagMismatch,
    ObjectConflict,
    ObjectNotFound,
    SizeMismatch,
)

log = logging.getLogger("torus.objectd")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Swift's names for the statuses it uses beyond the IANA registry.
_REASONS = {499: "Client Disconnect"}


class ClientDisconnected(Exception):
    """The client went away before its whole PUT body arrived (Swift's 499)."""


class ClientTimeout(Exception):
    """The client sent no more of its PUT body for ``client_timeout_s`` (Swift's 408)."""


def error_status(exc: BaseException) -> tuple[int, str, dict[str, str]] | None:
    """(status, body, headers) for an exception the server expects; None for a bug."""
    if isinstance(exc, HTTPStatusError):
        return exc.status, exc.body or str(exc.status), dict(exc.headers)
    if isinstance(exc, ObjectNotFound):  # Quarantined too: another replica has a good copy
        headers = {}
        if exc.timestamp is not None:
            headers["X-Backend-Timestamp"] = exc.timestamp.internal
        return 404, "Not Found", headers
    if isinstance(exc, ObjectConflict):
        return 409, str(exc), {"X-Backend-Timestamp": exc.timestamp.internal}
    if isinstance(exc, EtagMismatch | ChecksumFooterMismatch):
        return 422, str(exc), {}
    if isinstance(exc, ChecksumFooterMissing):
        return 400, str(exc), {}
    if isinstance(exc, SizeMismatch):
        return (499 if exc.short else 400), str(exc), {}
    if isinstance(exc, DeviceUnavailable | DiskFull):
        return 507, str(exc), {}
    if isinstance(exc, ClientDisconnected):
        return 499, "Client Disconnect", {}
    if isinstance(exc, ClientTimeout):
        return 408, "Request Timeout", {}
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # aiohttp's own (405 from the dispatcher): already a response
    except Exception as exc:
        found = error_status(exc)
        if found is None:
            log.exception("%s %s failed", request.method, request.raw_path)
            return web.Response(status=500, text="Internal Server Error")
        status, body, headers = found
        if status == 507:
            log.warning("%s %s: %s", request.method, request.raw_path, exc)
        return web.Response(status=status, reason=_REASONS.get(status), text=body, headers=headers)
