"""Ring benchmark: Torus's RingBuilder against OpenStack Swift's, same machine, same devices.

    python bench/ring/run.py [--repeat 3] [--part-power 18] [--quick] [--json PATH|-]

Makes one device list (3 regions x 4 zones x 10 hosts x 4 devices, mixed weights, fixed seed),
makes sure a venv with Swift exists, then runs torus_side.py and swift_side.py --repeat times
each, alternating which goes first, every run in its own subprocess (so peak RSS is per side).
Prints a table of medians with Torus/Swift ratios; --json writes every run and the medians
(``-``: to stdout, the table then goes to stderr). Method and results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SWIFT_VERSION = "2.38.3"
SWIFT_VENV = Path(os.environ.get("TMPDIR") or "/tmp") / "torus-bench-swift-venv"
WEIGHTS = ((1000, 2), (2000, 5), (4000, 3))  # (weight, relative frequency): a mixed fleet
# (label, key path into a side's JSON line, format); one table row each.
METRICS = (
    ("initial rebalance, wall s", ("initial", "wall_s"), "{:.2f}"),
    ("initial rebalance, CPU s", ("initial", "cpu_s"), "{:.2f}"),
    ("initial balance %", ("initial", "balance"), "{:.4f}"),
    ("initial dispersion %", ("initial", "dispersion"), "{:.4f}"),
    ("remove-10% rebalance, wall s", ("remove", "wall_s"), "{:.2f}"),
    ("remove-10% rebalance, CPU s", ("remove", "cpu_s"), "{:.2f}"),
    ("remove-10% moved part-replicas", ("remove", "moved"), "{:.0f}"),
    ("  of which had to move", ("must_move",), "{:.0f}"),
    ("remove-10% balance %", ("remove", "balance"), "{:.4f}"),
    ("remove-10% dispersion %", ("remove", "dispersion"), "{:.4f}"),
    ("peak RSS after rebalances, MiB", ("peak_rss_build_mib",), "{:.0f}"),
    ("peak RSS at exit, MiB", ("peak_rss_mib",), "{:.0f}"),
    ("ring file load, s", ("ring_load_s",), "{:.3f}"),
    ("get_nodes lookups/s", ("lookups_per_s",), "{:.0f}"),
)


def make_workload(part_power: int, seed: int) -> dict:
    rng = random.Random(seed)
    sizes, freqs = zip(*WEIGHTS, strict=True)
    devices = [
        {
            "region": region,
            "zone": zone,
            "ip": f"10.{region}.{zone}.{host}",
            "port": 6200,
            "device": f"sd{'bcde'[disk]}",
            "weight": rng.choices(sizes, freqs)[0],
        }
        for region in range(1, 4)
        for zone in range(1, 5)
        for host in range(1, 11)
        for disk in range(4)
    ]
    remove_ids = sorted(rng.sample(range(len(devices)), len(devices) // 10))
    return {
        "part_power": part_power,
        "replicas": 3,
        "min_part_hours": 1,
        "seed": seed,
        "devices": devices,
        "remove_ids": remove_ids,
    }


def make_names(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [
            f"AUTH_{rng.randrange(10_000):05d}",
            f"container-{rng.randrange(100):03d}",
            f"photos/{rng.getrandbits(64):016x}.jpg",
        ]
        for _ in range(count)
    ]


def swift_python(venv: Path) -> str:
    """The venv's python, after creating the venv and installing Swift if it lacks them."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import swift; assert swift.__version__ == {SWIFT_VERSION!r}"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python)
    print(f"installing swift=={SWIFT_VERSION} into {venv} ...", file=sys.stderr)
    # The driver's own interpreter makes the venv, so both sides run the same Python.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"swift=={SWIFT_VERSION}"],
        capture_output=True,
        text=True,
    )
    noise = ("WARNING: Location ", "is ignored")  # pip's index config here: harmless
    for line in (pip.stdout + pip.stderr).splitlines():
        if not all(part in line for part in noise):
            print(line, file=sys.stderr)
    if pip.returncode or subprocess.run(check).returncode:
        sys.exit(f"could not install swift=={SWIFT_VERSION} into {venv}")
    return str(python)


def run_side(side: str, python: str, env: dict, workload: str, names: str, tmp: str) -> dict:
    with tempfile.TemporaryDirectory(dir=tmp) as workdir:
        cmd = [python, str(HERE / f"{side}_side.py"), workload, names, workdir]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{side} side failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def pick(result: dict, path: tuple[str, ...]) -> float:
    for key in path:
        result = result[key]
    return float(result)


def table(medians: dict) -> str:
    lines = [f"{'median':32} {'torus':>10} {'swift':>10} {'torus/swift':>12}"]
    for label, _path, fmt in METRICS:
        torus, swift = medians["torus"][label], medians["swift"][label]
        ratio = f"{torus / swift:.3f}" if swift else "-"
        lines.append(f"{label:32} {fmt.format(torus):>10} {fmt.format(swift):>10} {ratio:>12}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--part-power", type=int, default=None, help="default 18 (--quick: 14)")
    parser.add_argument("--lookups", type=int, default=None, help="default 200000 (--quick: 20000)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--swift-venv", type=Path, default=SWIFT_VENV)
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON ('-': stdout)")
    args = parser.parse_args()
    part_power = args.part_power or (14 if args.quick else 18)
    lookups = args.lookups or (20_000 if args.quick else 200_000)
    pythons = {"torus": sys.executable, "swift": swift_python(args.swift_venv)}
    envs = {
        "torus": {**os.environ, "PYTHONPATH": str(REPO)},
        "swift": {k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    }
    report = sys.stderr if args.json == "-" else sys.stdout
    runs: dict[str, list[dict]] = {"torus": [], "swift": []}
    with tempfile.TemporaryDirectory(prefix="torus-bench-ring-") as tmp:
        workload = os.path.join(tmp, "workload.json")
        names = os.path.join(tmp, "names.json")
        with open(workload, "w") as f:
            json.dump(make_workload(part_power, args.seed), f)
        with open(names, "w") as f:
            json.dump(make_names(lookups, args.seed), f)
        for i in range(args.repeat):
            for side in ("torus", "swift") if i % 2 == 0 else ("swift", "torus"):
                print(f"run {i + 1}/{args.repeat}: {side} ...", file=sys.stderr, flush=True)
                runs[side].append(run_side(side, pythons[side], envs[side], workload, names, tmp))
    medians = {
        side: {
            label: statistics.median(pick(r, path) for r in results) for label, path, _ in METRICS
        }
        for side, results in runs.items()
    }
    print(
        f"part power {part_power}, 3 replicas, 480 devices, remove 48; {lookups} lookups; "
        f"median of {args.repeat}",
        file=report,
    )
    print(table(medians), file=report)
    if args.json:
        params = {"part_power": part_power, "lookups": lookups, "repeat": args.repeat}
        out = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "python": platform.python_version(),
            "swift": runs["swift"][0].get("swift"),
            "params": {**params, "seed": args.seed},
            "medians": medians,
            "runs": runs,
        }
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
