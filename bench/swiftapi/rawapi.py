"""The measured Swift API calls over rawhttp: the same methods and checks as api.SwiftAPI's.

Each call formats its request head (request line, Host, X-Auth-Token and, for PUT,
Content-Length and Content-Type), sends it with the body from the shared ``Body``, and checks
the status and the body length exactly as api.SwiftAPI does; it returns the body bytes moved.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from api import Account, Body, StatusError
from measure import Meter
from rawhttp import Pool


class RawSwiftAPI:
    def __init__(self, account: Account, meter: Meter) -> None:
        url = urlsplit(account.storage_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"--client raw speaks plain http only, not {account.storage_url}")
        self.pool = Pool(url.hostname, url.port or 80, meter)
        self._path = url.path.rstrip("/")
        self._headers = f"Host: {url.netloc}\r\nX-Auth-Token: {account.token}\r\n"

    def _head(self, method: str, target: str, extra: str = "") -> bytes:
        """Request line and headers; ``extra`` is more header lines, each ending in CRLF."""
        return f"{method} {self._path}{target} HTTP/1.1\r\n{self._headers}{extra}\r\n".encode()

    async def put_object(self, container: str, name: str, body: Body) -> int:
        extra = f"Content-Length: {body.size_bytes}\r\nContent-Type: application/octet-stream\r\n"
        head = self._head("PUT", _target(container, name), extra)
        response = await self.pool.request(head, body.pieces)
        _expect(response.status, "PUT", name, (201,))
        return body.size_bytes

    async def get_object(self, container: str, name: str) -> int:
        response = await self.pool.request(self._head("GET", _target(container, name)))
        _expect(response.status, "GET", name, (200,))
        return response.body_bytes  # exactly Content-Length's, or rawhttp raised

    async def head_object(self, container: str, name: str) -> int:
        response = await self.pool.request(self._head("HEAD", _target(container, name)))
        _expect(response.status, "HEAD", name, (200,))
        return 0

    async def listing_bytes(self, container: str, limit: int) -> int:
        target = f"/{quote(container, safe='')}?format=json&limit={limit}"
        response = await self.pool.request(self._head("GET", target))
        _expect(response.status, "GET", f"{container}?format=json", (200,))
        return response.body_bytes

    def close(self) -> None:
        self.pool.close()


def _target(container: str, name: str) -> str:
    return f"/{quote(container, safe='')}/{quote(name)}"


def _expect(status: int, method: str, what: str, statuses: tuple[int, ...]) -> None:
    if status not in statuses:
        raise StatusError(method, what, status)
