"""Request errors the shared checks raise, each carrying its HTTP status and body.

The checks in ``service/`` (names, metadata, preconditions) know nothing of aiohttp: they raise
one of these, and each server turns any ``HTTPStatusError`` into a response in one place::

    except HTTPStatusError as err:
        return web.Response(status=err.status, text=err.body, headers=err.headers)

Checks below the HTTP layer that callers outside it use too (the brokers') raise ``BadInput``,
a ``ValueError``, which the container and account servers map to 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class BadInput(ValueError):
    """A value handed in that cannot be used: a name, a row field, a listing parameter,
    metadata over Swift's limits.  The brokers' and the shared checks' input errors; the
    container and account servers answer it 400.  Any other ValueError there is a bug or a
    corrupt stored record (a row or record that does not decode): a logged 500, since a
    client cannot fix it by asking differently."""


class HTTPStatusError(Exception):
    """An answer other than success, decided below the HTTP layer."""

    status: ClassVar[int] = 500

    def __init__(self, body: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(body or f"{self.status}")
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.body!r})"


class BadRequest(HTTPStatusError):
    status = 400


class NotFound(HTTPStatusError):
    status = 404


class NotAcceptable(HTTPStatusError):
    """No listing format the client accepts (Swift's listing_formats answers 406)."""

    status = 406


class Conflict(HTTPStatusError):
    status = 409


class LengthRequired(HTTPStatusError):
    status = 411


class PreconditionFailed(HTTPStatusError):
    status = 412


class RequestEntityTooLarge(HTTPStatusError):
    status = 413


class RangeNotSatisfiable(HTTPStatusError):
    status = 416


class InsufficientStorage(HTTPStatusError):
    """Swift's answer when a device is unmounted or missing (507)."""

    status = 507
