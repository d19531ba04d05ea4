"""``[object_expirer]``: the object expirer's typed config (defaults Swift's, where Swift has
one).

The expirer finds its share of the queue as the object replicator finds its devices: the
container ring's devices at this node's ``bind_ip`` (any of this host's addresses when
``0.0.0.0``) and ``bind_port``, the container server's port, because the queue lives in the
container servers (replicator/object_expirer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DaemonConfig


@dataclass(frozen=True)
class ObjectExpirerConfig(DaemonConfig):
    interval_s: float = 300.0  # Swift's object-expirer interval
    bind_ip: str = "0.0.0.0"
    bind_port: int = 6201  # the container server's
    # Queue rows handled per second (Swift's tasks_per_second); 0: no limit.
    tasks_per_s: float = 50.0
    # A row is handled by one of its bucket's replicas (chosen by the row's name hash); once
    # it is this overdue, by every replica that holds it: the chosen one's node may be down.
    takeover_s: float = 3600.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tasks_per_s < 0 or self.takeover_s < 0:
            raise ValueError("tasks_per_s and takeover_s must be >= 0")
        if not 1 <= self.bind_port <= 65535:
            raise ValueError("bind_port must be a TCP port")
