"""How long the cluster takes to restore full replication after one device of four is
replaced by an empty one (issue 5).

    .venv/bin/python bench/restore.py [--objects 10000] [--total-mib 1024] [--keep DIR]
    .venv/bin/python bench/restore.py --objects 500 --total-mib 50      # a quick try

1. ``torus up --detach --port 0 --no-daemons`` in a temp dir (no replicator runs unless this
   script runs it), then the objects (bench/restore/restore_mix.py: seeded, mostly small, a
   few tens of MiB) are PUT through the proxy, ``--concurrency`` at once.
2. One node's servers are stopped, its device emptied (the directory stays, as a fresh disk
   mounted in its place) and the servers started again.  The node is the one that holds the
   most container databases and the account's, so those are restored too.
3. Rounds of ``torus serve object-replicator --once`` run on all four nodes at once (as the
   nodes' daemons would) with the settings `torus up` gives them, until every object the
   object ring places on that device is in its index; the index is polled every
   ``--poll-s`` during the rounds, which gives the moment the last one arrived.  Then every
   one of them is HEADed on the node's object server (ETag and length as stored), and one
   more round shows whether replication has settled (pushes nothing).
4. ``container-replicator --once`` and ``account-replicator --once`` on every node, then each
   database the device should hold is read through its server: every object's row, every
   container's row.

Steps 2-4 run once per scenario: ``default`` (the replicator's config defaults:
replicator/object_replicator_config.py) and ``unthrottled`` (``partitions_per_s = 0``).
The machine's load is recorded per phase (bench/restore/restore_load.py): the box is shared.
The last line is the JSON summary (``RESULT {...}``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench" / "restore"), str(REPO / "bench" / "swiftapi")]

from restore_cluster import Cluster  # noqa: E402  (the paths just above)
from restore_load import LoadWindow  # noqa: E402
from restore_mix import describe, make_pool, mix_summary, size_mix  # noqa: E402
from restore_upload import upload  # noqa: E402
from restore_verify import (  # noqa: E402
    Expected,
    databases_restored,
    head_objects,
    indexed_names,
    placed_on,
)

from tools.aio_layout import NODES, device_name  # noqa: E402

SCENARIOS = {"default": {}, "unthrottled": {"partitions_per_s": "0"}}
SUMMARY = re.compile(r"(\S+) pass completed: ([\d.]+)s, (.*)")
DB_DAEMONS = ("container-replicator", "account-replicator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--total-mib", type=float, default=1024.0)
    parser.add_argument("--containers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16, help="PUTs in flight")
    parser.add_argument("--node", type=int, help="the node whose device is replaced (1-4)")
    parser.add_argument(
        "--scenarios", default="default,unthrottled", help=f"of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--max-rounds", type=int, default=6)
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--keep", type=Path, help="use and keep this directory")
    args = parser.parse_args(argv)
    args.scenarios = args.scenarios.split(",")
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}")
    return args


def counters(text: str, daemon: str) -> dict[str, float]:
    """The counters of a pass's summary line (replicator/daemon.py summary_line)."""
    for found in SUMMARY.finditer(text):
        if found.group(1) == daemon:
            result = {"elapsed_s": float(found.group(2))}
            for part in found.group(3).split(", "):
                value, _, name = part.partition(" ")
                result[name] = float(value)
            return result
    raise RuntimeError(f"no '{daemon} pass completed' line in:\n{text[-3000:]}")


def run_round(
    cluster: Cluster, daemon: str, overrides: dict[str, str], tag: str, poll: Any = None
) -> dict[str, float]:
    """``daemon --once`` on every node at once; their counters summed.  ``poll`` is called
    about every second while they run."""
    logs = [cluster.data.logs / f"bench-{daemon}-{node}-{tag}.log" for node in range(1, NODES + 1)]
    procs = [
        cluster.start_daemon_once(daemon, node, overrides, log)
        for node, log in zip(range(1, NODES + 1), logs, strict=True)
    ]
    while any(proc.poll() is None for proc in procs):
        if poll is not None:
            poll()
        time.sleep(0.2 if poll is None else 1.0)
    totals: dict[str, float] = {}
    for proc, log in zip(procs, logs, strict=True):
        text = log.read_text(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"{log}: exit {proc.returncode}\n{text[-3000:]}")
        for name, value in counters(text, daemon).items():
            if name == "elapsed_s":
                totals["longest_pass_s"] = max(totals.get("longest_pass_s", 0.0), value)
            else:
                totals[name] = totals.get(name, 0.0) + value
    return totals


