"""``[account_reaper]``: the account reaper's typed config (defaults Swift's, where Swift has
one).

The reaper finds its own devices in the account ring as the object replicator finds its own
in the object ring: the ring devices at this node's ``bind_ip`` (any of this host's addresses
when ``0.0.0.0``: replicator/object_replication_local.py) and ``bind_port``, the account
server's port.  Only the device that is the *first* primary of a deleted account's
partition reaps it, so one node does the work.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DaemonConfig


@dataclass(frozen=True)
class AccountReaperConfig(DaemonConfig):
    interval_s: float = 3600.0  # Swift's account-reaper interval
    concurrency: int = 25  # objects (or containers) being deleted at once: Swift's
    bind_ip: str = "0.0.0.0"
    bind_port: int = 6202  # the account server's port: Swift's
    # How long after its DELETE an account is left alone (Swift's delay_reaping, 0): time
    # for an operator to undo a mistaken DELETE before any object is gone.
    delay_reaping_s: float = 0.0
    # Deletes started per second, an object or a container each (on all its replicas);
    # 0: no limit.  Swift's reaper has none beyond its concurrency; a reap of millions of
    # objects should not starve the object servers' clients.
    deletes_per_s: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.delay_reaping_s < 0 or self.deletes_per_s < 0:
            raise ValueError("delay_reaping_s and deletes_per_s must be >= 0")
        if not 1 <= self.bind_port <= 65535:
            raise ValueError("bind_port must be a TCP port")
