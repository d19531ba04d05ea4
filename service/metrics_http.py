"""``GET /metrics``: one server's metrics in the Prometheus text format.

service/runner.py makes one ``ServerMetrics`` per worker, feeds its ``requests`` from the
access logger, and routes ``/metrics`` here on every server it runs.  The answer covers the
whole server, whichever worker the kernel handed the scrape to: the request metrics are the
sum of every worker's slots (service/metrics_shm.py), with ``torus_server_workers`` saying
how many were summed.  A server with a devices directory (object, container, account) adds
the last pass of each daemon that writes a recon record there (service/metrics_daemons.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler

from . import metrics_daemons
from .metrics import Family, Sample
from .metrics_requests import RequestMetrics
from .metrics_shm import WorkerSlots, summed
from .metrics_text import CONTENT_TYPE, render

_log = logging.getLogger("torus.metrics")


class ServerMetrics:
    """One worker's metrics: its request counters, and what a scrape of it reads."""

    def __init__(
        self,
        shared_dir: Path | None,
        devices: Path | None,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._shared_dir = shared_dir
        self._devices = devices
        self._wall_clock = wall_clock
        self.requests = RequestMetrics()
        if shared_dir is not None:
            try:
                # Mapped for the rest of the process: the access logger may count a request
                # after the app's cleanup, and the unmapping is the process's exit.
                slots = WorkerSlots(shared_dir, self.requests.size)
            except OSError as exc:  # /dev/shm full, say: metrics must not stop a server
                _log.warning("metrics: no slots in %s (%s): this worker's own", shared_dir, exc)
                self._shared_dir = None
            else:
                self.requests = RequestMetrics(slots.values)

    def request_totals(self) -> tuple[list[float], int]:
        """The request slots of the whole server, and how many workers they cover."""
        if self._shared_dir is None:
            return list(self.requests.values), 1
        return summed(self._shared_dir, self.requests.size)

    async def exposition(self) -> str:
        totals, workers = self.request_totals()
        families = self.requests.families(totals)
        families.append(
            Family(
                "torus_server_workers",
                "gauge",
                "Worker processes whose request metrics are summed here (live or exited).",
                (Sample("torus_server_workers", (), float(workers)),),
            )
        )
        if self._devices is not None:
            passes, unreadable = await asyncio.to_thread(
                metrics_daemons.read_last_passes, self._devices
            )
            families += metrics_daemons.families(passes, unreadable, self._wall_clock())
        return render(families)


SERVER_METRICS = web.AppKey("torus_server_metrics", ServerMetrics)
STARTED = web.RequestKey("torus_started", float)  # time.perf_counter() when routed


@web.middleware
async def stamp_start(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Note when the request reached the app, for a latency finer than aiohttp's.

    aiohttp times each request with ``loop.time()``, which under uvloop is libuv's cached
    millisecond clock: a 0.3 ms GET reads as 0 or 1 ms.  The access logger takes the
    duration from this stamp instead (service/runner.py); the outermost middleware, so it
    covers every other.  A request refused before routing (a bad request line) has no stamp
    and keeps aiohttp's duration.
    """
    request[STARTED] = perf_counter()
    return await handler(request)


async def metrics_handler(request: web.Request) -> web.Response:
    text = await request.app[SERVER_METRICS].exposition()
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})
