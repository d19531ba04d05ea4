"""The daemon contract (replicator/daemon.py) and the throttle (replicator/throttle.py), on a
fake clock: no test here sleeps for real."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from replicator import process
from replicator.config import DaemonConfig
from replicator.daemon import Daemon, summary_line
from replicator.throttle import Throttle


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


# -- throttle ------------------------------------------------------------------------------


def test_the_throttle_spaces_operations_at_its_rate() -> None:
    time = FakeTime()
    throttle = Throttle(5.0, clock=time.clock, sleep=time.sleep)

    async def main() -> None:
        for _ in range(11):
            await throttle.wait()

    asyncio.run(main())
    assert time.now == pytest.approx(1002.0)  # the first at once, then ten at 0.2 s each
    assert throttle.slept_s == pytest.approx(2.0)


def test_a_cost_counts_as_that_many_operations() -> None:
    time = FakeTime()
    throttle = Throttle(1000.0, clock=time.clock, sleep=time.sleep)  # bytes a second

    async def main() -> None:
        await throttle.wait(500)  # at once
        await throttle.wait(1500)  # after the first 500 bytes' half second
        await throttle.wait(1)  # after the 1500 bytes' 1.5 s

    asyncio.run(main())
    assert time.sleeps == [pytest.approx(0.5), pytest.approx(1.5)]


def test_an_idle_throttle_allows_a_burst_of_at_most_max_burst_s() -> None:
    time = FakeTime()
    throttle = Throttle(10.0, max_burst_s=1.0, clock=time.clock, sleep=time.sleep)

    async def main() -> None:
        await throttle.wait()
        time.now += 3600  # idle for an hour between passes
        for _ in range(11):  # one second's worth of credit, then the rate again
            await throttle.wait()
        assert time.sleeps == []
        await throttle.wait()
        assert time.sleeps == [pytest.approx(0.1)]

    asyncio.run(main())


def test_concurrent_waiters_take_successive_slots() -> None:
    time = FakeTime()

    async def sleep(seconds: float) -> None:  # all reserve their slots at the same moment
        time.sleeps.append(seconds)

    throttle = Throttle(2.0, clock=time.clock, sleep=sleep)

    async def main() -> None:
        await asyncio.gather(*(throttle.wait() for _ in range(5)))

    asyncio.run(main())
    assert sorted(time.sleeps) == [pytest.approx(x) for x in (0.5, 1.0, 1.5, 2.0)]


def test_rate_zero_is_no_limit() -> None:
    time = FakeTime()
    throttle = Throttle(0, clock=time.clock, sleep=time.sleep)

    async def main() -> None:
        await asyncio.gather(*(throttle.wait() for _ in range(1000)))

    asyncio.run(main())
    assert time.sleeps == []
    with pytest.raises(ValueError):
        Throttle(-1)


# -- daemons -------------------------------------------------------------------------------


@dataclass
class CountStats:
    items_done: int = 0
    errors: int = 0


class CountingDaemon(Daemon[CountStats]):
    name = "test-daemon"

    def __init__(self, time: FakeTime, pass_s: float = 1.0) -> None:
        super().__init__(clock=time.clock, sleep=time.sleep)
        self.time = time
        self.pass_s = pass_s
        self.started: list[float] = []
        self.fail_pass: set[int] = set()
        self.block: asyncio.Event | None = None  # set: the pass waits for it
        self.cleaned_up = 0

    async def sweep(self) -> CountStats:
        number = len(self.started)
        self.started.append(self.time.now)
        try:
            if self.block is not None:
                await self.block.wait()
            self.time.now += self.pass_s
            if number in self.fail_pass:
                raise OSError("device gone")
            return CountStats(items_done=number)
        finally:
            self.cleaned_up += 1


def test_run_once_returns_the_stats_and_logs_one_summary_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    daemon = CountingDaemon(FakeTime(), pass_s=1.25)
    with caplog.at_level(logging.INFO, logger="torus.test-daemon"):
        stats = asyncio.run(daemon.run_once())
    assert stats == CountStats(0, 0)
    assert [r.getMessage() for r in caplog.records] == [
        "test-daemon pass completed: 1.25s, 0 items done, 0 errors"
    ]
    assert daemon.passes == 1
    assert (
        summary_line("x", 0.5, CountStats(3, 1))
        == "x pass completed: 0.50s, 3 items done, 1 errors"
    )


def test_run_forever_starts_passes_interval_apart_and_goes_on_after_a_failed_one() -> None:
    time = FakeTime()
    daemon = CountingDaemon(time, pass_s=2.0)
    daemon.fail_pass = {1}

    async def main() -> None:
        task = asyncio.create_task(daemon.run_forever(10.0))
        while len(daemon.started) < 4:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert daemon.started == [1000.0, 1010.0, 1020.0, 1030.0]  # start to start
    assert daemon.passes == 3 and daemon.failed_passes == 1  # the 4th ran before the cancel


def test_a_pass_longer_than_the_interval_is_followed_at_once() -> None:
    time = FakeTime()
    daemon = CountingDaemon(time, pass_s=15.0)

    async def main() -> None:
        task = asyncio.create_task(daemon.run_forever(10.0))
        while len(daemon.started) < 3:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert daemon.started == [1000.0, 1015.0, 1030.0]


def test_cancelling_mid_pass_stops_the_daemon_and_unwinds_the_pass() -> None:
    time = FakeTime()
    daemon = CountingDaemon(time)

    async def main() -> None:
        daemon.block = asyncio.Event()
        task = asyncio.create_task(daemon.run_forever(10.0))
        while not daemon.started:
            await asyncio.sleep(0)
        task.cancel()  # while the pass waits: a cancellation is not a failed pass
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert daemon.cleaned_up == 1
    assert (daemon.passes, daemon.failed_passes) == (0, 0)


def test_cancelling_between_passes_stops_the_daemon() -> None:
    time = FakeTime()
    daemon = CountingDaemon(time)

    async def main() -> None:
        asleep = asyncio.Event()
        real_sleep = time.sleep

        async def sleep(seconds: float) -> None:
            asleep.set()
            await asyncio.Event().wait()  # forever: until cancelled
            await real_sleep(seconds)

        daemon._sleep = sleep
        task = asyncio.create_task(daemon.run_forever(10.0))
        await asleep.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert daemon.passes == 1 and daemon.started == [1000.0]


# -- a daemon as a process (replicator/process.py), minus the process ------------------------


def test_a_stop_request_cancels_the_daemon_and_closes_what_it_opened() -> None:
    time = FakeTime()
    daemon = CountingDaemon(time)
    closed: list[bool] = []

    @contextlib.asynccontextmanager
    async def open_daemon(config: DaemonConfig) -> AsyncIterator[CountingDaemon]:
        try:
            yield daemon
        finally:
            closed.append(True)

    async def main() -> int:
        stop = asyncio.Event()
        daemon.block = asyncio.Event()  # the first pass waits: the stop comes mid-pass
        running = asyncio.create_task(process.run(open_daemon, DaemonConfig(), stop, once=False))
        while not daemon.started:
            await asyncio.sleep(0)
        stop.set()
        return await running

    assert asyncio.run(main()) == process.EXIT_OK
    assert closed == [True] and daemon.cleaned_up == 1


def test_once_runs_one_pass_and_a_failed_pass_is_exit_1() -> None:
    time = FakeTime()
    daemon = CountingDaemon(time)

    @contextlib.asynccontextmanager
    async def open_daemon(config: DaemonConfig) -> AsyncIterator[CountingDaemon]:
        yield daemon

    async def once() -> int:
        return await process.run(open_daemon, DaemonConfig(), asyncio.Event(), once=True)

    assert asyncio.run(once()) == process.EXIT_OK
    daemon.fail_pass = {1}
    assert asyncio.run(once()) == process.EXIT_PASS_FAILED
    assert daemon.started == [1000.0, 1001.0] and daemon.passes == 1
