"""``[object_replicator]``: the object replicator's typed config (defaults Swift's, where
Swift has one).

The replicator finds its own devices in the object ring as Swift's does: the ring devices at
this node's ``bind_ip`` (any of this host's addresses when ``0.0.0.0`` or ``::``:
replicator/object_replication_local.py) and ``bind_port`` (the object server's port, as
Swift's object-replicator reads the object server's ``bind_port``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DaemonConfig

WEEK_S = 7 * 86400.0


@dataclass(frozen=True)
class ObjectReplicatorConfig(DaemonConfig):
    interval_s: float = 30.0  # Swift's object-replicator run_pause
    node_timeout_s: float = 60.0  # a push waits for the receiver's last fsync; Swift's is 10
    bind_ip: str = "0.0.0.0"
    bind_port: int = 6200
    # Tombstones older than this are dropped when their suffix is rehashed (Swift's).
    reclaim_age_s: float = WEEK_S
    # Every this many passes, every suffix is rehashed, not only the invalid ones: that is
    # when old tombstones in unchanged suffixes are reclaimed (Swift lists its dirs every 10).
    full_rehash_every_passes: int = 10
    partitions_per_s: float = 20.0  # partitions visited per second; 0: no limit
    bytes_per_s: float = 0.0  # object bodies pushed per second; 0: no limit
    progress_interval_s: float = 60.0  # a progress line this often during a long pass

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reclaim_age_s < 0 or self.partitions_per_s < 0 or self.bytes_per_s < 0:
            raise ValueError("reclaim_age_s, partitions_per_s and bytes_per_s must be >= 0")
        if not 1 <= self.bind_port <= 65535:
            raise ValueError("bind_port must be a TCP port")
        if self.full_rehash_every_passes < 1 or self.progress_interval_s <= 0:
            raise ValueError("full_rehash_every_passes >= 1 and progress_interval_s > 0")
