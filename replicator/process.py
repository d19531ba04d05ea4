"""A daemon as a process: ``torus serve object-updater --config FILE [--once]``.

``serve(open_daemon, config, once=...)`` is the process's whole ``main``: uvloop, logging at
``config.log_level``, the daemon opened by its factory (an async context manager that owns the
engine, databases and client), then one pass (``--once``, Swift's ``once`` mode) or passes every
``config.interval_s`` until SIGTERM or SIGINT.  A signal cancels the work in progress — safe at
any await (replicator/daemon.py) — and the factory's exit closes what it opened.  One process,
no workers: a daemon's pace is set by its throttle, not by cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import uvloop

from .config import DaemonConfig
from .daemon import Daemon

C = TypeVar("C", bound=DaemonConfig)
DaemonFactory = Callable[[C], AbstractAsyncContextManager[Daemon[Any]]]
EXIT_OK = 0
EXIT_PASS_FAILED = 1  # --once: the pass raised
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_log = logging.getLogger("torus.daemon")


async def run(open_daemon: DaemonFactory[C], config: C, stop: asyncio.Event, *, once: bool) -> int:
    """Run the daemon until ``stop`` is set (or one pass is done, with ``once``)."""

    async def work() -> None:
        async with open_daemon(config) as daemon:
            name, devices, interval_s = daemon.name, config.devices, config.interval_s
            _log.info("%s started on %s (interval %gs)", name, devices, interval_s)
            if once:
                await daemon.run_once()
            else:
                await daemon.run_forever(config.interval_s)

    task = asyncio.create_task(work())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        _log.info("stopped")
        return EXIT_OK
    except Exception:
        _log.exception("the pass failed")
        return EXIT_PASS_FAILED
    return EXIT_OK


def serve(open_daemon: DaemonFactory[C], config: C, *, once: bool = False) -> int:
    """The process's exit status."""
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, stop.set)
        try:
            return await run(open_daemon, config, stop, once=once)
        finally:
            for signum in _STOP_SIGNALS:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)

    return uvloop.run(main())
