"""The daemon contract: ``async run_once() -> stats`` plus ``run_forever(interval_s)``.

A daemon subclasses ``Daemon`` and writes ``sweep()``, one pass over its devices that fills
in a stats dataclass of counters.  ``run_once()`` times the pass and logs one summary line
(Swift's "Object update sweep completed: 1.23s, 4 successes, ..."), so tests and tools can
settle a cluster by calling it, and an operator can read what each pass did.
``run_forever()`` runs passes ``interval_s`` apart, start to start, until cancelled.

Cancellation is the only way to stop a daemon, and is safe at any await: a daemon deletes an
async_pending or records a reported point only after the update landed, so a pass cut short
leaves work for the next one, never a lost update (replaying twice is harmless: rows merge
by timestamp).  A pass that fails with an exception is logged and counted; the next pass
runs as usual, as Swift's daemons do, because one bad device must not stop the updater of
the others.

After each pass, completed or failed, the daemon rewrites its recon record
(replicator/recon.py): ``<devices>/<name>.recon``, which `torus status` reads.  Writing it
never fails a pass: a record that cannot be written is logged and counted (``recon_errors``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import recon

S = TypeVar("S")
# A recon write that takes longer (a hung filesystem) is given up on, so the daemon goes on;
# the thread finishes or hangs on its own.
RECON_WRITE_TIMEOUT_S = 10.0


def summary_line(name: str, elapsed_s: float, stats: Any) -> str:
    """``object-updater pass completed: 0.52s, 3 found, 3 successes, ...``."""
    counters = ", ".join(
        f"{value:g} {field.name.replace('_', ' ')}"
        for field in dataclasses.fields(stats)
        for value in (getattr(stats, field.name),)
    )
    return f"{name} pass completed: {elapsed_s:.2f}s, {counters}"


class Daemon(ABC, Generic[S]):
    name = "daemon"  # the log's and the summary line's name for it: "object-updater"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        recon_dir: Path | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock  # a pass's start time in its recon record
        # Where the recon record goes; None: the ``devices`` of ``self.config``, if the
        # daemon has one (every per-device daemon does), else no record.
        self.recon_dir = recon_dir
        self.log = logging.getLogger(f"torus.{self.name}")
        self.passes = 0  # completed passes
        self.failed_passes = 0  # passes that raised
        self.recon_errors = 0  # recon records that could not be written

    @abstractmethod
    async def sweep(self) -> S:
        """One pass over every local device; its counters."""

    def summary(self, elapsed_s: float, stats: S) -> str:
        """The pass's log line; a daemon with a line of its own overrides this, not run_once."""
        return summary_line(self.name, elapsed_s, stats)

    def recon_file(self) -> Path | None:
        """This daemon's recon record: ``<devices>/<name>.recon``; None: it keeps none."""
        directory = self.recon_dir
        if directory is None:
            directory = getattr(getattr(self, "config", None), "devices", None)
        return None if directory is None else recon.recon_path(Path(directory), self.name)

    async def run_once(self) -> S:
        """One pass, timed, summarised in the log and recorded for recon; its stats."""
        started, started_at = self._clock(), self._wall_clock()
        try:
            stats = await self.sweep()
        except Exception as exc:  # not a cancellation: that stops the daemon, no pass failed
            await self.record_pass(started_at, self._clock() - started, None, error=exc)
            raise
        elapsed_s = self._clock() - started
        self.passes += 1
        self.log.info(self.summary(elapsed_s, stats))
        await self.record_pass(started_at, elapsed_s, stats)
        return stats

    async def record_pass(
        self,
        started_at: float,
        duration_s: float,
        stats: S | None,
        *,
        error: BaseException | None = None,
    ) -> None:
        """Rewrite the recon record with this pass (``stats`` None: it failed with
        ``error``).  Raises nothing but a cancellation: a pass must not fail for its record.
        A daemon that overrides ``run_once`` calls it at the end of each pass, with
        ``self._wall_clock()`` read when the pass started."""
        try:
            path = self.recon_file()
            if path is None:
                return
            record = recon.PassRecord(
                daemon=self.name,
                devices=str(path.parent),
                host=socket.gethostname(),
                pid=os.getpid(),
                started_at=started_at,
                duration_s=duration_s,
                ok=error is None,
                error=None if error is None else f"{type(error).__name__}: {error}",
                stats={} if stats is None else recon.stats_fields(stats),
            )
            write = asyncio.to_thread(recon.write, path, record)
            await asyncio.wait_for(write, RECON_WRITE_TIMEOUT_S)
        except TimeoutError:
            self.recon_errors += 1
            timeout_s = RECON_WRITE_TIMEOUT_S
            self.log.warning("%s: recon record not written in %gs", self.name, timeout_s)
        except OSError as exc:
            self.recon_errors += 1
            self.log.warning("%s: recon record not written: %s", self.name, exc)
        except Exception:
            self.recon_errors += 1
            self.log.exception("%s: recon record not written", self.name)

    async def run_forever(self, interval_s: float) -> None:
        """Passes ``interval_s`` apart (start to start; back to back if a pass runs longer),
        until cancelled."""
        while True:
            started = self._clock()
            try:
                await self.run_once()
            except Exception:
                self.failed_passes += 1
                self.log.exception("%s pass failed; the next one runs as usual", self.name)
            await self._sleep(max(interval_s - (self._clock() - started), 0.0))
