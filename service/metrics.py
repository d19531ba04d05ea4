"""A small metrics registry: counters and histograms over one flat array of float64 slots.

Prometheus client libraries keep a child object per label set, found by hashing the label
tuple on every update.  Here every label of a family has a fixed, declared set of values
(methods, status classes), so the registry lays every series out at construction, in one
flat array of doubles: an update is an index computed from small integers and one
``values[i] += x``, with no label tuple built and nothing allocated per request.  The array
is whatever the owner passes in: a private ``bytearray`` in a single-process server, a file
mapped in /dev/shm by each worker of a several-process one (service/metrics_shm.py), which
lets a scrape of any worker sum them all.

A histogram stores its buckets *non-cumulative* (one slot per bucket plus one for +Inf, then
the sum): an observation adds to one bucket, not to every bucket above it, and the
exposition (``families``) makes them cumulative, as the format wants, once per scrape.

Only what is stored lives here; the text format is service/metrics_text.py, the request
metrics every server keeps are service/metrics_requests.py.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

SLOT_BYTES = 8  # one float64 per slot
Labels = tuple[tuple[str, str], ...]  # ((name, value), ...), in declared order


@dataclass(frozen=True)
class Sample:
    name: str  # the family name plus any suffix (``_bucket``, ``_sum``, ``_count``)
    labels: Labels
    value: float


@dataclass(frozen=True)
class Family:
    """One metric family as exposed: its samples, in order."""

    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    samples: tuple[Sample, ...]


class _Declared:
    """A family laid out in the registry: ``width`` slots per label set, from ``offset``."""

    kind = ""
    width = 1

    def __init__(
        self, name: str, help_text: str, labels: Mapping[str, Sequence[str]], offset: int
    ) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.label_sets: tuple[Labels, ...] = tuple(
            tuple(zip(self.label_names, values, strict=True))
            for values in itertools.product(*(tuple(v) for v in labels.values()))
        )
        self._index = {
            tuple(value for _, value in label_set): i for i, label_set in enumerate(self.label_sets)
        }
        self.offset = offset

    @property
    def size(self) -> int:
        return self.width * len(self.label_sets)

    def slot(self, *label_values: str) -> int:
        """The first slot of one label set (KeyError for values not declared).  Look it up
        once, outside the hot path; updates then take the integer."""
        return self.offset + self.width * self._index[label_values]


class Counter(_Declared):
    kind = "counter"

    def family(self, values: Sequence[float]) -> Family:
        return Family(
            self.name,
            self.kind,
            self.help,
            tuple(
                Sample(self.name, label_set, values[self.offset + i])
                for i, label_set in enumerate(self.label_sets)
            ),
        )


class Histogram(_Declared):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Mapping[str, Sequence[str]],
        offset: int,
        buckets: Sequence[float],
    ) -> None:
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be distinct and increasing")
        self.buckets = tuple(float(b) for b in buckets)
        self.width = len(self.buckets) + 2  # each bucket, +Inf, then the sum
        super().__init__(name, help_text, labels, offset)

    def observe(self, values: Sequence[float] | memoryview, slot: int, amount: float) -> None:
        """Count ``amount`` at the label set whose first slot is ``slot``."""
        values[slot + bisect_left(self.buckets, amount)] += 1  # le: amount <= bound
        values[slot + self.width - 1] += amount

    def family(self, values: Sequence[float]) -> Family:
        samples: list[Sample] = []
        bounds = [*(_bound_text(b) for b in self.buckets), "+Inf"]
        for i, label_set in enumerate(self.label_sets):
            base = self.offset + i * self.width
            cumulative = 0.0
            for j, bound in enumerate(bounds):
                cumulative += values[base + j]
                samples.append(
                    Sample(f"{self.name}_bucket", (*label_set, ("le", bound)), cumulative)
                )
            samples.append(Sample(f"{self.name}_sum", label_set, values[base + self.width - 1]))
            samples.append(Sample(f"{self.name}_count", label_set, cumulative))
        return Family(self.name, self.kind, self.help, tuple(samples))


def _bound_text(bound: float) -> str:
    return repr(bound)  # 0.005, 1.0: what Prometheus' own clients write


_D = TypeVar("_D", Counter, Histogram)


class Registry:
    """Declare every family first; ``size`` is then the number of slots the values need."""

    def __init__(self) -> None:
        self._declared: list[Counter | Histogram] = []
        self.size = 0

    def counter(self, name: str, help_text: str, labels: Mapping[str, Sequence[str]]) -> Counter:
        return self._add(Counter(name, help_text, labels, self.size))

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Mapping[str, Sequence[str]],
        buckets: Sequence[float],
    ) -> Histogram:
        return self._add(Histogram(name, help_text, labels, self.size, buckets))

    def _add(self, declared: _D) -> _D:
        if any(d.name == declared.name for d in self._declared):
            raise ValueError(f"{declared.name} declared twice")
        self._declared.append(declared)
        self.size += declared.size
        return declared

    def new_values(self) -> memoryview:
        """Zeroed private storage for this registry."""
        return memoryview(bytearray(self.size * SLOT_BYTES)).cast("d")

    def families(self, values: Sequence[float]) -> list[Family]:
        if len(values) != self.size:
            raise ValueError(f"{len(values)} values for {self.size} slots")
        return [declared.family(values) for declared in self._declared]
