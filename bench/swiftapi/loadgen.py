"""`torus bench`: a load generator for the Swift API (Torus's proxy or OpenStack Swift's).

    torus bench --auth http://127.0.0.1:8080/auth/v1.0 --workload get --size 4K \\
        --concurrency 16 --duration 15 --pid-dir DATA/run [--json]
    python bench/swiftapi/loadgen.py ...          # the same, from a checkout

Authenticates with v1 auth, prepares what the workload reads (GET/HEAD: ``--objects`` objects of
``--size``; list: a container of ``--objects`` objects, default 10,000), then keeps
``--concurrency`` requests in flight for a warm-up and ``--duration`` measured seconds, over a
keep-alive aiohttp pool on uvloop.  Reports ops/s, MiB/s, p50/p99 latency, errors (any
unexpected status; never counted as operations), and CPU per operation: of the server process
trees (``--server-pids`` / ``--pid-dir``, read from /proc), of this load generator, and what
the whole machine was busy with.  Exit status 1 if any request failed.  Method:
docs/benchmarks.md, "Swift API (torus bench)".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as `torus bench` (tools/cli.py runs this file) or directly
    sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import engine  # noqa: E402
import procstat  # noqa: E402
import uvloop  # noqa: E402
from api import (  # noqa: E402
    Account,
    Body,
    StatusError,
    SwiftAPI,
    authenticate,
    bounded,
    retrying,
)
from measure import Meter, format_size, parse_size  # noqa: E402
from rawapi import RawSwiftAPI  # noqa: E402

WORKLOADS = ("put", "get", "head", "list")
SETUP_CONCURRENCY = 32  # preparing objects and cleaning up, outside the measured window
LISTING_OBJECTS = 10_000


def default_objects(workload: str, size_bytes: int, concurrency: int) -> int:
    """How many objects GET/HEAD cycle over (≤1 GiB of them, ≥ one per lane, ≤1,000), or how
    many the listed container holds."""
    if workload == "list":
        return LISTING_OBJECTS
    return max(concurrency, min(1000, (1 << 30) // max(size_bytes, 1)))


def default_container(workload: str, size_bytes: int, objects: int) -> str:
    if workload == "list":
        return f"bench-list-{objects}"
    family = "put" if workload == "put" else "get"  # HEAD reads GET's objects
    return f"bench-{family}-{format_size(size_bytes)}"


def object_name(i: int) -> str:
    return f"obj-{i:06d}"


def server_roots(args: argparse.Namespace) -> list[int]:
    roots = set(args.server_pids)
    for directory in args.pid_dir:
        roots.update(procstat.pids_from_dir(Path(directory)))
    dead = sorted(pid for pid in roots if not procstat.alive(pid))
    if dead:
        raise SystemExit(f"torus bench: server pids not running (stale pid files?): {dead}")
    return sorted(roots)


async def bench(args: argparse.Namespace, roots: list[int]) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=args.timeout)
    body = Body(args.size)
    setup_connector = aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
    async with aiohttp.ClientSession(connector=setup_connector, timeout=timeout) as setup:
        account = await authenticate(setup, args.auth, args.user, args.key)
        prepare_started = time.perf_counter()
        prepared = await prepare(SwiftAPI(setup, account), args, body)
        prepare_s = time.perf_counter() - prepare_started
    if args.prepare_only:
        return {"workload": args.workload, "prepared_objects": prepared, "prepare_s": prepare_s}

    summary, recorder, tag = await measure(args, account, body, roots, timeout)

    cleanup_failed = 0
    if args.cleanup and tag is not None:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=SETUP_CONCURRENCY), timeout=timeout
        ) as cleaner:
            names = [f"{tag}/{n:09d}" for n in recorder.succeeded]
            cleanup_failed = await delete_all(SwiftAPI(cleaner, account), args.container, names)

    return {
        "workload": args.workload,
        "size_bytes": args.size,
        "concurrency": args.concurrency,
        "client": args.client,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "container": args.container,
        "objects": args.objects if args.workload != "put" else None,
        "storage_url": account.storage_url,
        "server_pids": roots,
        "prepared_objects": prepared,
        "prepare_s": round(prepare_s, 3),
        "cleanup_failed": cleanup_failed,
        **summary,
        "error_samples": recorder.error_samples,
        "load_avg_1m": os.getloadavg()[0],
    }


async def measure(
    args: argparse.Namespace,
    account: Account,
    body: Body,
    roots: list[int],
    timeout: aiohttp.ClientTimeout,
) -> tuple[dict[str, Any], engine.Recorder, str | None]:
    """The measured loop over a fresh client: summary, record, and a PUT run's name prefix."""
    window = engine.Window(
        args.warmup, args.duration, request_timeout_s=args.timeout, max_errors=args.max_errors
    )
    keep = args.cleanup and args.workload == "put"
    meter = Meter()
    if args.client == "raw":
        raw = RawSwiftAPI(account, meter)
        try:
            op, tag = make_op(raw, args, body)
            summary, recorder = await engine.run(
                op, meter, args.concurrency, window, roots, keep_succeeded=keep
            )
        finally:
            raw.close()
        return summary, recorder, tag
    read_bufsize = max(1 << 16, min(args.size, 1 << 20))  # bigger reads for bigger bodies
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=args.concurrency),
        timeout=timeout,
        read_bufsize=read_bufsize,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        op, tag = make_op(SwiftAPI(session, account, meter), args, body)
        summary, recorder = await engine.run(
            op, meter, args.concurrency, window, roots, keep_succeeded=keep
        )
    return summary, recorder, tag


