"""What the Torus side of the storage benchmarks shares: a server process and its CPU time.

Servers are started exactly as the functional tests start them (tests/server_process.py:
``python -m tools.cli serve SERVICE --config FILE``), on a free loopback port, one device.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from server_process import ServerProcess  # noqa: E402  (tests/, on the path just above)

DEVICE = "sda"
ACCOUNT = "AUTH_bench"
SECRET = "torus-bench"
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def start_server(service: str, workdir: Path, **options: Any) -> ServerProcess:
    """A running ``service`` server with one device, single process unless told otherwise.

    ``log_level`` WARNING: no access-log line per request (the Swift side logs at WARNING too).
    """
    options = {"workers": 0, "log_level": "WARNING", **options}
    server = ServerProcess(service, workdir, options=options, secret=SECRET)
    (server.devices / DEVICE).mkdir(exist_ok=True)
    return server.start()


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (all its threads) plus its live children's."""
    user = system = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        user, system = int(fields[11]) / _TICKS_PER_S, int(fields[12]) / _TICKS_PER_S
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    child_user, child_system = cpu_seconds(int(child))
                    user, system = user + child_user, system + child_system
    except FileNotFoundError:
        pass  # it (or a child) exited between two reads
    return user, system


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def object_name(index: int) -> str:
    # The Swift side's names (bench/storage/swift_listing.py): the same rows, the same marker.
    return f"photos/{index % 97:02d}/{index:09d}.jpg"


def middle_marker(rows: int) -> str:
    """The name just before the middle row in sorted order, as the Swift side computes it."""
    return sorted(object_name(i) for i in range(rows))[rows // 2 - 1]