def restore_objects(
    cluster: Cluster, node: int, expected: Expected, overrides: dict[str, str], args: Any, tag: str
) -> dict[str, Any]:
    device = cluster.device(node)
    want = set(expected.objects)
    state: dict[str, Any] = {"restored_at_s": None, "polls": 0, "present": 0}
    started = time.monotonic()

    def poll() -> None:
        if state["restored_at_s"] is not None:
            return
        if time.monotonic() - state.get("last", 0.0) < args.poll_s:
            return
        state["last"] = time.monotonic()
        state["polls"] += 1
        state["present"] = len(want & indexed_names(device))
        if state["present"] == len(want):
            state["restored_at_s"] = time.monotonic() - started

    window = LoadWindow(cluster.server_pids).start()
    rounds = []
    for number in range(1, args.max_rounds + 1):
        totals = run_round(cluster, "object-replicator", overrides, f"{tag}-r{number}", poll)
        present = len(want & indexed_names(device))
        if state["restored_at_s"] is None and present == len(want):
            state["restored_at_s"] = time.monotonic() - started  # between the last poll and now
        rounds.append({"ended_at_s": round(time.monotonic() - started, 2), **totals})
        print(f"  round {number}: {present}/{len(want)} on {device.name}, {_pass_line(totals)}")
        if present == len(want):
            break
    load = window.stop()
    return {**state, "rounds": rounds, "present": present, "load": load}


def _pass_line(totals: dict[str, float]) -> str:
    keys = ("objects pushed", "bytes pushed", "failures", "errors", "longest_pass_s")
    return ", ".join(
        f"{key} {totals.get(key, 0):,.{2 if key.endswith('_s') else 0}f}" for key in keys
    )


def choose_node(cluster: Cluster, specs: list[Any]) -> int:
    """The node whose device holds the most container databases, the account's first."""

    def weight(node: int) -> tuple[int, int, int]:
        expected = placed_on(cluster.ring_dir, cluster.secret, device_name(node), specs)
        return (expected.account_partition is not None, len(expected.containers), -node)

    return max(range(1, NODES + 1), key=weight)


def restore_databases(
    cluster: Cluster, node: int, expected: Expected, specs: list[Any], tag: str
) -> dict[str, Any]:
    """Rounds of the container and account replicators on every node until the device's
    databases hold every row (at most three); what they hold, and the wall time."""
    ports = cluster.nodes[node]
    started = time.monotonic()
    for number in range(1, 4):
        for daemon in DB_DAEMONS:
            run_round(cluster, daemon, {}, f"{tag}-db{number}")
        found = asyncio.run(
            databases_restored(
                ports["container"], ports["account"], device_name(node), expected, specs
            )
        )
        restored = all(entry["restored"] for entry in found["containers"].values())
        restored = restored and (found["account"] is None or found["account"]["restored"])
        if restored:
            break
    return {
        **found,
        "restored": restored,
        "rounds": number,
        "wall_s": round(time.monotonic() - started, 2),
    }


def scenario(
    cluster: Cluster,
    name: str,
    node: int,
    expected: Expected,
    specs: list[Any],
    etags: dict[str, str],
    args: Any,
) -> dict[str, Any]:
    overrides = SCENARIOS[name]
    print(f"\n== scenario {name}: node {node}'s device replaced; overrides {overrides or 'none'}")
    replaced_s = cluster.replace_device(node)
    device = cluster.device(node)
    left = len(indexed_names(device))
    print(f"  device emptied and servers restarted in {replaced_s:.1f}s ({left} objects left)")
    objects = restore_objects(cluster, node, expected, overrides, args, name)
    port = cluster.nodes[node]["object"]
    heads = asyncio.run(head_objects(port, device.name, expected, etags))
    print(f"  HEAD of every expected object on object-{node}: {heads}")
    settle = run_round(cluster, "object-replicator", overrides, f"{name}-settle")
    print(f"  settle round: {_pass_line(settle)}")
    databases = restore_databases(cluster, node, expected, specs, name)
    print(f"  databases: {json.dumps(databases)}")
    restored_s = objects["restored_at_s"]
    size_bytes = expected.bytes
    return {
        "scenario": name,
        "overrides": overrides,
        "node": node,
        "device": device.name,
        "objects_expected": len(expected.objects),
        "bytes_expected": size_bytes,
        "objects_present": objects["present"],
        "restored_s": round(restored_s, 2) if restored_s is not None else None,
        "mib_per_s": round(size_bytes / 2**20 / restored_s, 2) if restored_s else None,
        "objects_per_s": round(len(expected.objects) / restored_s, 1) if restored_s else None,
        "rounds": len(objects["rounds"]),
        # Every primary of a partition pushes what the empty one lacks: pushes overlap.
        "objects_pushed": int(sum(r["objects pushed"] for r in objects["rounds"])),
        "bytes_pushed": int(sum(r["bytes pushed"] for r in objects["rounds"])),
        "push_ratio": round(sum(r["bytes pushed"] for r in objects["rounds"]) / size_bytes, 2),
        "round_detail": objects["rounds"],
        "index_polls": objects["polls"],
        "replicator_cpu_s": objects["load"]["daemon_passes_cpu_s"],
        "load": objects["load"],
        "heads": heads,
        "objects_checked": sum(heads.values()),
        "settle_round": settle,
        "databases": databases,
        "device_replace_s": round(replaced_s, 2),
    }


