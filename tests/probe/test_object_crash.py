"""Crash probe: SIGKILL the object server mid-write; every acknowledged PUT must survive.

Sixteen writers stream PUTs of mixed sizes (inline and file-backed bodies) at a real
`torus serve object` process; part-way through, the process is SIGKILLed, with requests in
flight.  The server then restarts on the same devices, and every PUT that was answered 201
must read back with the MD5 it was acknowledged with.

A SIGKILL loses the process, not the page cache: this proves the ordering (201 only after
the commit), not fsync against power loss.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from server_process import ServerProcess

from service.timestamp import Timestamp

WRITERS = 16
MIN_SIZE_BYTES, MAX_SIZE_BYTES = 1024, 200 * 1024
RUN_S = 3.0
CHUNK_BYTES = 16 * 1024


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    """The body a piece at a time, so that some PUTs are mid-body when the kill comes."""
    for start in range(0, len(body), CHUNK_BYTES):
        yield body[start : start + CHUNK_BYTES]
        await asyncio.sleep(0)


async def writer(
    session: aiohttp.ClientSession,
    base: str,
    number: int,
    rng: random.Random,
    killed: asyncio.Event,
    acknowledged: dict[str, str],
) -> int:
    """PUT until the server is gone; the number of PUTs that got no answer."""
    unanswered = 0
    sequence = 0
    while not killed.is_set():
        name = f"w{number:02d}-{sequence:05d}"
        sequence += 1
        body = rng.randbytes(rng.randint(MIN_SIZE_BYTES, MAX_SIZE_BYTES))
        headers = {
            "X-Timestamp": Timestamp.now().normal,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body)),
        }
        try:
            async with session.put(f"{base}/{name}", data=chunks(body), headers=headers) as r:
                await r.read()
                if r.status == 201:
                    md5 = hashlib.md5(body).hexdigest()
                    assert r.headers["ETag"] == f'"{md5}"'
                    acknowledged[name] = md5
        except (aiohttp.ClientError, OSError):
            unanswered += 1  # the kill came first: neither promised nor refused
    return unanswered


async def write_until_killed(server: ServerProcess, seed: int) -> tuple[dict[str, str], int]:
    acknowledged: dict[str, str] = {}
    killed = asyncio.Event()
    base = f"http://127.0.0.1:{server.port}/sda/7/AUTH_probe/crash"
    rngs = [random.Random(seed * 100 + i) for i in range(WRITERS)]
    connector = aiohttp.TCPConnector(limit=WRITERS)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(writer(session, base, i, rngs[i], killed, acknowledged))
            for i in range(WRITERS)
        ]
        await asyncio.sleep(RUN_S * random.Random(seed).uniform(0.5, 0.9))
        await asyncio.to_thread(server.kill)
        killed.set()
        unanswered = sum(await asyncio.gather(*tasks))
    return acknowledged, unanswered


async def read_back(server: ServerProcess, acknowledged: dict[str, str]) -> list[str]:
    """The names whose body is missing or differs from what was acknowledged."""
    base = f"http://127.0.0.1:{server.port}/sda/7/AUTH_probe/crash"
    lost = []
    async with aiohttp.ClientSession() as session:
        for name, md5 in sorted(acknowledged.items()):
            async with session.get(f"{base}/{name}") as response:
                body = await response.read()
                if response.status != 200 or hashlib.md5(body).hexdigest() != md5:
                    lost.append(f"{name}: {response.status}")
    return lost


@pytest.mark.slow
def test_acknowledged_puts_survive_a_sigkill(tmp_path: Path) -> None:
    seed = int(time.time())
    print(f"crash probe seed={seed}")
    server = ServerProcess("object", tmp_path, options={"inline_max_bytes": 64 * 1024})
    (server.devices / "sda").mkdir()
    server.start()
    try:
        acknowledged, unanswered = asyncio.run(write_until_killed(server, seed))
        assert acknowledged, f"no PUT was acknowledged before the kill:\n{server.log()}"
        server.start()  # the same devices: LMDB and data files as the kill left them
        lost = asyncio.run(read_back(server, acknowledged))
    finally:
        server.stop()
    print(
        f"crash probe: seed={seed} acknowledged={len(acknowledged)} "
        f"verified={len(acknowledged) - len(lost)} lost={len(lost)} unanswered={unanswered}"
    )
    assert not lost, f"seed={seed}: acknowledged but not read back: {lost[:20]}"
