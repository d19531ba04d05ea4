"""The objects the restore benchmark stores: a seeded, realistic size mix and their bodies.

Most objects of a real Swift cluster are small and most bytes are in a few large ones, so:

- ``small``: 92 % of the objects, log-uniform 256 B .. 64 KiB (the object server keeps
  bodies up to 64 KiB inline in LMDB, ``inline_max_bytes``: these never make a data file);
- ``medium``: 7.8 %, log-uniform 64 KiB .. 2 MiB before scaling (data files);
- ``large``: 0.2 % (at least one), log-uniform 8 .. 40 MiB before scaling.

The medium and large sizes are then scaled by one factor so that the total is the one asked
for (``--total-mib``); the small ones are left as drawn.  Same seed, same objects.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

SMALL_FRACTION = 0.92
LARGE_FRACTION = 0.002
SMALL_BYTES = (256, 64 << 10)
MEDIUM_BYTES = (64 << 10, 2 << 20)
LARGE_BYTES = (8 << 20, 40 << 20)
POOL_BYTES = 64 << 20  # bodies are slices of one seeded pool (no object is larger)
NAME_BYTES = 16  # each body starts with its own name, so no two bodies are alike


@dataclass(frozen=True)
class Spec:
    index: int
    container: str
    name: str
    size_bytes: int
    kind: str  # "small", "medium", "large"


def _log_uniform(rng: random.Random, low: int, high: int) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def size_mix(objects: int, total_bytes: int, containers: int, seed: int) -> list[Spec]:
    """``objects`` specs whose sizes add up to ``total_bytes`` (to within rounding)."""
    rng = random.Random(seed)
    large = max(1, round(objects * LARGE_FRACTION)) if objects >= 2 else 0
    small = min(objects - large, round(objects * SMALL_FRACTION))
    medium = objects - large - small
    kinds = ["small"] * small + ["medium"] * medium + ["large"] * large
    rng.shuffle(kinds)
    ranges = {"small": SMALL_BYTES, "medium": MEDIUM_BYTES, "large": LARGE_BYTES}
    drawn = [_log_uniform(rng, *ranges[kind]) for kind in kinds]
    small_total = sum(int(s) for s, k in zip(drawn, kinds, strict=True) if k == "small")
    rest_total = sum(s for s, k in zip(drawn, kinds, strict=True) if k != "small")
    if rest_total == 0 or total_bytes <= small_total:
        raise ValueError(f"{total_bytes} bytes is too little for {objects} objects of this mix")
    factor = (total_bytes - small_total) / rest_total
    specs = []
    for index, (kind, size) in enumerate(zip(kinds, drawn, strict=True)):
        size_bytes = int(size) if kind == "small" else min(POOL_BYTES, int(size * factor))
        container = f"restore-{index % containers}"
        specs.append(Spec(index, container, f"o{index:06d}", size_bytes, kind))
    return specs


def body(spec: Spec, pool: bytes) -> bytes:
    """The body of ``spec``: its name, then a slice of the pool that depends on its index."""
    head = spec.name.encode().ljust(NAME_BYTES, b".")[: spec.size_bytes]
    rest = spec.size_bytes - len(head)
    start = (spec.index * 1_048_583) % (len(pool) - rest + 1)
    return head + pool[start : start + rest]


def make_pool(seed: int) -> bytes:
    return random.Random(seed).randbytes(POOL_BYTES)


def describe(specs: list[Spec]) -> list[str]:
    """Lines that show the mix: per kind, count, bytes and min / median / max size."""
    lines = [f"{'kind':<7} {'objects':>8} {'MiB':>9} {'min':>10} {'median':>10} {'max':>10}"]
    for kind in ("small", "medium", "large", "all"):
        sizes = [s.size_bytes for s in specs if kind in ("all", s.kind)]
        if not sizes:
            continue
        lines.append(
            f"{kind:<7} {len(sizes):>8} {sum(sizes) / 2**20:>9.1f} {_human(min(sizes)):>10} "
            f"{_human(int(statistics.median(sizes))):>10} {_human(max(sizes)):>10}"
        )
    return lines


def mix_summary(specs: list[Spec]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for spec in specs:
        entry = summary.setdefault(spec.kind, {"objects": 0, "bytes": 0})
        entry["objects"] += 1
        entry["bytes"] += spec.size_bytes
    return summary


def _human(size_bytes: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:.1f} {unit}"
    return f"{size_bytes} B"
