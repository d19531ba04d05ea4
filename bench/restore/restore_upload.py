"""Storing the benchmark's objects through the proxy (Swift API, v1 auth), many at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from restore_mix import Spec, body

REQUEST_TIMEOUT_S = 300.0  # a 40 MiB PUT on two busy cores, three replicas
RETRIES = 2  # a PUT that fails is tried this many more times before the run gives up


@dataclass(frozen=True)
class Uploaded:
    etags: dict[str, str]  # object name -> ETag the proxy answered
    elapsed_s: float
    retries: int


async def auth(
    session: aiohttp.ClientSession, auth_url: str, user: str, key: str
) -> tuple[str, str]:
    """(storage URL, token) from v1 auth."""
    headers = {"X-Auth-User": user, "X-Auth-Key": key}
    async with session.get(auth_url, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"auth {auth_url}: {response.status}")
        return response.headers["X-Storage-Url"], response.headers["X-Auth-Token"]


async def upload(
    auth_url: str, user: str, key: str, specs: list[Spec], pool: bytes, concurrency: int
) -> Uploaded:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        url, token = await auth(session, auth_url, user, key)
        headers = {"X-Auth-Token": token}
        for container in sorted({spec.container for spec in specs}):
            async with session.put(f"{url}/{container}", headers=headers) as response:
                if response.status not in (201, 202):
                    raise RuntimeError(f"PUT container {container}: {response.status}")
        etags: dict[str, str] = {}
        retries = 0
        queue: asyncio.Queue[Spec] = asyncio.Queue()
        for spec in specs:
            queue.put_nowait(spec)

        async def worker() -> None:
            nonlocal retries
            while not queue.empty():
                spec = queue.get_nowait()
                data = body(spec, pool)
                for attempt in range(RETRIES + 1):
                    target = f"{url}/{spec.container}/{spec.name}"
                    try:
                        async with session.put(target, data=data, headers=headers) as response:
                            await response.read()
                            if response.status == 201:
                                etags[spec.name] = response.headers["Etag"].strip('"')
                                break
                            problem = f"status {response.status}"
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        problem = repr(exc)
                    if attempt == RETRIES:
                        raise RuntimeError(f"PUT {target}: {problem}")
                    retries += 1

        started = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        return Uploaded(etags, time.monotonic() - started, retries)
