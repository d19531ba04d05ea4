"""The replica plan: how many replicas of each partition every tier should hold.

All values are "replicanths": the expected number of replicas of one
partition that a tier holds, a float.  Four views are computed over the tier
tree, with the meanings Swift gives them so that balance and dispersion
figures compare one to one:

- ``max_replicas``: the most a tier may hold if replicas are spread as
  evenly as the tree's shape allows, ignoring weight (dispersion's bound).
- ``weighted``: what each tier holds if placement follows weight alone
  (a device never holds more than one replica of a partition).
- ``wanted``: the closest-to-weighted spread that is still fully dispersed.
- ``target``: weighted moved towards wanted by at most ``overload``; the
  plan placement follows.  A tier's per-partition count is then bounded by
  ``floor(target)`` and ``ceil(target)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ring.errors import EmptyRingError, RingValidationError
from ring.tiers import DEVICE_DEPTH, ROOT, TierTree

EPSILON = 1e-10


def max_replicas(tree: TierTree, replicas: float, bound=math.ceil) -> list[float]:
    """Dispersion bound per node: a parent's share split evenly over its children."""
    result = [0.0] * len(tree)
    result[ROOT] = replicas
    for node in tree.top_down():
        kids = [c for c in tree.children[node] if tree.device_count[c]]
        for child in kids:
            share = bound(result[node] / len(kids))
            result[child] = min(1, share) if tree.depth[child] == DEVICE_DEPTH else share
    return result


def weighted_replicas(tree: TierTree, replicas: float) -> list[float]:
    """Replicanths by weight, each device capped at one replica per partition."""
    leaves = [n for n in tree.nodes_at(DEVICE_DEPTH) if tree.weight[n] > 0]
    if not leaves:
        raise EmptyRingError("there are no devices with weight in this ring")
    total = sum(tree.weight[n] for n in leaves)
    share = {n: min(1.0, replicas * tree.weight[n] / total) for n in leaves}
    # Devices capped at 1 leave replicanths over; spread them on the others
    # by weight until nothing is left (few rounds: each caps more devices).
    while True:
        remaining = replicas - sum(share.values())
        room = [n for n in leaves if share[n] < 1.0]
        if remaining < EPSILON or not room:
            break
        scale = 1 + remaining / sum(share[n] for n in room)
        for n in room:
            share[n] = min(1.0, share[n] * scale)
    return _sum_up(tree, share)


def _sum_up(tree: TierTree, leaf_values: dict[int, float]) -> list[float]:
    result = [0.0] * len(tree)
    for leaf, value in leaf_values.items():
        node = leaf
        while node >= 0:
            result[node] += value
            node = tree.parent[node]
    return result


def wanted_replicas(tree: TierTree, replicas: float, weighted: list[float]) -> list[float]:
    """The fully dispersed spread closest to weight.

    At every node the replicanths are split over the children as
    ``clamp(scale * weighted, low, high)`` with one ``scale`` chosen so the
    shares add up: ``low``/``high`` are the floor/ceil of the even split
    (dispersion), capped by how many devices a child has.  Where even split
    cannot place everything (too few devices), ``high`` falls back to the
    device count.
    """
    spread = max_replicas(tree, replicas, bound=float)
    wanted = [0.0] * len(tree)
    wanted[ROOT] = replicas
    if replicas > tree.device_count[ROOT] + EPSILON:
        raise RingValidationError(
            f"{replicas:g} replicas need at least {math.ceil(replicas)} devices with weight, "
            f"there are {tree.device_count[ROOT]}"
        )
    for node in tree.top_down():
        kids = [c for c in tree.children[node] if tree.device_count[c]]
        if not kids:
            continue
        low = [min(math.floor(spread[c] + EPSILON), tree.device_count[c]) for c in kids]
        high = [min(math.ceil(spread[c] - EPSILON), tree.device_count[c]) for c in kids]
        if sum(high) < wanted[node] - EPSILON:
            high = [tree.device_count[c] for c in kids]
        if sum(low) > wanted[node] + EPSILON:
            low = [0] * len(kids)
        shares = _water_fill(wanted[node], [weighted[c] for c in kids], low, high)
        for child, share in zip(kids, shares, strict=True):
            wanted[child] = share
    return wanted


