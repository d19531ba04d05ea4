"""The Swift API calls `torus bench` makes, over one aiohttp session, with no timing in them.

v1 auth (``GET /auth/v1.0`` with X-Auth-User/X-Auth-Key, answered with X-Storage-Url and
X-Auth-Token), then object PUT/GET/HEAD/DELETE and container PUT/GET (json listings).
Every call checks the status and raises ``StatusError`` for anything else, so a failed
request can never be counted as a success.  Each returns the body bytes it moved.

PUT bodies come from one ``Body``: random bytes made once.  Up to ``Body.CHUNK_BYTES`` the body
is that buffer itself; larger objects are streamed as memoryview slices of it, repeated, with
an explicit Content-Length, so a 64 MiB PUT allocates nothing per request.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import aiohttp
from measure import Meter

T = TypeVar("T")
LISTING_PAGE = 10_000  # Swift's default container_listing_limit


class StatusError(Exception):
    """A response whose status the call did not expect (any non-2xx, or a wrong 2xx)."""

    def __init__(self, method: str, path: str, status: int) -> None:
        super().__init__(f"{method} {path}: {status}")
        self.status = status


@dataclass(frozen=True)
class Account:
    storage_url: str  # e.g. http://127.0.0.1:8090/v1/AUTH_test
    token: str


class Body:
    """PUT bodies of ``size_bytes`` from one shared random buffer."""

    CHUNK_BYTES = 1 << 20

    def __init__(self, size_bytes: int) -> None:
        self.size_bytes = size_bytes
        self._buffer = os.urandom(min(size_bytes, self.CHUNK_BYTES))
        self._view = memoryview(self._buffer)
        full, rest = divmod(size_bytes, self.CHUNK_BYTES)
        self.pieces = (self._view,) * full + ((self._view[:rest],) if rest else ())

    def data(self, meter: Meter) -> bytes | AsyncIterator[memoryview]:
        """What to hand aiohttp as ``data``: the buffer itself (counted in ``meter`` at once),
        or a fresh stream of slices (counted as they go)."""
        if self.size_bytes <= self.CHUNK_BYTES:
            meter.body_bytes += self.size_bytes
            return self._buffer
        return self._stream(meter)

    async def _stream(self, meter: Meter) -> AsyncIterator[memoryview]:
        for piece in self.pieces:
            yield piece
            meter.body_bytes += len(piece)


async def authenticate(
    session: aiohttp.ClientSession, auth_url: str, user: str, key: str
) -> Account:
    headers = {"X-Auth-User": user, "X-Auth-Key": key}
    async with session.get(auth_url, headers=headers) as response:
        await response.read()
        if not 200 <= response.status < 300:
            raise StatusError("GET", auth_url, response.status)
        url, token = response.headers.get("X-Storage-Url"), response.headers.get("X-Auth-Token")
    if not url or not token:
        raise RuntimeError(f"{auth_url} answered {response.status} without a URL or token")
    return Account(url.rstrip("/"), token)


class SwiftAPI:
    """Calls on one account's containers and objects."""

    def __init__(
        self, session: aiohttp.ClientSession, account: Account, meter: Meter | None = None
    ) -> None:
        self.session = session
        self.account = account
        self.meter = meter or Meter()
        self._auth = {"X-Auth-Token": account.token}

    def url(self, container: str, name: str | None = None) -> str:
        path = f"{self.account.storage_url}/{quote(container, safe='')}"
        return path if name is None else f"{path}/{quote(name)}"

    async def put_container(self, container: str) -> None:
        async with self.session.put(self.url(container), headers=self._auth) as response:
            await response.read()
            _expect(response, "PUT", container, (201, 202))

    async def put_object(self, container: str, name: str, body: Body) -> int:
        headers = {
            **self._auth,
            "Content-Length": str(body.size_bytes),
            "Content-Type": "application/octet-stream",
        }
        url = self.url(container, name)
        async with self.session.put(url, data=body.data(self.meter), headers=headers) as response:
            await response.read()
            _expect(response, "PUT", name, (201,))
        return body.size_bytes

    async def get_object(self, container: str, name: str) -> int:
        async with self.session.get(self.url(container, name), headers=self._auth) as response:
            _expect(response, "GET", name, (200,))
            if response.content_length is not None and response.content_length <= Body.CHUNK_BYTES:
                received = len(await response.read())
                self.meter.body_bytes += received
            else:  # large: count the chunks as they come, keep none
                received = 0
                while chunk := await response.content.readany():
                    received += len(chunk)
                    self.meter.body_bytes += len(chunk)
            if response.content_length is not None and received != response.content_length:
                raise StatusError("GET (short body)", name, response.status)
        return received

    async def head_object(self, container: str, name: str) -> int:
        async with self.session.head(self.url(container, name), headers=self._auth) as response:
            _expect(response, "HEAD", name, (200,))
        return 0

    async def delete_object(self, container: str, name: str) -> None:
        async with self.session.delete(self.url(container, name), headers=self._auth) as response:
            await response.read()
            _expect(response, "DELETE", name, (204, 404))

    async def get_listing(
        self, container: str, limit: int, marker: str = "", *, allow_empty: bool = False
    ) -> bytes:
        """One json listing page, raw: the benchmark does not pay to parse what it times.
        An empty container (204) is an error unless ``allow_empty``."""
        params = {"format": "json", "limit": str(limit)}
        if marker:
            params["marker"] = marker
        headers = self._auth
        async with self.session.get(self.url(container), params=params, headers=headers) as r:
            body = await r.read()
            _expect(r, "GET", f"{container}?format=json", (200, 204) if allow_empty else (200,))
        return body

    async def listing_bytes(self, container: str, limit: int) -> int:
        received = len(await self.get_listing(container, limit))
        self.meter.body_bytes += received
        return received

    async def list_all(self, container: str) -> dict[str, int]:
        """Every object in ``container``: name -> bytes, page by page."""
        found: dict[str, int] = {}
        marker = ""
        while True:
            page = await self.get_listing(container, LISTING_PAGE, marker, allow_empty=True)
            rows = json.loads(page) if page else []
            found.update((row["name"], row["bytes"]) for row in rows)
            if len(rows) < LISTING_PAGE:
                return found
            marker = rows[-1]["name"]

    async def ensure_objects(
        self, container: str, names: list[str], body: Body, concurrency: int
    ) -> int:
        """PUT whichever of ``names`` the listing lacks (or has at another size); returns how
        many PUTs that took.  Untimed, so it retries: a round PUTs what is missing and a failed
        PUT (Swift's tempauth answers 401 when memcached is slow under load) is left for the
        next round, as is a container update that went to async_pending; three rounds."""
        await retrying(lambda: self.put_container(container))
        written = 0
        failures: list[str] = []

        async def put(name: str) -> None:
            try:
                await self.put_object(container, name, body)
            except (StatusError, aiohttp.ClientError) as exc:
                failures.append(str(exc))

        for _ in range(3):
            have = await retrying(lambda: self.list_all(container))
            missing = [n for n in names if have.get(n) != body.size_bytes]
            if not missing:
                return written
            await bounded(missing, put, concurrency)
            written += len(missing)
        raise RuntimeError(
            f"{container}: {len(missing)} objects still missing after 3 rounds "
            f"({len(failures)} PUTs failed, e.g. {failures[:1]})"
        )


async def retrying(call: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """``call()`` again after a failed request, up to ``attempts`` in all; for untimed setup
    only (a measured request is never retried: its failure is counted)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except (StatusError, aiohttp.ClientError):
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


async def bounded(
    items: Iterable[str], call: Callable[[str], Awaitable[object]], concurrency: int
) -> None:
    """``call`` on every item, at most ``concurrency`` at a time; the first failure raises."""
    iterator = iter(items)

    async def lane() -> None:
        for item in iterator:  # lanes share the iterator: each item is taken once
            await call(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(lane())


def _expect(
    response: aiohttp.ClientResponse, method: str, what: str, statuses: tuple[int, ...]
) -> None:
    if response.status not in statuses:
        raise StatusError(method, what, response.status)
