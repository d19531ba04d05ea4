"""Pushing one database's rows to one peer: the part of Swift's db_replicator the container
(and, on the same frame, the account) replicator shares.

A sync point is the peer's record of how far it merged this replica's rows: the sender's
change sequence (containerd_/changes.py), kept by the receiver per sender id, as Swift's
incoming_sync table.  One push:

1. ``sync``: send the local record (timestamps, metadata; the peer merges it, creating the
   database if it has none) and learn the peer's sync point for this replica;
2. no sync point (a new peer, or a new local environment with a new id), or one ahead of
   anything here: the **full copy**, every row in name order, ``page_rows`` a request, the
   last page carrying the sequence read before the copy began (rows changed during the copy
   have later sequences and go next time; those also copied now merge twice, harmlessly);
3. else the **rows since the point**, in sequence order, each page carrying the sequence it
   brings the peer to: a push cut short (cancelled, a timeout) resumes from the last page
   the peer committed.

Swift's replicator rsyncs a whole SQLite file to a peer far behind; one LMDB environment
holds every container of a device, so here the full copy is rows in pages, which also
merges into whatever the peer already holds instead of replacing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol


class PeerFailed(Exception):
    """A peer did not take a step of a push (unreachable, a timeout, not a 200)."""


class Peer(Protocol):
    """One remote replica of one database (the HTTP REPLICATE client, or a broker in tests)."""

    async def sync(self, record: dict[str, Any], sender: str) -> int | None: ...
    async def merge(self, rows: list[list[Any]], sender: str, point: int | None) -> None: ...


class Source(Protocol):
    """What a push reads locally, as wire-ready rows (blocking: run in a thread)."""

    def record(self) -> tuple[dict[str, Any], int] | None:
        """The record and the newest change sequence; None if the database is gone."""

    def changed(self, after_seq: int, limit: int) -> tuple[list[list[Any]], int]:
        """Rows of names changed after ``after_seq`` and the sequence they bring a peer to."""

    def page(self, after: str | None, limit: int) -> tuple[list[list[Any]], str | None]:
        """Up to ``limit`` rows named after ``after``, and the last name (None: no rows)."""


@dataclass
class Pushed:
    rows: int = 0  # rows sent (a row sent twice counts twice)
    requests: int = 0  # REPLICATE requests made
    full_copy: bool = False  # the peer had no sync point for this replica


async def push(
    source: Source,
    peer: Peer,
    sender: str,
    *,
    page_rows: int,
    pace: Callable[[int], Awaitable[None]] | None = None,
) -> Pushed | None:
    """Bring ``peer`` up to the local database; what it took (None: nothing here to push).
    ``pace(rows)`` is awaited before each page (the daemon's throttle)."""
    found = await asyncio.to_thread(source.record)
    if found is None:
        return None
    record, last = found
    pushed = Pushed(requests=1)
    point = await peer.sync(record, sender)
    if point is None or point > last:
        pushed.full_copy = True
        await _full_copy(source, peer, sender, last, page_rows, pushed, pace)
        return pushed
    while point < last:
        rows, reached = await asyncio.to_thread(source.changed, point, page_rows)
        if reached == point:
            break  # no change entry left (dropped by a concurrent rewrite): nothing to send
        if pace is not None:
            await pace(len(rows))
        await peer.merge(rows, sender, reached)
        pushed.rows += len(rows)
        pushed.requests += 1
        point = reached
    return pushed


async def _full_copy(
    source: Source,
    peer: Peer,
    sender: str,
    last: int,
    page_rows: int,
    pushed: Pushed,
    pace: Callable[[int], Awaitable[None]] | None,
) -> None:
    after: str | None = None
    while True:
        rows, next_after = await asyncio.to_thread(source.page, after, page_rows)
        final = len(rows) < page_rows
        if pace is not None:
            await pace(len(rows))
        await peer.merge(rows, sender, last if final else None)
        pushed.rows += len(rows)
        pushed.requests += 1
        if final:
            return
        after = next_after
