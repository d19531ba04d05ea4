"""The all-in-one cluster's rings: built in-process if absent, and read back for its ports.

Each of the object, container and account rings has one device per storage node: node N's
device ``dN`` in zone N of region 1, weight 1, on 127.0.0.1 and the port of node N's server for
that ring.  The ports are chosen once, when a ring is built, and the ring is then where they
are recorded: starting the cluster again reads them back (``node_ports``).  Each ring's
``.builder`` file is kept beside it, so ``torus ring DATA/rings/object.builder ...`` works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ring import ringfile
from ring.builder import RingBuilder
from tools.aio_layout import (
    LOOPBACK,
    MIN_PART_HOURS,
    NODES,
    PART_POWER,
    REPLICAS,
    STORAGE_SERVICES,
    device_name,
)

REBALANCE_SEED = 1  # the same layout builds the same rings
_DEVICE_NAME = re.compile(r"d([1-9][0-9]*)")


class LayoutError(ValueError):
    """A ring that does not fit the all-in-one layout (one ``dN`` device per node N)."""


def ring_path(ring_dir: Path, service: str) -> Path:
    return ring_dir / f"{service}.ring"


def build_ring(ring_dir: Path, service: str, port_of: Callable[[int], int]) -> None:
    """Build, save and write ``service``'s ring; ``port_of(node)`` is node N's port for it."""
    builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
    for node in range(1, NODES + 1):
        builder.add_dev(
            region=1,
            zone=node,
            ip=LOOPBACK,
            port=port_of(node),
            device=device_name(node),
            weight=1.0,
        )
    builder.rebalance(seed=REBALANCE_SEED)
    ring_dir.mkdir(parents=True, exist_ok=True)
    builder.save(str(ring_dir / f"{service}.builder"))
    ringfile.write(ring_path(ring_dir, service), builder.get_ring())


def ensure_rings(ring_dir: Path, port_of: Callable[[str, int], int]) -> list[str]:
    """Build each ring whose .ring file is missing; the services whose rings were built."""
    built = []
    for service in STORAGE_SERVICES:
        if not ring_path(ring_dir, service).exists():
            build_ring(ring_dir, service, lambda node, s=service: port_of(s, node))
            built.append(service)
    return built


def node_ports(ring_dir: Path) -> dict[int, dict[str, int]]:
    """``{node: {service: port}}`` as the rings record them.

    Raises ``LayoutError`` for a device that is not ``dN`` on 127.0.0.1, or a node whose
    devices are on two ports of one ring (one server per node and ring serves them all).
    """
    nodes: dict[int, dict[str, int]] = {}
    for service in STORAGE_SERVICES:
        path = ring_path(ring_dir, service)
        for device in ringfile.read(path).devices:
            if device is None:
                continue
            match = _DEVICE_NAME.fullmatch(device.device)
            if match is None or device.ip != LOOPBACK:
                raise LayoutError(
                    f"{path}: device {device.ip}:{device.port}/{device.device} is not an "
                    f"all-in-one device (dN on {LOOPBACK})"
                )
            node = int(match.group(1))
            port = nodes.setdefault(node, {}).setdefault(service, device.port)
            if port != device.port:
                raise LayoutError(
                    f"{path}: node {node}'s devices are on ports {port} and {device.port}"
                )
    for node, ports in nodes.items():
        missing = [service for service in STORAGE_SERVICES if service not in ports]
        if missing:
            raise LayoutError(f"node {node} has a device in some rings but not in {missing}")
    return dict(sorted(nodes.items()))