def _water_fill(
    total: float, weights: list[float], low: list[float], high: list[float]
) -> list[float]:
    """Shares ``clamp(s * w, low, high)`` adding up to ``total`` (bisection on s)."""

    def shares(scale: float) -> list[float]:
        return [min(h, max(lo, scale * w)) for w, lo, h in zip(weights, low, high, strict=True)]

    lo_s, hi_s = 0.0, 1.0
    while sum(shares(hi_s)) < total - EPSILON and hi_s < 1e300:
        hi_s *= 2
    for _ in range(200):
        mid = (lo_s + hi_s) / 2
        if sum(shares(mid)) < total:
            lo_s = mid
        else:
            hi_s = mid
        if hi_s - lo_s <= hi_s * 1e-15:
            break
    result = shares(hi_s)
    # Bisection leaves a rounding residue; give it to a child with room.
    residue = total - sum(result)
    for i in sorted(range(len(result)), key=lambda i: -weights[i]):
        if abs(residue) < 1e-12:
            break
        fixed = min(high[i], max(low[i], result[i] + residue))
        residue -= fixed - result[i]
        result[i] = fixed
    return result


def required_overload(tree: TierTree, weighted: list[float], wanted: list[float]) -> float:
    """The smallest overload that lets every device take its wanted share."""
    worst = 0.0
    for node in tree.nodes_at(DEVICE_DEPTH):
        if weighted[node] > 0:
            worst = max(worst, (wanted[node] - weighted[node]) / weighted[node])
    return worst


@dataclass(frozen=True)
class ReplicaPlan:
    """Per node: target replicanths and the per-partition bounds it implies."""

    target: list[float]
    min: list[int]
    max: list[int]
    dispersion_max: list[float]  # max_replicas(bound=ceil): what dispersion counts against
    required_overload: float


def build_plan(tree: TierTree, replicas: float, overload: float) -> ReplicaPlan:
    weighted = weighted_replicas(tree, replicas)
    wanted = wanted_replicas(tree, replicas, weighted)
    needed = required_overload(tree, weighted, wanted)
    if needed <= 0.0:
        target = wanted
    else:
        # Move each tier from its weighted share towards its wanted share,
        # as far as the operator's overload allows.
        fraction = min(overload, needed) / needed
        target = [w + (x - w) * fraction for w, x in zip(weighted, wanted, strict=True)]
    return ReplicaPlan(
        target=target,
        min=[math.floor(t + EPSILON) for t in target],
        max=[math.ceil(t - EPSILON) for t in target],
        dispersion_max=max_replicas(tree, replicas),
        required_overload=needed,
    )


def parts_wanted(tree: TierTree, plan: ReplicaPlan, total_slots: int, parts: int) -> dict[int, int]:
    """Whole partition-replicas each device should hold, adding up to ``total_slots``.

    Split top-down by target with the largest-remainder method, so every
    tier's count is its exact share rounded, and the counts always add up.
    A leftover unit goes first to a tier that can take it without holding
    more than its even-spread share (``parts * dispersion_max``): rounding
    up there costs no dispersion.
    """
    slots = {ROOT: total_slots}
    wanted: dict[int, int] = {}
    for node in tree.top_down():
        kids = [c for c in tree.children[node] if plan.target[c] > 0]
        if not kids:
            if tree.depth[node] == DEVICE_DEPTH:
                wanted[tree.device_of_node[node].id] = slots.get(node, 0)
            continue
        parent_target = sum(plan.target[c] for c in kids)
        exact = [slots[node] * plan.target[c] / parent_target for c in kids]
        counts = [math.floor(x) for x in exact]
        left = slots[node] - sum(counts)

        def crowds(i: int, kids=kids, counts=counts) -> bool:
            return counts[i] + 1 > plan.dispersion_max[kids[i]] * parts

        by_remainder = sorted(range(len(kids)), key=lambda i: (crowds(i), counts[i] - exact[i], i))
        for i in by_remainder[:left]:
            counts[i] += 1
        for child, count in zip(kids, counts, strict=True):
            slots[child] = count
    for node in tree.nodes_at(DEVICE_DEPTH):
        wanted.setdefault(tree.device_of_node[node].id, 0)
    return wanted
