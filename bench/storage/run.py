"""Storage-server benchmarks: group commit on the object server, listings on the container server.

    python bench/storage/run.py [--quick] [--only put|listing] [--repeat 3] [--json PATH|-]

put: 4 KiB PUTs/s, p50/p99 latency and server CPU per PUT against one ``torus serve object``
with group commit on (max_batch 256) and off (max_batch 1), at concurrency 1, 16 and 64, each
cell in its own process pair (put_bench.py), on and off alternating.  listing: a 10,000-row
page from the middle of containers of 10k, 100k and 1M rows, on ``torus serve container``
(torus_listing.py) and on Swift's container server over SQLite (swift_listing.py, run in
Swift's bench venv, made by bench/ring/run.py's helper if missing), alternating which side
goes first.  Prints tables of medians; --json writes every run and the medians (``-``: to
stdout, the tables then go to stderr).  Method and results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODES = (256, 1)  # max_batch: group commit on, off
CONCURRENCY = (1, 16, 64)
SIZES = (10_000, 100_000, 1_000_000)
PUT_METRICS = ("puts_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_put", "puts_per_commit")
PAGE = 10_000


def ring_driver():
    """bench/ring/run.py as a module: its swift_python() makes and checks Swift's venv."""
    spec = importlib.util.spec_from_file_location("bench_ring_run", HERE.parent / "ring" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_json(cmd: list[str], env: dict | None = None) -> list[dict]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def medians_by(runs: list[dict], cell: tuple[str, ...], keys: tuple[str, ...]) -> dict:
    """``{"a/b": {key: median}}`` over the runs grouped by the values of the ``cell`` keys."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault("/".join(str(run[k]) for k in cell), []).append(run)
    return {
        name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in groups.items()
    }


def bench_put(args: argparse.Namespace, tmp: str) -> tuple[list[dict], dict]:
    duration, warmup = (2.0, 0.5) if args.quick else (args.duration, 2.0)
    runs = []
    for i in range(args.repeat):
        for concurrency in CONCURRENCY:
            for max_batch in MODES if i % 2 == 0 else MODES[::-1]:
                note(f"put {i + 1}/{args.repeat}: max_batch {max_batch}, c {concurrency}")
                flags = f"--max-batch {max_batch} --concurrency {concurrency} "
                flags += f"--duration {duration} --warmup {warmup}"
                (run,) = run_json([sys.executable, str(HERE / "put_bench.py"), tmp, *flags.split()])
                run["puts_per_commit"] = run["puts_total"] / run["commits"]
                runs.append(run)
    return runs, medians_by(runs, ("max_batch", "concurrency"), PUT_METRICS)


def put_table(medians: dict, repeat: int) -> str:
    lines = [
        f"4 KiB PUTs to one object server, one device; median of {repeat}",
        f"{'group commit':14} {'conc':>5} {'PUTs/s':>8} {'on/off':>7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'CPU ms/PUT':>11} {'PUTs/commit':>12}",
    ]
    for mb in MODES:
        for c in CONCURRENCY:
            m, off = medians[f"{mb}/{c}"], medians[f"1/{c}"]
            label = f"{'on' if mb > 1 else 'off'} ({mb})"
            ratio = f"{m['puts_per_s'] / off['puts_per_s']:.2f}" if mb > 1 else ""
            lines.append(
                f"{label:14} {c:>5} {m['puts_per_s']:>8.0f} {ratio:>7} {m['p50_ms']:>8.2f} "
                f"{m['p99_ms']:>8.2f} {m['server_cpu_ms_per_put']:>11.3f} "
                f"{m['puts_per_commit']:>12.1f}"
            )
    return "\n".join(lines)


def bench_listing(args: argparse.Namespace, tmp: str) -> tuple[list[dict], dict]:
    sizes = SIZES[:1] if args.quick else SIZES
    swift = ring_driver().swift_python(args.swift_venv)
    swift_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runs = []
    for i in range(args.repeat):
        for k, rows in enumerate(sizes):
            for side in ("torus", "swift") if (i + k) % 2 == 0 else ("swift", "torus"):
                note(f"listing {i + 1}/{args.repeat}: {side}, {rows} rows")
                with tempfile.TemporaryDirectory(dir=tmp) as workdir:
                    if side == "torus":
                        fill_max = f"--http-fill-max={args.http_fill_max}"
                        script = [sys.executable, str(HERE / "torus_listing.py"), fill_max]
                        runs += run_json([*script, workdir, str(rows)])
                    else:
                        script = [swift, str(HERE / "swift_listing.py")]
                        runs += run_json([*script, workdir, str(rows)], swift_env)
    medians = medians_by(runs, ("side", "rows"), ("page_s_median", "fill_s"))
    fills = {r["rows"]: r["fill"] for r in runs if r["side"] == "torus"}
    return runs, {"sizes": list(sizes), "torus_fill": fills, **medians}


def listing_table(medians: dict, repeat: int) -> str:
    lines = [
        f"10,000-row listing page from the middle; median of {repeat} x 7 GETs",
        f"{'rows':>9} {'returned':>9} {'torus ms':>9} {'swift ms':>9} {'torus/swift':>12} "
        f"{'torus fill s':>16} {'swift fill s':>13}",
    ]
    for rows in medians["sizes"]:
        torus, swift = medians[f"torus/{rows}"], medians[f"swift/{rows}"]
        fill = f"{torus['fill_s']:.1f} ({medians['torus_fill'][rows]})"
        lines.append(
            f"{rows:>9} {min(PAGE, rows - rows // 2):>9} {torus['page_s_median'] * 1000:>9.1f} "
            f"{swift['page_s_median'] * 1000:>9.1f} "
            f"{torus['page_s_median'] / swift['page_s_median']:>12.2f} {fill:>16} "
            f"{swift['fill_s']:>13.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", choices=("put", "listing"))
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per PUT cell")
    parser.add_argument(
        "--http-fill-max",
        type=int,
        default=10**9,
        help="fill larger containers through the broker, not HTTP",
    )
    parser.add_argument("--swift-venv", type=Path, default=None)
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON ('-': stdout)")
    args = parser.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.swift_venv = args.swift_venv or ring_driver().SWIFT_VENV
    report = sys.stderr if args.json == "-" else sys.stdout
    out: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
        "params": {"quick": args.quick, "repeat": args.repeat, "duration": args.duration},
        "load_avg_start": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="torus-bench-storage-") as tmp:
        if args.only in (None, "put"):
            out["put_runs"], out["put_medians"] = bench_put(args, tmp)
            print(put_table(out["put_medians"], args.repeat), file=report, flush=True)
        if args.only in (None, "listing"):
            out["listing_runs"], out["listing_medians"] = bench_listing(args, tmp)
            print(listing_table(out["listing_medians"], args.repeat), file=report)
    out["load_avg_end"] = load_average()
    print(
        f"load average (1, 5, 15 min): start {out['load_avg_start']}, end {out['load_avg_end']}",
        file=report,
    )
    if args.json:
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
