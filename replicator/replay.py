"""Replaying async_pendings: the part the object updater and the container updater share.

An async_pending (service/async_pending.py) is an update that did not reach some of its
targets: an object row for the container replicas (saved by an object server), or a
container's report for the account replicas (saved by a container server).  Both stores offer
the same three calls (``PendingStore``), so one replayer serves both.

For each record, oldest first, a device at a time:

- the targets are the ones it records, unless the ring has moved the name since (another
  partition, or a recorded node that is no longer a primary): then every current primary,
  as Swift's updater asks the ring at replay time.  Rows merge by timestamp, so telling a
  replica that already has the row costs a request and changes nothing;
- it is sent to every target at once (each call bounded by the client's node timeout);
- it is deleted once **every** target took it (2xx), as Swift's object updater does, and not
  at a quorum: no container or account replicator runs yet to carry a row to the replica
  that missed it, and a listing served by that replica would miss the object;
- if only some took it, it is kept naming only the others (saved again, then the old record
  deleted: a crash in between leaves two records, and replaying both is harmless);
- if none did, it is kept as it is, for the next pass;
- a record that cannot be decoded is deleted and counted (Swift quarantines a bad pickle;
  nothing could ever replay it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ring.ring import Ring
from service.async_pending import AsyncPending, Target
from service.backend_client import BackendClient, BackendUnavailable

from .throttle import Throttle

PAGE_SIZE = 1000  # records listed per read transaction (none stays open across requests)
log = logging.getLogger("torus.replicator")

__all__ = ["PendingStore", "ReplayStats", "Replayer", "Target"]


class PendingStore(Protocol):
    """Where a device's async_pendings live: the object engine, or the container DBs."""

    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]: ...

    async def save_async_pending(
        self, device: str, pending: AsyncPending, rng: random.Random
    ) -> bytes: ...

    async def delete_async_pending(self, device: str, key: bytes) -> bool: ...


@dataclass
class ReplayStats:
    found: int = 0  # records seen
    successes: int = 0  # landed on every target: deleted
    partials: int = 0  # landed on some: kept, naming the others
    failures: int = 0  # landed nowhere: kept as they were
    retargeted: int = 0  # sent to the ring's current primaries instead of the recorded ones
    bad: int = 0  # undecodable: deleted

    def add(self, other: ReplayStats) -> None:
        """Add ``other``'s counters to these (a subclass's own counters are left alone)."""
        for field in dataclasses.fields(other):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def replay_targets(pending: AsyncPending, ring: Ring | None) -> tuple[int, tuple[Target, ...]]:
    """Where to send ``pending`` now: its recorded targets, or the ring's primaries if the
    ring moved its name since it was saved."""
    if ring is None:
        return pending.partition, pending.targets
    container = None if pending.obj is None else pending.container  # an account report: None
    partition, nodes = ring.get_nodes(pending.account, container)
    current = tuple((node.ip, node.port, node.device) for node in nodes)
    if partition == pending.partition and all(t in current for t in pending.targets):
        return pending.partition, pending.targets
    return partition, current


class Replayer:
    def __init__(
        self,
        store: PendingStore,
        client: BackendClient,
        throttle: Throttle,
        *,
        user_agent: str,
        concurrency: int,
        ring: Callable[[], Ring | None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._throttle = throttle
        self._user_agent = f"{user_agent} {os.getpid()}"
        self._concurrency = concurrency
        self._ring = ring
        self._rng = rng if rng is not None else random.Random()

    async def replay_device(self, device: str) -> ReplayStats:
        """Replay every async_pending on ``device``, oldest first."""
        stats = ReplayStats()
        ring = self._ring()
        saved_now: set[bytes] = set()  # records this pass rewrote: not replayed again
        slots = asyncio.Semaphore(self._concurrency)
        after = b""
        while True:
            page = await asyncio.to_thread(
                self._store.list_async_pendings, device, after=after, limit=PAGE_SIZE
            )
            if not page:
                return stats
            after = page[-1][0]
            async with asyncio.TaskGroup() as group:
                for key, pending in page:
                    if key in saved_now:
                        continue
                    stats.found += 1
                    if pending is None:
                        group.create_task(self._drop_bad(device, key, stats))
                        continue
                    await self._throttle.wait()
                    await slots.acquire()
                    task = group.create_task(
                        self._replay_one(device, key, pending, ring, stats, saved_now)
                    )
                    task.add_done_callback(lambda _: slots.release())

    async def _drop_bad(self, device: str, key: bytes, stats: ReplayStats) -> None:
        log.error("async_pending %r on %s cannot be decoded: deleting it", key, device)
        await self._store.delete_async_pending(device, key)
        stats.bad += 1

    async def _replay_one(
        self,
        device: str,
        key: bytes,
        pending: AsyncPending,
        ring: Ring | None,
        stats: ReplayStats,
        saved_now: set[bytes],
    ) -> None:
        partition, targets = replay_targets(pending, ring)
        if targets != pending.targets:
            stats.retargeted += 1
        headers = {**pending.headers, "User-Agent": self._user_agent}
        async with asyncio.TaskGroup() as group:
            sends = [
                group.create_task(self._send(target, partition, pending, headers))
                for target in targets
            ]
        failed = tuple(t for t, send in zip(targets, sends, strict=True) if not send.result())
        if not failed:
            await self._store.delete_async_pending(device, key)
            stats.successes += 1
        elif len(failed) < len(targets):
            narrowed = dataclasses.replace(pending, targets=failed, partition=partition)
            saved_now.add(await self._store.save_async_pending(device, narrowed, self._rng))
            await self._store.delete_async_pending(device, key)
            stats.partials += 1
        else:
            stats.failures += 1

    async def _send(
        self, target: Target, partition: int, pending: AsyncPending, headers: Mapping[str, str]
    ) -> bool:
        ip, port, device = target
        try:
            response = await self._client.request(
                pending.op, ip, port, device, partition, pending.path, headers
            )
        except BackendUnavailable as exc:
            log.info("update of %s not sent: %s", pending.path, exc)
            return False
        if 200 <= response.status < 300:
            return True
        status = response.status
        log.info("update of %s refused: %d from %s:%d/%s", pending.path, status, ip, port, device)
        return False
