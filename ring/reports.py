"""Balance and dispersion, defined as Swift defines them so figures compare.

- A device's balance is how far, in percent, the partition-replicas it holds
  are from what its weight alone asks for; the ring's balance is the worst
  device's (a device of weight 0 that still holds any is MAX_BALANCE).
- Dispersion is the percentage of partition-replicas placed in a tier beyond
  what even spreading would allow (``max_replicas``), counting each replica
  once, at the depth where its partition is worst off.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ring.assignment import iter_part_devs
from ring.device import Device
from ring.plan import max_replicas
from ring.state import NONE_DEV_ID
from ring.tiers import TierTree

MAX_BALANCE = 999.99


def device_balances(
    devices: Iterable[Device], held: Counter[int], parts: int, replicas: float
) -> dict[int, float]:
    devices = list(devices)
    total_weight = sum(d.weight for d in devices)
    balances = {}
    for dev in devices:
        if not dev.weight:
            balances[dev.id] = MAX_BALANCE if held[dev.id] else 0.0
            continue
        wanted = parts * replicas * dev.weight / total_weight
        balances[dev.id] = 100.0 * held[dev.id] / wanted - 100.0
    return balances


def balance(devices: Iterable[Device], held: Counter[int], parts: int, replicas: float) -> float:
    values = device_balances(devices, held, parts, replicas).values()
    return max((abs(v) for v in values), default=0.0)


@dataclass(frozen=True)
class DispersionReport:
    dispersion: float  # percent of partition-replicas at risk
    max_replicas: dict[tuple, float]  # tier -> most replicas even spreading allows
    # tier -> [partitions with 0 replicas in the tier, with 1, 2, ...]
    graph: dict[tuple, list[int]]


def dispersion(
    devices: Sequence[Device],
    rows: Sequence[array],
    part_power: int,
    replicas: float,
    *,
    with_graph: bool = False,
) -> DispersionReport:
    tree = TierTree(d for d in devices if d.weight > 0)
    allowed = max_replicas(tree, replicas)
    parts = 1 << part_power
    path = tree.path
    width = len(rows) + 1
    graph_counts: dict[int, list[int]] = {}
    at_risk = 0
    for _part, dev_ids in iter_part_devs(rows, parts):
        nodes = [n for d in dev_ids if d != NONE_DEV_ID and d in path for n in path[d]]
        distinct = len(set(nodes)) == len(nodes)
        if with_graph:
            for node, count in Counter(nodes).items():
                graph_counts.setdefault(node, [0] * width)[count] += 1
        if distinct and len(nodes) == 4 * len(dev_ids):
            continue  # every replica alone in every tier: nothing at risk
        excess_by_depth = Counter()
        for node, count in Counter(nodes).items():
            if count > allowed[node]:
                excess_by_depth[tree.depth[node]] += count - allowed[node]
        # replicas on devices that lost their weight are at risk too
        excess_by_depth[4] += sum(1 for d in dev_ids if d != NONE_DEV_ID and d not in path)
        at_risk += max(excess_by_depth.values(), default=0)
    graph = {}
    for node, counts in graph_counts.items():
        counts[0] = parts - sum(counts[1:])
        graph[tree.keys[node]] = counts
    return DispersionReport(
        dispersion=100.0 * at_risk / (parts * replicas) if parts else 0.0,
        max_replicas={tree.keys[n]: allowed[n] for n in range(len(tree))},
        graph=graph,
    )
