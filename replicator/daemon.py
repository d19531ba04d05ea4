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
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

S = TypeVar("S")


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
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.log = logging.getLogger(f"torus.{self.name}")
        self.passes = 0  # completed passes
        self.failed_passes = 0  # passes that raised

    @abstractmethod
    async def sweep(self) -> S:
        """One pass over every local device; its counters."""

    async def run_once(self) -> S:
        """One pass, timed and summarised in the log; its stats."""
        started = self._clock()
        stats = await self.sweep()
        self.passes += 1
        self.log.info(summary_line(self.name, self._clock() - started, stats))
        return stats

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
