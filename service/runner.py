"""Run an aiohttp application: uvloop, worker processes sharing one port, a graceful stop.

``serve(build_app, config)`` is a server process's whole ``main``.  With ``workers`` 0 or 1 it
serves in this process; with more it forks that many workers, each binding ``bind_ip:bind_port``
with ``SO_REUSEPORT`` so the kernel spreads connections over them, and supervises them: a worker
that dies is started again, one that dies within its first second is taken as a start-up failure
(port taken, bad config) and stops the server.  Each worker calls the composition root
``build_app(config)`` itself, so no event loop, session or LMDB handle crosses a fork; bind other
arguments with ``functools.partial``.

SIGTERM or SIGINT stops a worker gracefully: it stops accepting, gives in-flight requests
``shutdown_grace_s``, then runs the app's shutdown and cleanup hooks (``cleanup_ctx``).  The
supervisor passes SIGTERM on to its workers and waits for them.

Every server gets ``GET /metrics`` here (service/metrics_http.py; docs/design/metrics.md):
the access logger, which aiohttp calls once per request with the status and duration anyway,
counts each request, and the route is added after the app's own, which aiohttp's router still
prefers to a catch-all (it tries the longest matching path prefix first).  The supervisor
makes the directory where its workers' counters are shared, and removes it when it stops.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from service.config import ServerConfig, StorageServerConfig
from service.metrics_http import (
    SERVER_METRICS,
    STARTED,
    ServerMetrics,
    metrics_handler,
    stamp_start,
)
from service.metrics_requests import RequestMetrics
from service.metrics_shm import make_directory, remove_directory

C = TypeVar("C", bound=ServerConfig)
AppFactory = Callable[[C], web.Application | Awaitable[web.Application]]

ACCESS_LOGGER = "torus.access"
_ACCESS_FORMAT = "%s %s %d %d %.1fms %s"  # method, path, status, bytes sent, duration, trans-id
MIN_UPTIME_S = 1.0  # a worker that dies sooner than this failed to start
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_log = logging.getLogger("torus.runner")


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path, status, bytes sent, duration, transaction id.

    Bytes sent are what went on the wire (status line and headers too): aiohttp counts them
    exactly for streamed and chunked answers alike, where a Content-Length may not exist.

    It also counts the request in ``metrics`` (service/metrics_requests.py), even when access
    lines are not logged: ``run_worker`` gives each worker a subclass bound to its own.

    Each line is a ``torus.access`` record whose last argument is the transaction id (the
    proxy's log filter replaces it), made by copying a template record rather than by
    ``Logger.info``: LogRecord's constructor, which works out a source file name nobody
    logs here, was the largest part of a line's cost.
    """

    _template: dict[str, object] | None = None
    _template_pid = -1
    metrics: RequestMetrics | None = None

    @classmethod
    def counting_into(cls, metrics: RequestMetrics) -> type[AccessLogger]:
        """This class, counting every request in ``metrics`` (aiohttp makes the logger itself,
        one per connection, from the class alone)."""
        return type(cls.__name__, (cls,), {"metrics": metrics})

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if self.metrics is not None:
            started = request.get(STARTED)  # stamp_start's: finer than aiohttp's ``time``
            duration_s = time if started is None else perf_counter() - started
            self.metrics.observe(request.method, response.status, duration_s)
            if not self.logger.isEnabledFor(logging.INFO):
                return
        args = (
            request.method,
            request.raw_path,
            response.status,
            response.body_length,
            time * 1000,
            request.headers.get("X-Trans-Id", "-"),
        )
        self.logger.handle(self._record(args))

    def _record(self, args: tuple[object, ...]) -> logging.LogRecord:
        pid = os.getpid()
        if self._template is None or self._template_pid != pid:  # made once per process
            made = logging.LogRecord(
                self.logger.name, logging.INFO, "", 0, _ACCESS_FORMAT, (), None
            )
            self._template, self._template_pid = dict(made.__dict__), pid
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = record.__dict__
        fields.update(self._template)
        now = time.time()
        fields["args"] = args
        fields["created"] = now
        fields["msecs"] = int((now - int(now)) * 1000) + 0.0  # as LogRecord computes them
        fields["relativeCreated"] = (now - logging._startTime) * 1000
        return record

    @property
    def enabled(self) -> bool:
        """Whether aiohttp calls ``log`` at all (asked once per connection)."""
        return self.metrics is not None or self.logger.isEnabledFor(logging.INFO)


