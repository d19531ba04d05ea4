"""The daemons' typed config: one frozen dataclass per daemon, loaded from its own table.

``[object_updater]`` and ``[container_updater]`` (underscores, not Swift's dashes: the table
name is also the ``TORUS_<TABLE>_<KEY>`` environment prefix, service/config.py, and a dash
cannot appear in a variable name).  Defaults are Swift's where Swift has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.config import LOG_LEVELS


@dataclass(frozen=True)
class DaemonConfig:
    """What every per-device daemon needs."""

    devices: Path = Path("/srv/node")
    mount_check: bool = True  # skip a device that is not a mount point (Swift's check_drive)
    interval_s: float = 300.0  # from the start of one pass to the start of the next
    log_level: str = "INFO"
    conn_timeout_s: float = 0.5
    node_timeout_s: float = 10.0  # Swift's updaters wait longer than the servers do
    concurrency: int = 8  # updates in flight at once

    def __post_init__(self) -> None:
        if self.interval_s < 0:
            raise ValueError("interval_s must be >= 0")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {sorted(LOG_LEVELS)}")
        if self.conn_timeout_s <= 0 or self.node_timeout_s <= 0:
            raise ValueError("conn_timeout_s and node_timeout_s must be > 0")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")


@dataclass(frozen=True)
class ObjectUpdaterConfig(DaemonConfig):
    # async_pendings replayed per second (Swift's objects_per_second); 0: no limit.
    updates_per_s: float = 50.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.updates_per_s < 0:
            raise ValueError("updates_per_s must be >= 0")


@dataclass(frozen=True)
class ContainerUpdaterConfig(DaemonConfig):
    concurrency: int = 4  # Swift's container updater default
    # Account reports sent per second, async_pendings and changed containers alike (Swift's
    # containers_per_second); unchanged containers are not counted: they cost no report.
    reports_per_s: float = 50.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reports_per_s < 0:
            raise ValueError("reports_per_s must be >= 0")