async def prepare(api: SwiftAPI, args: argparse.Namespace, body: Body) -> int:
    """Make what the workload needs; returns how many objects had to be PUT."""
    if args.workload == "put":
        await retrying(lambda: api.put_container(args.container))
        return 0
    names = [object_name(i) for i in range(args.objects)]
    return await api.ensure_objects(args.container, names, body, SETUP_CONCURRENCY)


async def delete_all(api: SwiftAPI, container: str, names: list[str]) -> int:
    """DELETE ``names`` (each retried), after the measured window; returns how many failed."""
    failed = 0

    async def delete(name: str) -> None:
        nonlocal failed
        try:
            await retrying(lambda: api.delete_object(container, name))
        except (StatusError, aiohttp.ClientError):
            failed += 1

    await bounded(names, delete, SETUP_CONCURRENCY)
    return failed


def make_op(
    api: SwiftAPI | RawSwiftAPI, args: argparse.Namespace, body: Body
) -> tuple[engine.Op, str | None]:
    """The workload's request as ``op(n)``, and for PUTs the name prefix of this run."""
    container, objects = args.container, args.objects
    if args.workload == "put":
        tag = f"put-{time.time_ns():x}"  # new names every run: every PUT creates an object

        async def put(n: int) -> int:
            return await api.put_object(container, f"{tag}/{n:09d}", body)

        return put, tag
    if args.workload == "get":

        async def get(n: int) -> int:
            return await api.get_object(container, object_name(n % objects))

        return get, None
    if args.workload == "head":

        async def head(n: int) -> int:
            return await api.head_object(container, object_name(n % objects))

        return head, None

    async def listing(n: int) -> int:
        return await api.listing_bytes(container, args.list_limit)

    return listing, None


def describe(result: dict[str, Any]) -> str:
    def ms(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.2f} ms"

    return (
        f"{result['workload']} {format_size(result['size_bytes'])} c={result['concurrency']} "
        f"{result['window_s']:.1f}s: {result['ops']} ops, {result['ops_per_s']:.1f} ops/s, "
        f"{result['mib_per_s']:.1f} MiB/s, p50 {ms(result['latency_ms_p50'])}, "
        f"p99 {ms(result['latency_ms_p99'])}, errors {result['errors']}\n"
        f"  CPU per op: server {ms(result['server_cpu_ms_per_op'])} "
        f"({result['server_cores']:.2f} cores, {result['server_processes']} processes), "
        f"client {ms(result['client_cpu_ms_per_op'])} ({result['client_cores']:.2f} cores)\n"
        f"  machine busy {result['box_busy_cores']:.2f} cores: kernel "
        f"{result['kernel_cores']:.2f}, foreign {result['foreign_cores']:.2f}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torus bench",
        description="Load generator for the Swift API: ops/s, MiB/s, latency, server CPU per op.",
    )
    add = parser.add_argument
    add("--auth", default="http://127.0.0.1:8080/auth/v1.0", help="v1 auth URL (%(default)s)")
    add("--user", default="test:tester", help="X-Auth-User (%(default)s)")
    add("--key", default="testing", help="X-Auth-Key (%(default)s)")
    add("--workload", choices=WORKLOADS, default="put", help="(%(default)s)")
    add("--size", type=parse_size, default=None, help="object size: 4K, 1M, 64M (4K; list: 0)")
    add("--concurrency", type=int, default=16, help="requests in flight (%(default)s)")
    add("--duration", type=float, default=15.0, help="measured seconds (%(default)s)")
    add("--warmup", type=float, default=2.0, help="seconds before measuring (%(default)s)")
    add("--container", help="container (default: bench-put-SIZE, bench-get-SIZE, bench-list-N)")
    add("--objects", type=int, help="GET/HEAD: objects cycled over; list: objects listed")
    add("--list-limit", type=int, default=10_000, help="list: limit= of each GET (%(default)s)")
    add("--server-pids", type=_pids, default=[], help="comma-separated root pids of the servers")
    add("--pid-dir", action="append", default=[], help="directory of *.pid files (repeatable)")
    add("--cleanup", action="store_true", help="put: DELETE this run's objects afterwards")
    add("--prepare-only", action="store_true", help="make the objects the workload reads, stop")
    add(
        "--client",
        choices=("raw", "aiohttp"),
        default="raw",
        help="measured loop's HTTP client: "
        "raw (lean HTTP/1.1 keep-alive, the default) or aiohttp; setup always uses aiohttp",
    )
    add("--timeout", type=float, default=300.0, help="per-request timeout s (%(default)s)")
    add("--max-errors", type=int, default=100, help="stop the run after this many errors")
    add("--json", action="store_true", help="print one JSON object (the summary goes to stderr)")
    return parser


def _pids(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size is None:
        args.size = 0 if args.workload == "list" else 4096
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        raise SystemExit("torus bench: need --concurrency ≥ 1, --duration > 0, --warmup ≥ 0")
    if args.objects is None:
        args.objects = default_objects(args.workload, args.size, args.concurrency)
    if args.container is None:
        args.container = default_container(args.workload, args.size, args.objects)
    roots = server_roots(args)
    result = uvloop.run(bench(args, roots))
    if args.prepare_only:
        print(json.dumps(result) if args.json else f"prepared: {result}", flush=True)
        return 0
    text = describe(result)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(result), flush=True)
    else:
        print(text, flush=True)
    for sample in result["error_samples"]:
        print(f"  error: {sample}", file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
