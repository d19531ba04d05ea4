"""Which nodes a request goes to, in what order, and which ones to leave alone for a while.

``read_nodes``: the primaries in random order (spreading reads), then the handoffs;
``write_nodes``: the primaries in ring order (replica ``i`` first for slot ``i``), then the
handoffs.  Both are lazy (a handoff's place is computed only when a primary failed) and skip
error-limited nodes.

Error limiting is Swift's: each failure (unreachable, timed out, a 5xx) counts against the
node; one with more than ``error_suppression_limit`` errors, the last of them less than
``error_suppression_interval_s`` ago, is skipped until that interval passes.  A 507 (the
device is unmounted or full) limits the node at once.  Counts are per worker process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ring.device import Device
from ring.ring import Ring

if TYPE_CHECKING:
    from .context import Proxy

NodeKey = tuple[str, int, str]


def node_key(node: Device) -> NodeKey:
    return node.ip, node.port, node.device


class NodeErrors:
    """Error counts per node (ip, port, device), forgotten an interval after the last one."""

    def __init__(
        self, limit: int, interval_s: float, *, clock: Callable[[], float] | None = None
    ) -> None:
        self.limit = limit
        self.interval_s = interval_s
        self._clock = clock or time.monotonic
        self._errors: dict[NodeKey, tuple[int, float]] = {}  # key -> (count, last error time)

    def record(self, node: Device) -> None:
        """One more error for ``node``."""
        key = node_key(node)
        now = self._clock()
        count, last = self._errors.get(key, (0, now))
        if now - last > self.interval_s:
            count = 0
        self._errors[key] = (count + 1, now)

    def limit_now(self, node: Device) -> None:
        """Skip ``node`` for an interval from now (Swift's error_limit, on a 507)."""
        self._errors[node_key(node)] = (self.limit + 1, self._clock())

    def limited(self, node: Device) -> bool:
        if not self._errors:  # the common case: nothing failed lately
            return False
        key = node_key(node)
        entry = self._errors.get(key)
        if entry is None:
            return False
        count, last = entry
        if self._clock() - last > self.interval_s:
            del self._errors[key]
            return False
        return count > self.limit

    def count(self, node: Device) -> int:
        entry = self._errors.get(node_key(node))
        return 0 if entry is None else entry[0]


def read_nodes(
    proxy: Proxy, ring: Ring, part: int, primaries: list[Device] | None = None
) -> Iterator[Device]:
    """Primaries shuffled, then handoffs, skipping error-limited nodes.  ``primaries``: the
    ones ``ring.get_nodes`` already gave (saves a lookup)."""
    nodes = list(ring.get_part_nodes(part) if primaries is None else primaries)
    proxy.rng.shuffle(nodes)
    return _usable(proxy.errors, nodes, ring, part)


def write_nodes(
    proxy: Proxy, ring: Ring, part: int, primaries: list[Device] | None = None
) -> Iterator[Device]:
    """Primaries in ring order, then handoffs, skipping error-limited nodes."""
    nodes = ring.get_part_nodes(part) if primaries is None else primaries
    return _usable(proxy.errors, nodes, ring, part)


def _usable(errors: NodeErrors, primaries: list[Device], ring: Ring, part: int) -> Iterator[Device]:
    for node in primaries:
        if not errors.limited(node):
            yield node
    for node in ring.get_more_nodes(part):
        if not errors.limited(node):
            yield node
