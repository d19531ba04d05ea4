"""``[account_replicator]``: the account replicator's typed config (defaults Swift's, where
Swift has one).  Its devices are the account ring's at ``bind_ip`` and ``bind_port`` (the
account server's port), as the container replicator's are the container ring's."""

from __future__ import annotations

from dataclasses import dataclass

from .config import DaemonConfig


@dataclass(frozen=True)
class AccountReplicatorConfig(DaemonConfig):
    interval_s: float = 30.0  # Swift's db replicators' interval
    bind_ip: str = "0.0.0.0"
    bind_port: int = 6202
    concurrency: int = 8  # accounts replicated at once (Swift's concurrency)
    accounts_per_s: float = 50.0  # accounts visited per second; 0: no limit
    rows_per_s: float = 0.0  # rows pushed per second; 0: no limit
    page_rows: int = 1000  # rows per REPLICATE merge request (Swift's per_diff)

    @property
    def databases_per_s(self) -> float:
        """The shared pass's name for ``accounts_per_s`` (replicator/db_replicator.py)."""
        return self.accounts_per_s

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.accounts_per_s < 0 or self.rows_per_s < 0:
            raise ValueError("accounts_per_s and rows_per_s must be >= 0")
        if not 1 <= self.bind_port <= 65535:
            raise ValueError("bind_port must be a TCP port")
        if not 1 <= self.page_rows <= 10_000:
            raise ValueError("page_rows must be in 1..10000")
