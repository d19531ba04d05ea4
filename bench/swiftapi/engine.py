"""The closed loop of `torus bench`: C lanes, each issuing one request after another.

Every lane runs the workload's ``op(n)`` with the next request number n, times it, and records
it only if it *ended* inside the measured window (after the warm-up, for ``duration_s``).
At the window's edges the engine reads the CPU ticks of the server process trees, of this
process and of the whole machine; after the window the lanes finish their request in flight
(bounded by ``drain_s``; stragglers are then cancelled) and stop.

Errors (a StatusError for a non-2xx or unexpected status, a malformed response, a connection
error, a request taking longer than ``request_timeout_s``) are
counted over the whole run, warm-up included, kept apart from the latencies, and a sample of
their messages is kept; after ``max_errors`` of them the run stops early (the window then ends
there, so the rates stay honest).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import procstat
from api import StatusError
from measure import Meter, summarize
from rawhttp import ProtocolError

Op = Callable[[int], Awaitable[object]]  # one request, given its number
# OSError: refused or reset connections of the raw client (aiohttp wraps them in ClientError).
REQUEST_ERRORS = (StatusError, ProtocolError, aiohttp.ClientError, TimeoutError, OSError)
ERROR_SAMPLES = 5


@dataclass
class Recorder:
    window_start: float = math.inf  # perf_counter
    window_end: float = math.inf
    latencies_s: list[float] = field(default_factory=list)
    requests_ok: int = 0  # over the whole run
    errors: int = 0  # over the whole run
    error_samples: list[str] = field(default_factory=list)
    succeeded: list[int] = field(default_factory=list)  # request numbers, if asked to keep them

    def ok(self, n: int, started: float, ended: float, keep: bool) -> None:
        self.requests_ok += 1
        if keep:
            self.succeeded.append(n)
        if self.window_start <= ended <= self.window_end:
            self.latencies_s.append(ended - started)

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Window:
    warmup_s: float
    duration_s: float
    request_timeout_s: float = 300.0
    drain_s: float = 120.0
    max_errors: int = 100


class _Marks:
    """CPU readings at one edge of the window."""

    def __init__(self, server_roots: Sequence[int], meter: Meter) -> None:
        self.body_bytes = meter.body_bytes
        self.servers = procstat.snapshot(server_roots) if server_roots else {}
        self.client_s = time.process_time()
        self.kernel_threads = procstat.kernel_thread_ticks()
        self.machine = procstat.machine()
        self.at = time.perf_counter()


def _kernel_s(start: _Marks, end: _Marks) -> float:
    threads = procstat.cpu_delta_s(start.kernel_threads, end.kernel_threads)
    return threads + (end.machine.interrupts - start.machine.interrupts) / procstat.TICKS_PER_S


async def run(
    op: Op,
    meter: Meter,
    concurrency: int,
    window: Window,
    server_roots: Sequence[int],
    *,
    keep_succeeded: bool = False,
) -> tuple[dict[str, Any], Recorder]:
    """Run ``op`` from ``concurrency`` lanes; the summary (see measure.summarize) and record."""
    recorder = Recorder()
    stop = asyncio.Event()
    numbers = itertools.count()

    async def lane() -> None:
        while not stop.is_set():
            n = next(numbers)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(window.request_timeout_s):
                    await op(n)
            except REQUEST_ERRORS as exc:
                recorder.error(exc)
                if recorder.errors >= window.max_errors:
                    stop.set()
                continue
            recorder.ok(n, started, time.perf_counter(), keep_succeeded)

    async def stopped_within(seconds: float) -> bool:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    stragglers_cancelled = False
    try:
        async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(lane())
            await stopped_within(window.warmup_s)
            start = _Marks(server_roots, meter)
            recorder.window_start = start.at
            await stopped_within(window.duration_s)
            end = _Marks(server_roots, meter)
            recorder.window_end = end.at
            stop.set()
            deadline.reschedule(asyncio.get_running_loop().time() + window.drain_s)
    except TimeoutError:
        stragglers_cancelled = True

    summary = summarize(
        latencies_s=recorder.latencies_s,
        body_bytes=end.body_bytes - start.body_bytes,
        window_s=end.at - start.at,
        errors=recorder.errors,
        server_cpu_s=procstat.cpu_delta_s(start.servers, end.servers) if server_roots else math.nan,
        client_cpu_s=end.client_s - start.client_s,
        kernel_s=_kernel_s(start, end),
        box_busy_s=(end.machine.busy - start.machine.busy) / procstat.TICKS_PER_S,
    )
    summary["server_processes"] = len(end.servers)
    summary["requests_ok_total"] = recorder.requests_ok
    summary["stragglers_cancelled"] = stragglers_cancelled
    return summary, recorder
