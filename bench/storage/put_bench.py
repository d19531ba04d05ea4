"""4 KiB PUTs straight to one Torus object server, one cell of the group-commit benchmark.

    python bench/storage/put_bench.py WORKDIR --max-batch N --concurrency C [--duration S]

Starts ``torus serve object`` (one process, one device, max_batch N) under WORKDIR, then
C client coroutines, over an aiohttp connection pool of C, PUT 4 KiB bodies to new object
names for a warm-up, then for ``--duration`` seconds.  Prints one JSON line: PUTs/s, p50/p99
latency, CPU seconds per PUT of the server process (utime+stime from /proc) and of this
client, and the commits (LMDB transactions) the server made over the whole run.
No X-Container-* headers: no container updates, only the object write and its commit.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import lmdb
import uvloop
from common import DEVICE, cpu_seconds, percentile, start_server

BODY_BYTES = 4096
PARTITIONS = 1024


async def load(port: int, pid: int, concurrency: int, warmup_s: float, duration_s: float) -> dict:
    body = os.urandom(BODY_BYTES)
    base = time.time()
    counter = itertools.count()
    latencies: list[float] = []  # of the PUTs that ended inside the measured window
    done = [0]  # PUTs that succeeded, warm-up and stragglers too
    window = [float("inf"), float("inf")]  # [start, end], perf_counter
    errors: list[str] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while True:
            n = next(counter)
            headers = {
                # Unique and increasing: one 10 µs tick per PUT, from the start time.
                "X-Timestamp": f"{base + n / 100_000:016.5f}",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(BODY_BYTES),
            }
            url = f"http://127.0.0.1:{port}/{DEVICE}/{n % PARTITIONS}/AUTH_bench/c/o{n:09d}"
            started = time.perf_counter()
            async with session.put(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 201:
                    errors.append(f"{response.status} {url}")
                    return
            ended = time.perf_counter()
            done[0] += 1
            if ended > window[1]:
                return
            if ended >= window[0]:
                latencies.append(ended - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(client(session)) for _ in range(concurrency)]
        await asyncio.sleep(warmup_s)
        window[0] = time.perf_counter()
        server_marks, client_mark = cpu_seconds(pid), time.process_time()
        window[1] = window[0] + duration_s
        await asyncio.sleep(duration_s)
        elapsed = time.perf_counter() - window[0]
        (user0, sys0), (user1, sys1) = server_marks, cpu_seconds(pid)
        server_user, server_sys = user1 - user0, sys1 - sys0
        client_cpu = time.process_time() - client_mark
        await asyncio.gather(*tasks)
    if errors:
        sys.exit(f"{len(errors)} PUTs failed, first: {errors[0]}")
    latencies.sort()
    count = len(latencies)
    return {
        "puts": count,
        "seconds": elapsed,
        "puts_per_s": count / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "server_cpu_ms_per_put": (server_user + server_sys) / count * 1000,
        "server_sys_ms_per_put": server_sys / count * 1000,
        "client_cpu_ms_per_put": client_cpu / count * 1000,
        "server_cpu_util": (server_user + server_sys) / elapsed,
        "client_cpu_util": client_cpu / elapsed,
        "puts_total": done[0],
    }


def commits(path: Path) -> int:
    """Write transactions the (stopped) server committed: LMDB's last transaction id."""
    env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=8)
    try:
        return env.info()["last_txnid"]
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--max-batch", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="put-") as workdir:
        server = start_server("object", Path(workdir), max_batch=args.max_batch)
        try:
            assert server.proc is not None
            work = load(server.port, server.proc.pid, args.concurrency, args.warmup, args.duration)
            result = uvloop.run(work)  # the server's event loop, too
        finally:
            status = server.stop()
        if status:
            sys.exit(f"object server exited with {status}:\n{server.log()}")
        result["commits"] = commits(server.devices / DEVICE / "objects.lmdb")
    cell = {"side": "torus", "max_batch": args.max_batch, "concurrency": args.concurrency}
    print(json.dumps({**cell, "load_avg_1m": os.getloadavg()[0], **result}), flush=True)


if __name__ == "__main__":
    main()
