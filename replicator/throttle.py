"""A rate limit for a daemon's work: at most ``rate_per_s`` operations (or bytes) a second.

Swift's ``ratelimit_sleep``: each ``wait(cost)`` reserves the next slot, ``cost / rate_per_s``
seconds after the previous one, and sleeps until it comes.  A caller that fell behind (it was
busy elsewhere, or idle between passes) may catch up by at most ``max_burst_s`` worth of
operations, never by the whole idle time: otherwise a daemon idle for an hour would then run
unthrottled until it had "spent" that hour.

Slots are reserved before sleeping, so concurrent waiters get successive slots; a waiter
cancelled in its sleep loses its slot (the rate only errs on the slow side).  The clock and the
sleep are arguments: tests run the throttle on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_MAX_BURST_S = 1.0


class Throttle:
    def __init__(
        self,
        rate_per_s: float,
        *,
        max_burst_s: float = DEFAULT_MAX_BURST_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate_per_s < 0 or max_burst_s < 0:
            raise ValueError("rate_per_s and max_burst_s must be >= 0")
        self.rate_per_s = rate_per_s  # 0: unlimited
        self._max_burst_s = max_burst_s
        self._clock = clock
        self._sleep = sleep
        self._next_s: float | None = None  # when the next operation may start
        self.slept_s = 0.0  # total time spent waiting (a pass's summary reports it)

    async def wait(self, cost: float = 1.0) -> None:
        """Return when an operation of ``cost`` units may start."""
        if not self.rate_per_s:
            return
        now = self._clock()
        if self._next_s is None or now - self._next_s > self._max_burst_s:
            self._next_s = now - (0.0 if self._next_s is None else self._max_burst_s)
        delay = self._next_s - now
        self._next_s += cost / self.rate_per_s
        if delay > 1e-6:  # not a float rounding's worth of sleep
            self.slept_s += delay
            await self._sleep(delay)
