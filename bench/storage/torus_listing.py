"""Torus's side of the listing benchmark: a real ``torus serve container`` over LMDB.

    python bench/storage/torus_listing.py WORKDIR ROWS [ROWS ...] [--http-fill-max N]

For each size, in a fresh directory: fills one container with ROWS object rows, then starts
the container server afresh and times GET listings of a 10,000-row page from the middle of
the container, with the Swift side's names, marker, client (urllib) and request count
(bench/storage/swift_listing.py).  Sizes up to ``--http-fill-max`` are filled over HTTP, as
object servers would (PUT of each row, ``--concurrency`` at a time, the server group-
committing them); larger ones through the ContainerBroker API in-process with the server
stopped, ten thousand rows per merge, as the Swift side fills.  One JSON line per size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import lmdb
from common import ACCOUNT, DEVICE, SECRET, middle_marker, object_name, start_server

from containerd_.broker import ContainerBroker  # the repo: on the path once common is imported
from containerd_.rows import ObjectRow
from service.timestamp import Timestamp

PAGE = 10_000
REQUESTS = 7
ROW = {"size": 4096, "content_type": "image/jpeg", "etag": "d41d8cd98f00b204e9800998ecf8427e"}


async def fill_http(port: int, container: str, rows: int, concurrency: int, ts: str) -> None:
    base = f"http://127.0.0.1:{port}/{DEVICE}/0/{ACCOUNT}/{container}"
    row_headers = {
        "X-Timestamp": ts,
        "X-Size": str(ROW["size"]),
        "X-Content-Type": ROW["content_type"],
        "X-Etag": ROW["etag"],
    }
    next_index = iter(range(rows))

    async def client(session: aiohttp.ClientSession) -> None:
        for index in next_index:  # shared: each row goes to exactly one client
            url = f"{base}/{urllib.parse.quote(object_name(index))}"
            async with session.put(url, headers=row_headers) as response:
                await response.read()
                if response.status != 201:
                    raise RuntimeError(f"PUT {url}: {response.status}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.put(base, headers={"X-Timestamp": ts}) as response:
            if response.status not in (201, 202):
                raise RuntimeError(f"PUT {base}: {response.status}")
        await asyncio.gather(*(client(session) for _ in range(concurrency)))


async def fill_broker(devices: Path, container: str, rows: int, ts: str) -> None:
    broker = ContainerBroker(str(devices), SECRET.encode("utf-8"))
    try:
        timestamp = Timestamp.parse(ts)
        await broker.create(DEVICE, ACCOUNT, container, timestamp)
        for start in range(0, rows, 10_000):
            batch = [
                ObjectRow.put(object_name(i), timestamp, **ROW)
                for i in range(start, min(rows, start + 10_000))
            ]
            await broker.merge_rows(DEVICE, ACCOUNT, container, batch)
    finally:
        broker.close()


def time_page(port: int, container: str, rows: int) -> list[float]:
    marker = middle_marker(rows)
    url = (
        f"http://127.0.0.1:{port}/{DEVICE}/0/{ACCOUNT}/{container}"
        f"?format=json&limit={PAGE}&marker={urllib.parse.quote(marker)}"
    )
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            body = response.read()
        times.append(time.perf_counter() - started)
        listing = json.loads(body)
        assert len(listing) == min(PAGE, rows - rows // 2), len(listing)
        assert listing[0]["name"] > marker, (listing[0]["name"], marker)
    return times


def commits(devices: Path) -> int:
    """Write transactions committed to the device's container environment."""
    env = lmdb.open(str(devices / DEVICE / "containers.lmdb"), readonly=True, lock=False, max_dbs=8)
    try:
        return env.info()["last_txnid"]
    finally:
        env.close()


def run_size(workdir: Path, rows: int, http_fill_max: int, concurrency: int) -> dict:
    container = f"c{rows}"
    ts = f"{time.time():016.5f}"
    how = "http" if rows <= http_fill_max else "broker"
    server = start_server("container", workdir)  # with its device: the broker fill needs it
    started = time.perf_counter()
    try:
        if how == "http":
            asyncio.run(fill_http(server.port, container, rows, concurrency, ts))
    finally:
        server.stop()
    if how == "broker":
        asyncio.run(fill_broker(server.devices, container, rows, ts))
    fill_s = time.perf_counter() - started
    server.start()
    try:
        times = sorted(time_page(server.port, container, rows))
    finally:
        status = server.stop()
    if status:
        sys.exit(f"container server exited with {status}:\n{server.log()}")
    return {
        "side": "torus",
        "rows": rows,
        "fill": how,
        "fill_s": fill_s,
        "fill_rows_per_s": rows / fill_s,
        "fill_commits": commits(server.devices),
        "page_s_median": times[len(times) // 2],
        "page_s": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("rows", type=int, nargs="+")
    parser.add_argument("--http-fill-max", type=int, default=10**9, help="larger: broker fill")
    parser.add_argument("--concurrency", type=int, default=128, help="HTTP fill requests")
    args = parser.parse_args()
    for rows in args.rows:
        with tempfile.TemporaryDirectory(dir=args.workdir, prefix=f"list-{rows}-") as workdir:
            result = run_size(Path(workdir), rows, args.http_fill_max, args.concurrency)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
