"""`torus status [--data DIR] [--json]`: the all-in-one cluster's health, recon-style.

Swift's ``swift-recon`` asks every server's ``/recon`` endpoint for what its daemons left in
their recon cache files.  Torus servers have no such endpoint yet, and the all-in-one keeps
every node under one data directory, so this reads the same facts from disk, per node:

- each process of cluster.json: running, and answering on its port (tools/status_cluster.py);
- each daemon's last pass (its recon record, replicator/recon.py): when, how long, how long
  ago, ok or failed, its counters; "never" if it has no record yet;
- replication: the object replicator's last pass (its column stays empty until it exists);
- per device: async_pendings, quarantined bodies, partitions and handoff partitions held, disk
  use (tools/status_devices.py);
- the md5 of each ring as every node reads it, and whether they agree.

Exit status: 0 when all is well; 1 when something is wrong — a process down, rings that
disagree or are missing, a daemon whose last pass failed, a device that cannot be read — and
each problem is named.  async_pendings, handoffs and quarantined bodies are reported, not
counted as problems: a healthy cluster has them for a while.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from replicator import recon
from ring.ring import Ring
from service.config import ConfigError
from tools import aio_config, aio_rings, status_render
from tools.aio_layout import DataDir, device_name
from tools.status_cluster import ProcessStatus, processes, read_cluster_file, ring_md5s
from tools.status_devices import device_status

EXIT_OK = 0
EXIT_PROBLEM = 1
REPLICATOR = "object-replicator"  # its last pass is the node's replication time
RINGS_NOT_REPORTED = (
    "servers do not report the rings they loaded yet (no recon endpoint): the md5s are of "
    "the ring files each node reads"
)


def run(data_path: str | Path, *, as_json: bool) -> int:
    """`torus status`: print the report; the exit status."""
    data = DataDir.at(data_path)
    if not data.config.exists():
        print(f"torus status: no cluster in {data.root} (no {data.config.name})", file=sys.stderr)
        return EXIT_PROBLEM
    report = collect(data)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(status_render.render(report))
    return EXIT_OK if report["ok"] else EXIT_PROBLEM


def collect(data: DataDir, now: float | None = None) -> dict[str, Any]:
    """Everything `torus status` knows, as one JSON-ready document."""
    now = time.time() if now is None else now
    problems: list[str] = []
    try:
        document = aio_config.read_config(data)
        ring_dir = aio_config.ring_dir(document, data)
        secret = str(document["cluster"]["hash_path_secret"]).encode("utf-8")
    except ConfigError as exc:
        ring_dir, secret = data.rings, b""
        problems.append(f"config: {exc}")
    node_ports = _node_ports(ring_dir, data, problems)
    cluster = read_cluster_file(data)
    if cluster is None:
        problems.append(f"no cluster runs on {data.root} (no {data.cluster_file})")
    procs = processes(data, cluster, ring_dir, sorted(node_ports))
    for proc in procs if cluster is not None else []:  # else: one problem says it all
        if not proc.up:
            why = "not running" if not proc.running else f"not answering on port {proc.port}"
            problems.append(f"{proc.name} is down ({why})")
    object_ring = _object_ring(ring_dir, secret, problems)
    nodes = {
        str(node): _node(data, node, ports, procs, object_ring, now, problems)
        for node, ports in sorted(node_ports.items())
    }
    rings = _rings(procs, problems)
    return {
        "data_dir": str(data.root),
        "checked_at": now,
        "ok": not problems,
        "problems": problems,
        "cluster_running": cluster is not None,
        "processes": {proc.name: _process_doc(proc) for proc in procs if proc.node is None},
        "nodes": nodes,
        "rings": rings,
        "rings_reported_by_servers": False,
        "notes": [RINGS_NOT_REPORTED],
    }


def _node_ports(ring_dir: Path, data: DataDir, problems: list[str]) -> dict[int, dict[str, int]]:
    try:
        return aio_rings.node_ports(ring_dir)
    except (OSError, ValueError) as exc:  # LayoutError is a ValueError; a ring may be missing
        problems.append(f"rings: {exc}")
    found = {}
    for path in sorted(data.root.glob("node*")):
        if path.name[4:].isdigit():
            found[int(path.name[4:])] = {}
    return found


def _object_ring(ring_dir: Path, secret: bytes, problems: list[str]) -> Ring | None:
    path = aio_rings.ring_path(ring_dir, "object")
    try:
        return Ring.load(path, secret)
    except Exception as exc:  # missing, half-written, foreign: handoffs stay unknown
        problems.append(f"object ring {path} cannot be loaded: {exc}")
        return None


def _node(
    data: DataDir,
    node: int,
    ports: dict[str, int],
    procs: list[ProcessStatus],
    object_ring: Ring | None,
    now: float,
    problems: list[str],
) -> dict[str, Any]:
    devices_dir = data.node(node)
    mine = [proc for proc in procs if proc.node == node]
    daemons = daemon_records(devices_dir, node, mine, now, problems)
    replication = daemons.get(f"{REPLICATOR}-{node}", {}).get("last_pass")
    devices = {}
    for path in sorted(devices_dir.iterdir()) if devices_dir.is_dir() else []:
        if not path.is_dir():
            continue
        is_primary = _primary_test(object_ring, ports.get("object"), path.name)
        status = device_status(path.name, str(path), is_primary)
        problems.extend(f"node {node} device {path.name}: {error}" for error in status.errors)
        devices[path.name] = asdict(status)
    if not devices:
        problems.append(f"node {node}: no device in {devices_dir} (expected {device_name(node)})")
    return {
        "devices_dir": str(devices_dir),
        "servers": {proc.name: _process_doc(proc) for proc in mine if proc.port is not None},
        "daemons": daemons,
        "replication": replication,
        "devices": devices,
    }


def daemon_records(
    devices_dir: Path, node: int, mine: list[ProcessStatus], now: float, problems: list[str]
) -> dict[str, Any]:
    """Each daemon of the node, the ones cluster.json names and any that left a recon record:
    whether it runs, and its last pass (None: never)."""
    running = {proc.service: proc for proc in mine if proc.port is None}
    files = recon.find(devices_dir)
    found: dict[str, Any] = {}
    for daemon in sorted({*running, *files}):
        name = f"{daemon}-{node}"
        proc = running.get(daemon)
        entry: dict[str, Any] = {
            "daemon": daemon,
            "pid": proc.pid if proc else None,
            "running": proc.running if proc else None,  # None: not one `up` runs
            "last_pass": None,
            "recon_error": None,
        }
        try:
            record = recon.read(files[daemon]) if daemon in files else None
        except ValueError as exc:
            entry["recon_error"] = str(exc)
            problems.append(f"{name}: recon record unreadable: {exc}")
            record = None
        if record is not None:
            finished_at = record.started_at + record.duration_s
            entry["last_pass"] = {
                **asdict(record),
                "finished_at": finished_at,
                "age_s": max(now - finished_at, 0.0),
            }
            if not record.ok:
                problems.append(f"{name}: last pass failed: {record.error}")
        found[name] = entry
    return found


def _primary_test(ring: Ring | None, port: int | None, device: str) -> Any:
    """``is_primary(partition)`` for the ring's device ``device`` on ``port``; None if the
    device is in no ring (every partition it holds would be a handoff, but more likely the
    ring or the layout is wrong: left unknown)."""
    if ring is None or port is None:
        return None
    ids = {d.id for d in ring.devices if d is not None and d.device == device and d.port == port}
    if not ids:
        return None
    return lambda partition: any(d.id in ids for d in ring.get_part_nodes(partition))


def _rings(procs: list[ProcessStatus], problems: list[str]) -> dict[str, Any]:
    rings: dict[str, Any] = {}
    for ring, by_reader in ring_md5s(procs).items():
        missing = sorted(reader for reader, md5 in by_reader.items() if md5 is None)
        distinct = {md5 for md5 in by_reader.values() if md5 is not None}
        agree = not missing and len(distinct) <= 1
        if missing:
            problems.append(f"{ring} ring: no ring file for {', '.join(missing)}")
        if len(distinct) > 1:
            problems.append(f"{ring} ring: md5 disagrees between readers ({len(distinct)} md5s)")
        rings[ring] = {
            "md5": distinct.pop() if len(distinct) == 1 else None,
            "by_reader": by_reader,
            "agree": agree,
        }
    return rings


def _process_doc(proc: ProcessStatus) -> dict[str, Any]:
    return {
        "service": proc.service,
        "pid": proc.pid,
        "port": proc.port,
        "running": proc.running,
        "answers": proc.answers,
        "up": proc.up,
    }
