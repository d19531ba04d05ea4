"""Pure arithmetic of `torus bench`: sizes, percentiles, one run's summary, medians of runs.

Nothing here touches the network, the clock or /proc, so every function is unit-tested
(tests/unit/test_bench_swiftapi.py).  Units are in the names: ``_s``, ``_ms``, ``_bytes``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MIB = 1 << 20
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(?:I?B)?\s*$", re.IGNORECASE)


class Meter:
    """Body bytes moved so far (sent for PUT, received for GET and listings), counted as they
    stream, so a window's MiB/s does not jump by a whole 64 MiB object at each completion."""

    __slots__ = ("body_bytes",)

    def __init__(self) -> None:
        self.body_bytes = 0


def parse_size(text: str) -> int:
    """Bytes in ``"4K"``, ``"1M"``, ``"64MiB"``, ``"1g"`` or ``"4096"``; binary units only."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (expected e.g. 4K, 1M, 64M or 4096)")
    number, unit = match.groups()
    return int(number) * _UNITS[unit.upper()]


def format_size(size_bytes: int) -> str:
    """The shortest exact binary form: 4096 -> "4K", 67108864 -> "64M", 1000 -> "1000"."""
    for unit in ("G", "M", "K"):
        scale = _UNITS[unit]
        if size_bytes and size_bytes % scale == 0:
            return f"{size_bytes // scale}{unit}"
    return str(size_bytes)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence; NaN when it is empty."""
    if not sorted_values:
        return math.nan
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], not {fraction}")
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def summarize(
    *,
    latencies_s: Iterable[float],
    body_bytes: int,
    window_s: float,
    errors: int,
    server_cpu_s: float,
    client_cpu_s: float,
    kernel_s: float,
    box_busy_s: float,
) -> dict[str, float | int]:
    """One run's figures from what the measured window saw.

    ``latencies_s``: one per request that succeeded and ended inside the window (errors are
    never in it; they are counted apart).  ``body_bytes``: object bytes those requests moved.
    CPU: seconds spent during the window by the server processes, by the load generator, by
    the kernel (its threads, irq and softirq) and by the whole machine (all cores); "foreign" is
    what is left: other work on a shared machine, which disturbs the figures when it is high.
    """
    ordered = sorted(latencies_s)
    ops = len(ordered)
    window_s = max(window_s, 1e-9)  # a run stopped by errors at once has an empty window
    foreign_s = box_busy_s - server_cpu_s - client_cpu_s - kernel_s  # NaN if servers unread
    per_op = (lambda seconds: seconds / ops * 1000) if ops else (lambda seconds: math.nan)
    return {
        "ops": ops,
        "errors": errors,
        "window_s": window_s,
        "ops_per_s": ops / window_s,
        "mib_per_s": body_bytes / MIB / window_s,
        "latency_ms_p50": percentile(ordered, 0.50) * 1000,
        "latency_ms_p99": percentile(ordered, 0.99) * 1000,
        "latency_ms_mean": statistics.fmean(ordered) * 1000 if ops else math.nan,
        "server_cpu_ms_per_op": per_op(server_cpu_s),
        "client_cpu_ms_per_op": per_op(client_cpu_s),
        "server_cores": server_cpu_s / window_s,
        "client_cores": client_cpu_s / window_s,
        "kernel_cores": kernel_s / window_s,
        "foreign_cores": math.nan if math.isnan(foreign_s) else max(0.0, foreign_s) / window_s,
        "box_busy_cores": box_busy_s / window_s,
    }


def medians(runs: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, float]:
    """The median of each numeric key over ``runs``; NaN values are left out (NaN if all are)."""
    result = {}
    for key in keys:
        values = [run[key] for run in runs if key in run and not _is_nan(run[key])]
        result[key] = statistics.median(values) if values else math.nan
    return result


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when either is missing (NaN) or the denominator is 0."""
    if _is_nan(numerator) or _is_nan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
