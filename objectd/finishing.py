"""Work that must run to its end although the task awaiting it is cancelled.

Cancelling ``await x`` abandons ``x``'s *outcome*, not the work: a write function queued for
the device's writer thread still commits, a worker thread still writes to its fd.  Code that
cleans up after a failure (undoing a rename, closing an fd) must therefore know the real
outcome before it acts.  ``run_to_end`` waits for it through any cancellation and says whether
one came; ``finish`` then raises the cancellation, once the work is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def run_to_end(
    work: Awaitable[T], tasks: set[asyncio.Task] | None = None
) -> tuple[asyncio.Future[T], bool]:
    """Run ``work`` as a task to its end; (that finished task, whether we were cancelled).

    ``tasks``: a set holding the task while it runs, so that a shutdown can wait for it.
    A caller told it was cancelled must raise CancelledError once it has acted on the outcome.
    """
    task = asyncio.ensure_future(work)
    if tasks is not None:
        tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(tasks.discard)  # type: ignore[arg-type]
    cancelled = False
    while not task.done():
        try:
            await _when_done(task)  # a cancellation here leaves the task running
        except asyncio.CancelledError:
            cancelled = True
    return task, cancelled


def _when_done(task: asyncio.Future[T]) -> asyncio.Future[None]:
    """A future set once ``task`` is done; cancelling it leaves ``task`` alone.  (What
    ``asyncio.wait((task,))`` does, without its sets and callback removal: once per write.)"""
    waiter: asyncio.Future[None] = task.get_loop().create_future()

    def wake(_task: asyncio.Future[T]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    return waiter


async def finish(work: Awaitable[T], tasks: set[asyncio.Task] | None = None) -> T:
    """``await work``, except that a cancellation waits for ``work`` to end, then is raised."""
    task, cancelled = await run_to_end(work, tasks)
    if cancelled:
        error = None if task.cancelled() else task.exception()
        raise asyncio.CancelledError() from error
    return task.result()