def table(results: list[dict[str, Any]]) -> list[str]:
    head = (
        f"{'scenario':<12} {'objects':>8} {'MiB':>8} {'restored s':>10} {'MiB/s':>7} "
        f"{'rounds':>6} {'pushed/needed':>13} {'repl CPU s':>10} {'srv CPU s':>9} "
        f"{'foreign cores':>13} {'load 1m':>7} {'HEAD ok':>8} {'settled':>7} {'DBs':>4}"
    )
    lines = [head]
    for r in results:
        load = r["load"]
        restored = "never" if r["restored_s"] is None else f"{r['restored_s']:.1f}"
        settled = "yes" if r["settle_round"].get("objects pushed", 1) == 0 else "no"
        lines.append(
            f"{r['scenario']:<12} {r['objects_expected']:>8} "
            f"{r['bytes_expected'] / 2**20:>8.1f} {restored:>10} {r['mib_per_s'] or 0:>7.1f} "
            f"{r['rounds']:>6} {r['push_ratio']:>13.2f} {r['replicator_cpu_s']:>10.1f} "
            f"{load['servers_cpu_s']:>9.1f} {load['foreign_cores']:>13.2f} "
            f"{load['loadavg_1m_mean']:>7.2f} {r['heads']['ok']:>8} {settled:>7} "
            f"{'yes' if r['databases']['restored'] else 'NO':>4}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    total_bytes = int(args.total_mib * 2**20)
    specs = size_mix(args.objects, total_bytes, args.containers, args.seed)
    print(f"{args.objects} objects, {total_bytes / 2**20:.0f} MiB, seed {args.seed}:")
    print("\n".join(describe(specs)))
    root = args.keep or Path(tempfile.mkdtemp(prefix="torus-restore-"))
    cluster = Cluster.up(root / "data")
    results: list[dict[str, Any]] = []
    try:
        idle = LoadWindow(cluster.server_pids).start()
        time.sleep(5.0)
        before = idle.stop()
        print(f"cluster up in {root}; idle 5 s: {before}")
        pool = make_pool(args.seed)
        window = LoadWindow(cluster.server_pids).start()
        user, key = "test:tester", cluster.summary["users"]["test:tester"]["key"]
        uploaded = asyncio.run(upload(cluster.auth_url, user, key, specs, pool, args.concurrency))
        upload_load = window.stop()
        del pool
        print(
            f"uploaded {len(uploaded.etags)} objects in {uploaded.elapsed_s:.1f}s "
            f"({total_bytes / 2**20 / uploaded.elapsed_s:.1f} MiB/s, {uploaded.retries} "
            f"retries); load {upload_load}"
        )
        node = args.node or choose_node(cluster, specs)
        expected = placed_on(cluster.ring_dir, cluster.secret, device_name(node), specs)
        print(
            f"node {node}'s device holds {len(expected.objects)} objects "
            f"({expected.bytes / 2**20:.1f} MiB), {len(expected.containers)} of "
            f"{args.containers} container DBs, account DB: {expected.account_partition is not None}"
        )
        for name in args.scenarios:
            results.append(scenario(cluster, name, node, expected, specs, uploaded.etags, args))
    finally:
        print(cluster.down().strip())
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print("\n".join(table(results)))
    summary = {
        "bench": "restore",
        "host": platform.node(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "objects": args.objects,
        "total_bytes": total_bytes,
        "seed": args.seed,
        "containers": args.containers,
        "mix": mix_summary(specs),
        "upload_s": round(uploaded.elapsed_s, 2),
        "upload_load": upload_load,
        "idle_load": before,
        "scenarios": results,
    }
    print("RESULT " + json.dumps(summary))
    ok = all(
        r["restored_s"] is not None and r["heads"]["ok"] == r["objects_expected"] for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
