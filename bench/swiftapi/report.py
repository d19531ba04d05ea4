"""Tables of the side-by-side runner (run.py): medians per cell and system, ratios, targets.

Pure: runs in, text out (unit-tested).  A run is loadgen.py's JSON object plus ``system``
("torus" or "swift") and ``cell`` (e.g. "get-4K"); each cell has one headline metric (ops/s,
or MiB/s for large objects) and maybe a target from issue 4, e.g. Torus ≥3x Swift's ops/s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from measure import medians, ratio

SYSTEMS = ("torus", "swift")
MEDIAN_KEYS = (
    "ops_per_s",
    "mib_per_s",
    "latency_ms_p50",
    "latency_ms_p99",
    "server_cpu_ms_per_op",
    "client_cpu_ms_per_op",
    "server_cores",
    "client_cores",
    "kernel_cores",
    "foreign_cores",
    "errors",
)


@dataclass(frozen=True)
class Target:
    throughput_ratio: float  # Torus/Swift of the headline metric, at least
    cpu_ratio: float | None = None  # Torus/Swift server CPU per op, at most


@dataclass(frozen=True)
class Cell:
    name: str  # e.g. "put-4K"
    flags: tuple[str, ...]  # loadgen.py flags
    metric: str  # "ops_per_s" or "mib_per_s"
    target: Target | None = None


def cell_medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{cell: {system: {key: median}}}``, with ``n``, the number of runs, and ``disturbed``,
    how many of them foreign work disturbed (see run.py)."""
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for run in runs:
        grouped.setdefault(run["cell"], {}).setdefault(run["system"], []).append(run)
    return {
        cell: {
            system: {
                **medians(rs, MEDIAN_KEYS),
                "n": float(len(rs)),
                "disturbed": float(sum(bool(r.get("disturbed")) for r in rs)),
            }
            for system, rs in by_system.items()
        }
        for cell, by_system in grouped.items()
    }


def verdict(cell: Cell, torus: Mapping[str, float], swift: Mapping[str, float]) -> str:
    """Whether Torus meets the cell's target: "met", "missed (...)", "" if none, "?" if
    a side is missing."""
    if cell.target is None:
        return ""
    throughput = ratio(torus.get(cell.metric, math.nan), swift.get(cell.metric, math.nan))
    if math.isnan(throughput):
        return "?"
    missed = []
    if throughput < cell.target.throughput_ratio:
        missed.append(f"{throughput:.2f}x < {cell.target.throughput_ratio:g}x")
    if cell.target.cpu_ratio is not None:
        cpu = ratio(torus["server_cpu_ms_per_op"], swift["server_cpu_ms_per_op"])
        if math.isnan(cpu) or cpu > cell.target.cpu_ratio:
            missed.append(f"CPU {cpu:.2f} > {cell.target.cpu_ratio:.2f}")
    return "met" if not missed else "missed: " + ", ".join(missed)


def describe_target(target: Target | None) -> str:
    if target is None:
        return ""
    text = f"≥{target.throughput_ratio:g}x"
    if target.cpu_ratio is not None:
        text += f", CPU ≤{target.cpu_ratio:.2g}x"
    return text


def _num(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _runs(side: Mapping[str, float]) -> str:
    if "n" not in side:
        return "0"
    return f"{side['n']:.0f} ({side.get('disturbed', 0):.0f})"


def markdown(cells: Sequence[Cell], table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """One row per cell: headline metric, ratio, target, latency, CPU per op, errors."""
    lines = [
        "| workload | Torus | Swift | Torus/Swift | target | p50 / p99 ms, Torus | "
        "p50 / p99 ms, Swift | server CPU ms/op, Torus | Swift | CPU Torus/Swift | "
        "client CPU ms/op, T / S | errors T / S | runs (disturbed) T / S |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    nothing: dict[str, float] = {}
    for cell in cells:
        by_system = table.get(cell.name, {})
        torus, swift = by_system.get("torus", nothing), by_system.get("swift", nothing)

        def get(side: Mapping[str, float], key: str) -> float:
            return side.get(key, math.nan)

        cpu_ratio = ratio(get(torus, "server_cpu_ms_per_op"), get(swift, "server_cpu_ms_per_op"))
        unit = "ops/s" if cell.metric == "ops_per_s" else "MiB/s"
        result = verdict(cell, torus, swift)
        target = describe_target(cell.target) + (f" ({result})" if result else "")
        lines.append(
            f"| {cell.name} ({unit}) | {_num(get(torus, cell.metric))} "
            f"| {_num(get(swift, cell.metric))} "
            f"| {_num(ratio(get(torus, cell.metric), get(swift, cell.metric)), 2)} | {target} "
            f"| {_num(get(torus, 'latency_ms_p50'))} / {_num(get(torus, 'latency_ms_p99'))} "
            f"| {_num(get(swift, 'latency_ms_p50'))} / {_num(get(swift, 'latency_ms_p99'))} "
            f"| {_num(get(torus, 'server_cpu_ms_per_op'), 2)} "
            f"| {_num(get(swift, 'server_cpu_ms_per_op'), 2)} "
            f"| {_num(cpu_ratio, 2)} "
            f"| {_num(get(torus, 'client_cpu_ms_per_op'), 2)} / "
            f"{_num(get(swift, 'client_cpu_ms_per_op'), 2)} "
            f"| {_num(get(torus, 'errors'), 0)} / {_num(get(swift, 'errors'), 0)} "
            f"| {_runs(torus)} / {_runs(swift)} |"
        )
    return "\n".join(lines) + "\n"