class _LogFormatter(logging.Formatter):
    """The standard formatter, with the date text made once per second instead of per line
    (``time.strftime`` was a tenth of an access line's cost)."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._date = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._date = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._date},{int(record.msecs):03d}"


def configure_logging(level: str | int) -> None:
    """Log to stderr, one line per record, as cheaply as the logging module allows.

    Every request logs an access line, so a record's fixed costs count: without
    ``_srcfile`` the logging module skips walking the stack for the caller's file and line
    (which no format here shows), and thread and multiprocessing names, also not shown, are
    not looked up.  The process id stays: workers share one log.
    """
    logging._srcfile = None  # the logging docs' "Optimization" section
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(
        _LogFormatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])


def serve(app_factory: AppFactory[C], config: C) -> int:
    """Serve until SIGTERM/SIGINT; the process's exit status (0: a clean stop)."""
    configure_logging(config.log_level)
    if config.workers <= 1:
        return _worker_main(app_factory, config)
    if config.bind_port == 0:
        raise ValueError("several workers need a fixed bind_port to share")
    metrics_dir = make_directory(config.bind_port)
    try:
        return _Supervisor(app_factory, config, metrics_dir).run()
    finally:
        if metrics_dir is not None:
            remove_directory(metrics_dir)


async def run_worker(
    app_factory: AppFactory[C],
    config: C,
    stop: asyncio.Event,
    on_ready: Callable[[list[Any]], None] | None = None,
    metrics_dir: Path | None = None,
) -> None:
    """Build the app, serve it until ``stop`` is set, then shut down gracefully.

    ``on_ready`` gets the bound addresses once the port is open (tests bind port 0).
    ``metrics_dir``: where the server's workers share their request counters (None: this
    worker's own, as for a single-process server).
    """
    app = app_factory(config)
    if inspect.isawaitable(app):
        app = await app
    devices = config.devices if isinstance(config, StorageServerConfig) else None
    metrics = ServerMetrics(metrics_dir, devices)
    app[SERVER_METRICS] = metrics
    app.middlewares.insert(0, stamp_start)  # outermost: its stamp covers the others
    # After the app's routes, yet preferred to a catch-all "/{path:.*}": see the docstring.
    app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger.counting_into(metrics.requests),
        access_log=logging.getLogger(ACCESS_LOGGER),
        shutdown_timeout=config.shutdown_grace_s,
        # A body sent with Content-Encoding (gzip) is stored as sent, as Swift and S3 do:
        # aiohttp would inflate it, breaking its length, ETag and x-amz-content-sha256.
        auto_decompress=False,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.bind_ip, config.bind_port, reuse_port=True)
        await site.start()
        if on_ready is not None:
            on_ready(runner.addresses)
        await stop.wait()
    finally:
        await runner.cleanup()  # stop accepting, drain in-flight requests, run cleanup hooks


def _worker_main(app_factory: AppFactory[C], config: C, metrics_dir: Path | None = None) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, stop.set)
        # A supervisor forks with these signals blocked, so one sent before the handlers
        # above existed waits until now instead of being lost.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        await run_worker(app_factory, config, stop, metrics_dir=metrics_dir)

    uvloop.run(main())
    return 0


class _Supervisor:
    """The parent of several workers: starts them, restarts them, stops them."""

    def __init__(self, app_factory: AppFactory[C], config: C, metrics_dir: Path | None) -> None:
        self._app_factory = app_factory
        self._config = config
        self._metrics_dir = metrics_dir
        self._context = multiprocessing.get_context("fork")
        self._workers: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = {}
        self._stopping = False

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in _STOP_SIGNALS}
        try:
            for slot in range(self._config.workers):
                self._start(slot)
            status = self._watch()
            self._stop_all()
            return status
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _start(self, slot: int) -> None:
        # Blocked across the fork: the child unblocks once its own handlers are in place.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            process = self._context.Process(
                target=_worker_main,
                args=(self._app_factory, self._config, self._metrics_dir),
                name=f"worker-{slot}",
            )
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        self._workers[slot] = (process, time.monotonic())
        _log.info("worker %d started: pid %s", slot, process.pid)

    def _watch(self) -> int:
        """Wait until told to stop (0) or a worker fails to start (1)."""
        while not self._stopping:
            sentinels = [process.sentinel for process, _ in self._workers.values()]
            # A short timeout so a signal is noticed soon; waiting itself costs nothing.
            multiprocessing.connection.wait(sentinels, timeout=0.2)
            for slot, (process, started) in list(self._workers.items()):
                if process.is_alive() or self._stopping:
                    continue
                _log.error("worker %d (pid %s) exited: %s", slot, process.pid, process.exitcode)
                if time.monotonic() - started < MIN_UPTIME_S:
                    return 1
                self._start(slot)
        return 0

    def _stop_all(self) -> None:
        for process, _ in self._workers.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker's graceful stop
        deadline = time.monotonic() + self._config.shutdown_grace_s + 5
        for process, _ in self._workers.values():
            process.join(max(deadline - time.monotonic(), 0))
            if process.is_alive():
                _log.error("worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
