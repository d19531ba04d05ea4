"""Reclaim: a container's tombstone rows older than ``reclaim_age`` are removed (Swift's
``ContainerBroker.reclaim``: ``DELETE FROM object WHERE deleted = 1 AND created_at < ?``).

The container replicator calls ``reclaim`` on each container it visits, before it pushes: a
page of ``batch`` tombstones is read at a time, and only a page holding old ones costs a
write transaction (which checks each again), so a container of many tombstones never holds
the device's writer long, nor at all when none is old.  A reclaimed row leaves
the tombstone table and the change log (containerd_/changes.py) together:

- the totals do not change: tombstones are not counted, and the stats version (info.py) is
  a sum over every row the container ever merged, which stays what the account ordered the
  container's reports by (lowering it could make a fresher report lose to an older one);
- sync points need nothing: change sequences are device-wide and never reused, so a peer's
  point past a reclaimed change still names the rows after it (``since`` starts at the
  first sequence after the point that is still in the log);
- the row does not come back from a peer: every replicator reclaims before it pushes, so
  no replica sends a tombstone older than reclaim_age, and it is not in the change log.

As in Swift, reclaim assumes every replica got the tombstone within reclaim_age.  A replica
that did not (down longer than that, then back) still holds the live row and pushes it: the
object is listed and counted again, as Swift's would be (the object servers reclaim their
own tombstones after their reclaim_age, so the object itself may come back the same way).
A replica whose clock is behind, or whose reclaim_age is longer, pushes old tombstones back:
they are merged and reclaimed again in the receiver's next pass, harmless churn.  The
replicator (replicator/container_replicator.py) also drops a container deleted longer ago
than reclaim_age, whole.

The container auditor adds the stats version up from the rows it finds, so it allows a
stored version above that sum (``ContainerKind.totals_hold``: reclaimed rows are still in
it), and no longer finds one damaged upward.  Known weaknesses: a container is
dropped without asking whether its DELETE reached the account (Swift checks its reported_*
columns; here they are the container updater's, replicator/reported.py), so a week of the
account's replicas all down leaves the container listed in the account.  A pass reads every
tombstone of every container it visits (about 1 s per 100,000, measured), as Swift's
``DELETE ... WHERE`` scans them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

from service.timestamp import Timestamp

from .rows import ObjectRow

T = TypeVar("T")


class ReclaimStore(Protocol):
    """What reclaim needs of a container store (both ``broker.py``'s and ``memory.py``'s)."""

    changes: Any  # changes.py's ChangeLog (``forget``), or the memory twin's

    def get_row(self, scope: bytes, name: bytes) -> ObjectRow | None: ...
    def tombstones_after(self, cid: bytes, start: bytes, limit: int) -> list[ObjectRow]: ...
    def delete_tombstone(self, cid: bytes, name: bytes) -> None: ...


def old_tombstones(
    store: ReclaimStore, cid: bytes, before: Timestamp, start: bytes, limit: int
) -> tuple[list[bytes], bytes | None]:
    """The names of the tombstones older than ``before`` among the first ``limit`` of ``cid``
    named from ``start``, and where the next page starts (None: no tombstone is left)."""
    page = store.tombstones_after(cid, start, limit)
    old = [row.name.encode("utf-8") for row in page if row.timestamp < before]
    if len(page) < limit:
        return old, None
    return old, page[-1].name.encode("utf-8") + b"\x00"  # the next name up


def reclaim_rows(store: ReclaimStore, cid: bytes, before: Timestamp, names: list[bytes]) -> int:
    """Remove the rows of ``names`` that are still tombstones older than ``before`` (a write
    may have landed since they were read); how many."""
    reclaimed = 0
    for name in names:
        row = store.get_row(cid, name)
        if row is not None and row.deleted and row.timestamp < before:
            store.delete_tombstone(cid, name)
            store.changes.forget(cid, name)
            reclaimed += 1
    return reclaimed


class ContainerReclaimMixin:
    """``reclaim`` for both container brokers (a mixin of ContainerBrokerBase)."""

    @abstractmethod
    def _read(self, device: str, read: Callable[[Any], T]) -> T: ...

    @abstractmethod
    async def _write(self, device: str, write: Callable[[Any], T]) -> T: ...

    @abstractmethod
    async def run_read(self, read: Callable[[], T]) -> T: ...  # service/db_broker.py's

    async def reclaim(self, device: str, cid: bytes, before: Timestamp, batch: int) -> int:
        """Remove the container's tombstones older than ``before``; how many.  A page of
        ``batch`` tombstones is read (``run_read``: in a thread, for LMDB) and only a page that
        has old ones costs a write transaction, so a pass over young tombstones takes none of
        the device's writer.  A container dropped meanwhile has none."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        reclaimed = 0
        start: bytes | None = b""
        while start is not None:
            find = partial(old_tombstones, cid=cid, before=before, start=start, limit=batch)
            old, start = await self.run_read(partial(self._read, device, find))
            if old:
                reclaim = partial(reclaim_rows, cid=cid, before=before, names=old)
                reclaimed += await self._write(device, reclaim)
        return reclaimed
