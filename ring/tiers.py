"""The tier tree: regions, zones, hosts and devices as integer-indexed nodes.

Placement walks this tree from the root, so it is built once per rebalance
with plain lists indexed by node number: the hot loops index lists instead of
hashing tuples.
"""

from __future__ import annotations

from collections.abc import Iterable

from ring.device import Device

ROOT = 0
DEVICE_DEPTH = 4  # root 0, region 1, zone 2, host 3, device 4


class TierTree:
    """Every live device under root -> region -> zone -> host -> device.

    Node 0 is the root (key ``()``).  ``keys[n]`` is the Swift-style tier
    tuple of node ``n``: ``(region,)``, ``(region, zone)``,
    ``(region, zone, ip)`` or ``(region, zone, ip, dev_id)``.  Children are
    ordered by key so the tree, and everything computed from it, is the same
    for the same devices whatever order they were added in.
    """

    def __init__(self, devices: Iterable[Device]) -> None:
        self.keys: list[tuple] = [()]
        self.depth: list[int] = [0]
        self.parent: list[int] = [-1]
        self.children: list[list[int]] = [[]]
        self.weight: list[float] = [0.0]
        self.device_count: list[int] = [0]  # devices with weight > 0 below the node
        self.index: dict[tuple, int] = {(): ROOT}
        self.device_node: dict[int, int] = {}  # device id -> its leaf node
        self.device_of_node: dict[int, Device] = {}
        # device id -> (region, zone, host, device) node numbers
        self.path: dict[int, tuple[int, int, int, int]] = {}
        for dev in sorted(devices, key=lambda d: (d.region, d.zone, d.ip, d.id)):
            self._add(dev)

    def _add(self, dev: Device) -> None:
        tier = dev.tier
        path = []
        node = ROOT
        for depth in range(1, DEVICE_DEPTH + 1):
            key = tier[:depth]
            child = self.index.get(key)
            if child is None:
                child = len(self.keys)
                self.index[key] = child
                self.keys.append(key)
                self.depth.append(depth)
                self.parent.append(node)
                self.children.append([])
                self.weight.append(0.0)
                self.device_count.append(0)
                self.children[node].append(child)
            path.append(child)
            node = child
        self.device_node[dev.id] = node
        self.device_of_node[node] = dev
        self.path[dev.id] = (path[0], path[1], path[2], path[3])
        for n in (ROOT, *path):
            self.weight[n] += dev.weight
            if dev.weight > 0:
                self.device_count[n] += 1

    def __len__(self) -> int:
        return len(self.keys)

    def nodes_at(self, depth: int) -> list[int]:
        return [n for n, d in enumerate(self.depth) if d == depth]

    def top_down(self) -> list[int]:
        """All nodes, every parent before its children."""
        order = [ROOT]
        for node in order:
            order.extend(self.children[node])
        return order
