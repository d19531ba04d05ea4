"""``[container_auditor]`` and ``[account_auditor]``: the database auditors' typed config
(defaults Swift's: ``interval`` 1800 s, ``containers_per_second`` / ``accounts_per_second``
200).

``rows_per_s`` is ours: Swift's db auditor reads a database's info, O(1); ours reads every
row (replicator/db_auditor.py), about 76,000 a second of one core (measured: a container of
100,000 rows in 1.3 s of CPU), so a node's rows need a limit of their own.  10,000 a second
is about 13% of a core and audits 18 million rows per 30-minute interval.

``concurrency``, ``conn_timeout_s`` and ``node_timeout_s`` are the base class's and unused:
an auditor sends no requests and checks one database at a time.  The rate is named as the
replicators' (``containers_per_s``, replicator/container_replicator_config.py): Swift's name,
with the unit last.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DaemonConfig


@dataclass(frozen=True)
class ContainerAuditorConfig(DaemonConfig):
    interval_s: float = 1800.0  # Swift's db auditors' ``interval``
    containers_per_s: float = 200.0  # containers audited per second; 0: no limit
    rows_per_s: float = 10_000.0  # rows checked per second; 0: no limit

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.containers_per_s < 0 or self.rows_per_s < 0:
            raise ValueError("containers_per_s and rows_per_s must be >= 0")

    @property
    def databases_per_s(self) -> float:
        return self.containers_per_s


@dataclass(frozen=True)
class AccountAuditorConfig(DaemonConfig):
    interval_s: float = 1800.0  # Swift's db auditors' ``interval``
    accounts_per_s: float = 200.0  # accounts audited per second; 0: no limit
    rows_per_s: float = 10_000.0  # rows checked per second; 0: no limit

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.accounts_per_s < 0 or self.rows_per_s < 0:
            raise ValueError("accounts_per_s and rows_per_s must be >= 0")

    @property
    def databases_per_s(self) -> float:
        return self.accounts_per_s
