"""One run of the S3 benchmark: PUT or GET objects over SigV4 against one S3 endpoint.

    python bench/s3api/s3loadgen.py --endpoint http://127.0.0.1:8080 --workload get \\
        --size 4K --concurrency 16 --duration 15 --pid-dir DATA/run [--json]

The S3 twin of bench/swiftapi/loadgen.py, on the same engine, raw HTTP client, CPU readings
and summary (imported from there, not copied): C lanes in a closed loop, a warm-up, a measured
window, ops/s, MiB/s, p50/p99 and CPU per op of the servers, of this process and of the box.
Requests are signed by bench/s3api/signer.py and formed as boto3 forms them (s3raw.py says
what that is).  Setup is untimed and goes through boto3 itself (the bucket, the listing of what
exists), with the missing objects PUT by the raw client after one raw PUT and GET have been
checked, so a signature the server refuses stops the run with its status before it starts.
Besides the engine's errors, every answer's status is counted (``statuses``, ``non_2xx``).
Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SWIFTAPI = HERE.parent / "swiftapi"
for directory in (SWIFTAPI, HERE):  # bench/ is not a package: scripts import their siblings
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))

import boto3  # noqa: E402
import engine  # noqa: E402
import uvloop  # noqa: E402
from api import Body, StatusError, bounded  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402
from loadgen import default_objects, describe, object_name, server_roots  # noqa: E402
from measure import Meter, format_size, parse_size  # noqa: E402
from rawhttp import ProtocolError  # noqa: E402
from s3raw import Payload, RawS3API  # noqa: E402
from signer import Signer  # noqa: E402

WORKLOADS = ("put", "get")
SETUP_CONCURRENCY = 32
CHECK_KEY = "s3bench-raw-check"
SETUP_ERRORS = (StatusError, ProtocolError, OSError)


def default_bucket(workload: str, size_bytes: int) -> str:
    """S3 bucket names are lower-case: s3bench-put-4k, s3bench-get-64m."""
    return f"s3bench-{workload}-{format_size(size_bytes).lower()}"


def boto3_client(args: argparse.Namespace) -> Any:
    """boto3 as a user would make it, path-style, no retries (setup reports, never hides)."""
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=args.secret_key,
        region_name=args.region,
        config=config,
    )


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def listed_sizes(s3: Any, bucket: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        sizes.update((item["Key"], item["Size"]) for item in page.get("Contents", ()))
    return sizes


async def check_raw(api: RawS3API, bucket: str) -> None:
    """One PUT and GET of the bench's own signing: a refusal is a clear error, not a 403 storm."""
    body = Body(4096)
    try:
        await api.put_object(bucket, CHECK_KEY, body, Payload.of(body))
        got = await api.get_object(bucket, CHECK_KEY)
    except StatusError as exc:
        raise SystemExit(
            f"s3loadgen: {api.host} refused the bench's own signed request ({exc}); "
            "boto3's was accepted (run.py checks it first): see bench/s3api/signer.py"
        ) from None
    if got != body.size_bytes:
        raise SystemExit(f"s3loadgen: GET {CHECK_KEY} gave {got} bytes, not {body.size_bytes}")


async def prepare(api: RawS3API, s3: Any, args: argparse.Namespace, body: Body) -> int:
    """The bucket, the raw check, and for GET the objects it reads; how many had to be PUT."""
    ensure_bucket(s3, args.bucket)
    await check_raw(api, args.bucket)
    if args.workload == "put":
        return 0
    payload = Payload.of(body)
    names = [object_name(i) for i in range(args.objects)]
    written, failures = 0, []

    async def put(name: str) -> None:
        try:
            await api.put_object(args.bucket, name, body, payload)
        except SETUP_ERRORS as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    for _ in range(3):  # untimed, so a failed PUT is retried in the next round
        have = listed_sizes(s3, args.bucket)
        missing = [n for n in names if have.get(n) != body.size_bytes]
        if not missing:
            return written
        await bounded(missing, put, SETUP_CONCURRENCY)
        written += len(missing)
    raise SystemExit(
        f"s3loadgen: {args.bucket}: {len(missing)} objects still missing after 3 rounds "
        f"({len(failures)} PUTs failed, e.g. {failures[:1]})"
    )


