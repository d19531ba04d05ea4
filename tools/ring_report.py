"""What `torus ring` prints: the summary, device tables and the dispersion report.

Every function returns lines rather than printing, so the commands decide
where output goes and tests can read it.  The layout follows
swift-ring-builder's, so operators' eyes (and scripts) find things where
they expect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

from ring import ringfile
from ring.builder import RingBuilder
from ring.device import Device
from ring.errors import RingError

REMOVING_FLAG = "removing"
DEVICE_HEADERS = (
    "id",
    "region",
    "zone",
    "ip address:port",
    "replication ip:port",
    "name",
    "weight",
    "partitions",
    "balance",
    "flags",
    "meta",
)
_LEFT_ALIGNED = frozenset(("flags", "meta", "Tier"))


def bracketed(ip: str) -> str:
    """IPv6 addresses in brackets, so ``ip:port`` stays readable."""
    return f"[{ip}]" if ":" in ip else ip


def format_device(dev: Device) -> str:
    """One device in the search-value syntax, e.g. ``d0r1z1-10.0.0.1:6200R10.0.0.1:6200/sda_""``."""
    return (
        f"d{dev.id}r{dev.region}z{dev.zone}-{bracketed(dev.ip)}:{dev.port}"
        f'R{bracketed(dev.replication_ip)}:{dev.replication_port}/{dev.device}_"{dev.meta}"'
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Columns as wide as their widest cell; text columns left, numbers right."""
    rows = [list(row) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if header in _LEFT_ALIGNED else cell.rjust(width)
            for header, cell, width in zip(headers, cells, widths, strict=True)
        ]
        return " ".join(parts).rstrip()

    return [line(headers)] + [line(row) for row in rows]


def device_table(builder: RingBuilder, devices: Iterable[Device]) -> list[str]:
    held = builder.parts_held()
    balances = builder.device_balances()
    rows = [
        (
            str(dev.id),
            str(dev.region),
            str(dev.zone),
            f"{bracketed(dev.ip)}:{dev.port}",
            f"{bracketed(dev.replication_ip)}:{dev.replication_port}",
            dev.device,
            f"{dev.weight:.2f}",
            str(held[dev.id]),
            f"{balances.get(dev.id, 0.0):.2f}",
            REMOVING_FLAG if builder.is_removed(dev.id) else "",
            dev.meta,
        )
        for dev in devices
    ]
    return table(DEVICE_HEADERS, rows)


def summary(builder: RingBuilder, builder_path: str, ring_path: str) -> list[str]:
    devices = list(builder.devices())
    regions = len({d.region for d in devices})
    zones = len({(d.region, d.zone) for d in devices})
    dispersion = "" if builder.dispersion is None else f", {builder.dispersion:.2f} dispersion"
    left = timedelta(seconds=builder.min_part_seconds_left())
    lines = [
        f"{builder_path}, build version {builder.version}, id {builder.id}",
        f"{builder.parts} partitions, {builder.replicas:.6f} replicas, {regions} regions, "
        f"{zones} zones, {len(devices)} devices, {builder.get_balance():.2f} balance{dispersion}",
        "The minimum number of hours before a partition can be reassigned is "
        f"{builder.min_part_hours} ({left} remaining)",
        f"The overload factor is {builder.overload * 100:.2f}% ({builder.overload:.6f})",
        ring_file_status(builder, ring_path),
        "Devices:",
    ]
    by_place = sorted(devices, key=lambda d: (d.region, d.zone, d.ip, d.device, d.id))
    return lines + device_table(builder, by_place)


def ring_file_status(builder: RingBuilder, ring_path: str) -> str:
    """Whether the ring file holds what the builder would write now."""
    if not os.path.exists(ring_path):
        return f"Ring file {ring_path} not found, probably it hasn't been written yet"
    try:
        on_disk = ringfile.read(ring_path)
    except (RingError, OSError) as exc:
        # Only a status line: a bad ring file must not stop the summary of a good builder.
        return f"Ring file {ring_path} is invalid: {exc}"
    if builder.ever_rebalanced and on_disk == builder.get_ring():
        return f"Ring file {ring_path} is up-to-date"
    return f"Ring file {ring_path} is obsolete (run rebalance or write_ring)"


# -- dispersion ---------------------------------------------------------------


def tier_name(builder: RingBuilder, tier: tuple) -> str:
    """Swift's tier names: r1, r1z2, r1z2-10.0.0.1, r1z2-10.0.0.1/sda."""
    name = f"r{tier[0]}"
    if len(tier) > 1:
        name += f"z{tier[1]}"
    if len(tier) > 2:
        name += f"-{bracketed(tier[2])}"
    if len(tier) > 3:
        name += f"/{builder.device(tier[3]).device}"
    return name


def tier_risk(counts: Sequence[int], allowed: float) -> tuple[int, float]:
    """(partition-replicas placed in the tier, percent of them beyond ``allowed``).

    A partition with ``n`` replicas in a tier that may hold ``allowed`` has
    ``n - allowed`` of them at risk, the same count ``RingBuilder`` uses for
    the ring's dispersion.
    """
    placed = sum(n * parts for n, parts in enumerate(counts))
    at_risk = sum((n - allowed) * parts for n, parts in enumerate(counts) if n > allowed)
    return placed, (100.0 * at_risk / placed if placed else 0.0)


def dispersion_report(
    builder: RingBuilder, verbose: bool, tier_filter: str | None = None
) -> tuple[list[str], bool]:
    """The report's lines, and whether any tier has partition-replicas at risk.

    Without ``verbose`` only tiers with replicas at risk are listed;
    ``tier_filter`` (a regular expression matched at the start of tier names,
    as in Swift) narrows the report to, say, zones: ``r\\d+z\\d+$``.
    """
    report = builder.dispersion_report(with_graph=True)
    width = max(len(c) for c in report.graph.values()) if report.graph else 1
    rows, worst = [], (0.0, "")
    for tier in sorted(report.graph):
        counts = report.graph[tier] + [0] * (width - len(report.graph[tier]))
        allowed = report.max_replicas[tier]
        placed, risk = tier_risk(counts, allowed)
        name = tier_name(builder, tier)
        if tier_filter and not re.match(tier_filter, name):
            continue
        worst = max(worst, (risk, name), key=lambda w: w[0])
        if verbose or risk > 0:
            rows.append([name, str(placed), f"{risk:.2f}", f"{allowed:g}", *map(str, counts)])
    lines = [
        f"Dispersion is {report.dispersion:.6f}, Balance is {builder.get_balance():.6f}, "
        f"Overload is {builder.overload * 100:.2f}%",
        f"Required overload is {builder.get_required_overload() * 100:.6f}%",
    ]
    if worst[0] > 0:
        lines.append(f"Worst tier is {worst[0]:.6f} ({worst[1]})")
    if rows:
        headers = ["Tier", "Parts", "%", "Max", *map(str, range(width))]
        body = table(headers, rows)
        rule = "-" * len(body[0])
        lines += [rule, body[0], rule, *body[1:]]
    return lines, worst[0] > 0
