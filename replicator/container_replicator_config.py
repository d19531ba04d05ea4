"""``[container_replicator]``: the container replicator's typed config (defaults Swift's,
where Swift has one).

As the object replicator does (replicator/object_replicator_config.py), it finds its devices in
the container ring: those at this node's ``bind_ip`` and ``bind_port`` (the container server's
port, as Swift's container-replicator reads the container server's ``bind_port``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DaemonConfig

WEEK_S = 7 * 24 * 3600.0  # Swift's reclaim_age, as replicator/object_replicator_config.py


@dataclass(frozen=True)
class ContainerReplicatorConfig(DaemonConfig):
    interval_s: float = 30.0  # Swift's db replicators' run_pause / interval
    bind_ip: str = "0.0.0.0"
    bind_port: int = 6201
    concurrency: int = 8  # containers replicated at once (Swift's concurrency)
    containers_per_s: float = 50.0  # containers visited per second; 0: no limit
    rows_per_s: float = 0.0  # rows pushed per second; 0: no limit
    page_rows: int = 1000  # rows per REPLICATE merge request (Swift's per_diff)
    # Tombstone rows older than this are removed (containerd_/reclaim.py); every replica is
    # assumed to have got a tombstone within it (Swift's reclaim_age).
    reclaim_age_s: float = WEEK_S
    reclaim_batch_rows: int = 1000  # tombstones read per page; a write reclaims at most these

    @property
    def databases_per_s(self) -> float:
        """The shared pass's name for ``containers_per_s`` (replicator/db_replicator.py)."""
        return self.containers_per_s

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.containers_per_s < 0 or self.rows_per_s < 0 or self.reclaim_age_s < 0:
            raise ValueError("containers_per_s, rows_per_s and reclaim_age_s must be >= 0")
        if not 1 <= self.reclaim_batch_rows <= 100_000:
            raise ValueError("reclaim_batch_rows must be in 1..100000")
        if not 1 <= self.bind_port <= 65535:
            raise ValueError("bind_port must be a TCP port")
        if not 1 <= self.page_rows <= 10_000:
            raise ValueError("page_rows must be in 1..10000")
