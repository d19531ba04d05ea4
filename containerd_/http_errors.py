"""What the container server answers when a request fails: every mapping in one place.

Handlers raise; the middleware built here (service/http_errors.py) turns the exception into
a response.  The shared checks' ``HTTPStatusError`` family carries its own status.
"""

from __future__ import annotations

import logging

from service.errors import BadInput
from service.http_errors import error_middleware

from .errors import (
    ContainerConflict,
    ContainerNotEmpty,
    ContainerNotFound,
    DeviceUnavailable,
    DiskFull,
)

log = logging.getLogger("torus.containerd")


def error_status(exc: BaseException) -> tuple[int, str, dict[str, str]] | None:
    """(status, body, headers) for a broker error; None for a bug or corrupt storage."""
    if isinstance(exc, ContainerNotFound):
        return 404, "Not Found", {}
    if isinstance(exc, ContainerNotEmpty | ContainerConflict):
        return 409, str(exc), {}
    if isinstance(exc, DeviceUnavailable | DiskFull):
        return 507, str(exc), {}
    if isinstance(exc, BadInput):  # the broker's checks: names, rows, metadata limits
        return 400, str(exc), {}
    # Anything else (a ValueError from a record that does not decode included) is a bug or
    # corrupt storage: the middleware logs it and answers 500.
    return None


middleware = error_middleware(error_status, log)
