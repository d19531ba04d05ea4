"""`torus status`'s human output: compact tables of the report tools/status.py collects.

Everything shown here is in ``--json`` too; this only lays it out: problems first (what makes
the exit status 1), then processes per node, daemons' last passes, devices, rings.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

NEVER = "never"
_SERVER_SERVICES = ("object", "container", "account")


def render(report: dict[str, Any]) -> str:
    lines = [_headline(report)]
    lines += [f"  ! {problem}" for problem in report["problems"]]
    lines += ["", *_processes(report), "", *_daemons(report), "", *_devices(report)]
    lines += ["", *_rings(report)]
    return "\n".join(lines)


def _headline(report: dict[str, Any]) -> str:
    problems = report["problems"]
    verdict = "all is well" if not problems else f"{len(problems)} problem(s)"
    when = _clock(report["checked_at"])
    return f"torus status of {report['data_dir']} at {when} UTC: {verdict}"


def _clock(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _state(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "-"
    return "up" if doc["up"] else ("down" if not doc["running"] else "silent")


def _processes(report: dict[str, Any]) -> list[str]:
    rows = [["NODE", *(s.upper() for s in _SERVER_SERVICES), "REPLICATION"]]
    for node, info in report["nodes"].items():
        servers = {doc["service"]: doc for doc in info["servers"].values()}
        replication = info["replication"]
        rows.append(
            [
                node,
                *(_state(servers.get(service)) for service in _SERVER_SERVICES),
                "" if replication is None else _pass_summary(replication),
            ]
        )
    others = ", ".join(
        f"{name} {_state(doc)}" + (f" (:{doc['port']})" if doc["port"] else "")
        for name, doc in report["processes"].items()
    )
    return [*_table(rows), *([others] if others else [])]


def _pass_summary(last: dict[str, Any]) -> str:
    return f"{last['duration_s']:.2f}s, {_age(last['age_s'])} ago"


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _daemons(report: dict[str, Any]) -> list[str]:
    rows = [["DAEMON", "STATE", "LAST PASS (UTC)", "TOOK", "AGE", "RESULT", "COUNTERS"]]
    for info in report["nodes"].values():
        for name, daemon in info["daemons"].items():
            running = daemon["running"]
            state = "-" if running is None else ("running" if running else "down")
            last = daemon["last_pass"]
            if last is None:
                result = "unreadable" if daemon["recon_error"] else ""
                rows.append([name, state, NEVER, "", "", result, ""])
                continue
            counters = ", ".join(
                f"{value:g} {key.replace('_', ' ')}"
                for key, value in last["stats"].items()
                if isinstance(value, (int, float)) and value
            )
            rows.append(
                [
                    name,
                    state,
                    _clock(last["started_at"]),
                    f"{last['duration_s']:.2f}s",
                    _age(last["age_s"]),
                    "ok" if last["ok"] else "FAILED",
                    counters or "all zero" if last["ok"] else str(last["error"]),
                ]
            )
    return _table(rows)


def _devices(report: dict[str, Any]) -> list[str]:
    header = ["NODE", "DEVICE", "ASYNC OBJ", "ASYNC CONT", "QUARANTINED", "PARTS", "HANDOFFS"]
    rows = [[*header, "USED", "FS AVAIL", "FS SIZE"]]
    for node, info in report["nodes"].items():
        for name, dev in info["devices"].items():
            rows.append(
                [
                    node,
                    name,
                    _count(dev["async_pendings"]),
                    _count(dev["container_async_pendings"]),
                    str(dev["quarantined"]),
                    _count(dev["partitions"]),
                    _count(dev["handoff_partitions"]),
                    _bytes(dev["used_bytes"]),
                    _bytes(dev["fs_avail_bytes"]),
                    _bytes(dev["fs_size_bytes"]),
                ]
            )
    return _table(rows)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _rings(report: dict[str, Any]) -> list[str]:
    rows = [["RING", "MD5", "READERS", "AGREE"]]
    for ring, info in report["rings"].items():
        by_reader = info["by_reader"]
        if info["md5"] is not None and info["agree"]:
            rows.append([ring, info["md5"], " ".join(by_reader), "yes"])
            continue
        for reader, md5 in by_reader.items():
            rows.append([ring, md5 or "(missing)", reader, "NO"])
    return [*_table(rows), *(f"({note})" for note in report["notes"])]


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