async def bench(args: argparse.Namespace, roots: list[int]) -> dict[str, Any]:
    signer = Signer(args.access_key, args.secret_key, args.region)
    body = Body(args.size)
    s3 = boto3_client(args)
    setup = RawS3API(args.endpoint, signer, Meter(), expect=args.expect)
    try:
        started = time.perf_counter()
        prepared = await prepare(setup, s3, args, body)
        prepare_s = time.perf_counter() - started
    finally:
        setup.close()
    if args.prepare_only:
        return {"workload": args.workload, "prepared_objects": prepared, "prepare_s": prepare_s}

    meter = Meter()
    api = RawS3API(args.endpoint, signer, meter, expect=args.expect)
    payload = Payload.of(body)  # before the window: every PUT sends these same bytes
    tag = f"put-{time.time_ns():x}"
    bucket, objects = args.bucket, args.objects

    async def put(n: int) -> int:
        return await api.put_object(bucket, f"{tag}/{n:09d}", body, payload)

    async def get(n: int) -> int:
        return await api.get_object(bucket, object_name(n % objects))

    window = engine.Window(
        args.warmup, args.duration, request_timeout_s=args.timeout, max_errors=args.max_errors
    )
    keep = args.cleanup and args.workload == "put"
    op = put if args.workload == "put" else get
    try:
        summary, recorder = await engine.run(
            op, meter, args.concurrency, window, roots, keep_succeeded=keep
        )
    finally:
        api.close()
    statuses = dict(sorted(api.statuses.items()))
    sign_us = api.sign_s / api.signed * 1e6 if api.signed else float("nan")

    cleanup_failed = 0
    if keep:
        cleaner = RawS3API(args.endpoint, signer, Meter())
        failed: list[str] = []

        async def delete(name: str) -> None:
            try:
                await cleaner.delete_object(bucket, name)
            except SETUP_ERRORS as exc:
                failed.append(str(exc))

        try:
            names = [f"{tag}/{n:09d}" for n in recorder.succeeded]
            await bounded(names, delete, SETUP_CONCURRENCY)
        finally:
            cleaner.close()
        cleanup_failed = len(failed)

    return {
        "workload": args.workload,
        "size_bytes": args.size,
        "concurrency": args.concurrency,
        "client": "raw-s3-sigv4",
        "payload": "signed sha256 + crc32 header" if args.workload == "put" else "checksum-mode",
        "expect_100": args.expect,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "endpoint": args.endpoint,
        "bucket": bucket,
        "objects": objects if args.workload != "put" else None,
        "server_pids": roots,
        "prepared_objects": prepared,
        "prepare_s": round(prepare_s, 3),
        "cleanup_failed": cleanup_failed,
        **summary,
        "statuses": {str(code): count for code, count in statuses.items()},
        "non_2xx": sum(count for code, count in statuses.items() if not 200 <= code < 300),
        "sign_us_per_op": sign_us,
        "error_samples": recorder.error_samples,
        "load_avg_1m": os.getloadavg()[0],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3loadgen", description="S3 load generator (SigV4): ops/s, MiB/s, CPU per op."
    )
    add = parser.add_argument
    add("--endpoint", default="http://127.0.0.1:8080", help="S3 endpoint (%(default)s)")
    add("--access-key", default="test:tester", help="(%(default)s)")
    add("--secret-key", default="testing", help="(%(default)s)")
    add("--region", default="us-east-1", help="(%(default)s)")
    add("--workload", choices=WORKLOADS, default="put", help="(%(default)s)")
    add("--size", type=parse_size, default=4096, help="object size: 4K, 64M (4K)")
    add("--concurrency", type=int, default=16, help="requests in flight (%(default)s)")
    add("--duration", type=float, default=15.0, help="measured seconds (%(default)s)")
    add("--warmup", type=float, default=2.0, help="seconds before measuring (%(default)s)")
    add("--bucket", help="(default: s3bench-WORKLOAD-SIZE)")
    add("--objects", type=int, help="GET: objects cycled over")
    add("--server-pids", type=_pids, default=[], help="comma-separated root pids of the servers")
    add("--pid-dir", action="append", default=[], help="directory of *.pid files (repeatable)")
    add("--cleanup", action="store_true", help="put: DELETE this run's objects afterwards")
    add("--prepare-only", action="store_true", help="make the bucket and objects, stop")
    add(
        "--no-expect",
        dest="expect",
        action="store_false",
        help="PUT without boto3's Expect: 100-continue",
    )
    add("--timeout", type=float, default=300.0, help="per-request timeout s (%(default)s)")
    add("--max-errors", type=int, default=100, help="stop the run after this many errors")
    add("--json", action="store_true", help="print one JSON object (the summary goes to stderr)")
    return parser


def _pids(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0 or args.size < 1:
        raise SystemExit("s3loadgen: need --concurrency ≥ 1, --duration > 0, --warmup ≥ 0")
    if args.objects is None:
        args.objects = default_objects(args.workload, args.size, args.concurrency)
    args.bucket = args.bucket or default_bucket(args.workload, args.size)
    roots = server_roots(args)
    try:
        result = uvloop.run(bench(args, roots))
    except (ClientError, BotoCoreError) as exc:
        raise SystemExit(f"s3loadgen: boto3 setup against {args.endpoint} failed: {exc}") from None
    if args.prepare_only:
        print(json.dumps(result) if args.json else f"prepared: {result}", flush=True)
        return 0
    text = describe(result) + (
        f"\n  statuses {result['statuses']}, signing {result['sign_us_per_op']:.1f} µs/op"
    )
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
