"""The request metrics every server keeps: requests by method and status class, and latency.

``torus_requests_total{method, class}`` counts answered requests; ``torus_request_duration_
seconds{method}`` is a histogram of the time from the request's first byte to the access-log
call (aiohttp's own measure, the one the access line shows), so a streamed GET counts until
its last byte was written.  ``observe`` runs on every request, from the access logger
(service/runner.py): one dict lookup, a bisect, three slot updates, ~0.5 µs.

Methods are a fixed list (Swift's, plus ``other`` for anything else) so no client can grow the
series without bound.  Swift's backend-only REPLICATE and SSYNC arrive as POST with an
override header (service/methods.py) and are counted as POST: telling them apart would cost a
header lookup on every request for two methods the daemons already count themselves.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from .metrics import Family, Registry

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS", "other")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# Seconds: a cached 4 KiB GET takes ~1 ms end to end, a 64 MiB PUT some hundreds of ms.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class RequestMetrics:
    """The registry of request metrics and its hot path, over ``values`` (``None``: private)."""

    def __init__(self, values: memoryview | None = None) -> None:
        registry = Registry()
        self.requests = registry.counter(
            "torus_requests_total",
            "Requests answered, by method and status class.",
            {"method": METHODS, "class": STATUS_CLASSES},
        )
        self.duration = registry.histogram(
            "torus_request_duration_seconds",
            "Time from a request's arrival to its last byte sent, by method.",
            {"method": METHODS},
            LATENCY_BUCKETS_S,
        )
        self.registry = registry
        self.values = registry.new_values() if values is None else values
        if len(self.values) != registry.size:
            raise ValueError(f"{len(self.values)} slots for a registry of {registry.size}")
        # method -> (first counter slot, first histogram slot): looked up once per request.
        self._slots = {
            method: (self.requests.slot(method, "1xx"), self.duration.slot(method))
            for method in METHODS
        }
        self._other = self._slots["other"]
        self._buckets = self.duration.buckets
        self._sum_offset = self.duration.width - 1

    @property
    def size(self) -> int:
        return self.registry.size

    def observe(self, method: str, status: int, duration_s: float) -> None:
        counter_slot, histogram_slot = self._slots.get(method, self._other)
        klass = status // 100 - 1  # 1xx -> 0 .. 5xx -> 4
        values = self.values
        values[counter_slot + (klass if 0 <= klass <= 4 else 4)] += 1
        # Histogram.observe inlined: this runs once per request.
        values[histogram_slot + bisect_left(self._buckets, duration_s)] += 1
        values[histogram_slot + self._sum_offset] += duration_s

    def families(self, values: Sequence[float]) -> list[Family]:
        """The families over ``values`` (these, or several workers' summed)."""
        return self.registry.families(values)
