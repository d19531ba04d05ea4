"""Side by side: `torus bench` against Torus (`./torus up`) and OpenStack Swift's SAIO.

    python bench/swiftapi/run.py [--repeat 3] [--duration 15] [--only get-4K,list-10k]
        [--torus-data DIR] [--torus-port 8080] [--swift-port 8090] [--no-torus | --no-swift]
        [--quick] [--json PATH] [--markdown PATH]

Sets Swift up with the peers scripts (../shared/peers/swift-saio: setup.sh, start.sh, with
SAIO_PROXY_PORT), starts Torus with ``./torus up --detach`` (skipped, and said so, while that
exits 3 "not built yet"), prepares every cell's objects on both (untimed), then runs each cell
``--repeat`` times on each system, alternating which goes first, each run its own
``loadgen.py`` process.  A run during which foreign work (other people's processes) took more
than ``--max-foreign-cores`` is run again, twice at most, and flagged.  Prints and writes a
markdown table of medians with Torus/Swift ratios and issue 4's targets; --json keeps every run.
Stops what it started.  Method and results: docs/benchmarks.md, "Swift API (torus bench)".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import procstat  # noqa: E402
import report  # noqa: E402
from report import Cell, Target  # noqa: E402

TMP = Path(os.environ.get("TMPDIR") or "/tmp")
PEERS = Path(os.environ.get("TORUS_PEERS", REPO.parent / "shared" / "peers")) / "swift-saio"
EXIT_NOT_BUILT = 3  # tools/cli.py: `torus up` before the servers exist

# Issue 4's workloads and targets for Torus against Swift.
CELLS = (
    Cell(
        "put-4K", ("--workload=put", "--size=4K", "--concurrency=16"), "ops_per_s", Target(3, 1 / 3)
    ),
    Cell(
        "get-4K", ("--workload=get", "--size=4K", "--concurrency=16"), "ops_per_s", Target(3, 1 / 3)
    ),
    Cell("head-4K", ("--workload=head", "--size=4K", "--concurrency=16"), "ops_per_s"),
    Cell("put-1M", ("--workload=put", "--size=1M", "--concurrency=16", "--cleanup"), "mib_per_s"),
    Cell("get-1M", ("--workload=get", "--size=1M", "--concurrency=16"), "mib_per_s"),
    Cell(
        "put-64M",
        ("--workload=put", "--size=64M", "--concurrency=4", "--cleanup", "--warmup=5"),
        "mib_per_s",
        Target(1.5),
    ),
    Cell(
        "get-64M",
        ("--workload=get", "--size=64M", "--concurrency=4", "--warmup=5"),
        "mib_per_s",
        Target(1.5),
    ),
    Cell(
        "list-10k",
        ("--workload=list", "--objects=10000", "--concurrency=2"),
        "ops_per_s",
        Target(5),
    ),
)


@dataclass
class System:
    name: str  # "torus" or "swift"
    auth_url: str
    pid_dir: Path
    started_here: bool = False


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def saio_env(port: int) -> dict[str, str]:
    return {**os.environ, "SAIO_PROXY_PORT": str(port)}


def running(pid_dir: Path) -> bool:
    try:
        return all(procstat.alive(pid) for pid in procstat.pids_from_dir(pid_dir))
    except FileNotFoundError:
        return False


def start_swift(port: int) -> System:
    pid_dir = Path(os.environ.get("SAIO_ROOT", TMP / "swift-saio")) / "run"
    system = System("swift", f"http://127.0.0.1:{port}/auth/v1.0", pid_dir)
    if running(pid_dir):
        note(f"swift: SAIO already running (pids in {pid_dir}); using it as it is")
        return system
    for script in ("setup.sh", "start.sh"):
        note(f"swift: {PEERS / script}")
        subprocess.run(["bash", str(PEERS / script)], env=saio_env(port), check=True)
    system.started_here = True
    return system


def start_torus(data: Path, port: int) -> System | None:
    system = System("torus", f"http://127.0.0.1:{port}/auth/v1.0", data / "run")
    if running(system.pid_dir):
        note(f"torus: cluster already running (pids in {system.pid_dir}); using it as it is")
        return system
    # Servers only, as the SAIO runs them (its start.sh starts no replicators or auditors).
    cmd = [str(REPO / "torus"), "up", "--detach", "--no-daemons", "--data", str(data)]
    cmd += ["--port", str(port)]
    note("torus: " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == EXIT_NOT_BUILT:
        note(f"torus: not built yet ({proc.stderr.strip()}); Swift only")
        return None
    if proc.returncode != 0:
        sys.exit(f"torus up failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    system.started_here = True
    return system


def stop(system: System, args: argparse.Namespace) -> None:
    if not system.started_here or args.keep_running:
        return
    if system.name == "swift":
        subprocess.run(["bash", str(PEERS / "stop.sh")], env=saio_env(args.swift_port), check=False)
    else:
        cmd = [str(REPO / "torus"), "down", "--data", str(args.torus_data)]
        subprocess.run(cmd, check=False)


def loadgen(system: System, cell: Cell, extra: list[str]) -> dict:
    return run_loadgen(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            f"--auth={system.auth_url}",
            f"--pid-dir={system.pid_dir}",
            "--json",
            *cell.flags,
            *extra,  # later flags win: --duration, --warmup, --prepare-only
        ]
    )


def run_loadgen(cmd: list[str]) -> dict:
    """A load generator's run (``cmd``, printing one JSON object last): that object; its
    stderr noted if it failed after printing it, the benchmark stopped if it printed none."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    if proc.returncode:
        note(proc.stderr.strip())
    return json.loads(lines[-1])


def run_detail(run: dict) -> str:
    """What a run's progress line says besides its figure."""
    return (
        f"server {run['server_cpu_ms_per_op']:.2f} ms/op, foreign {run['foreign_cores']:.2f}"
        f" cores, errors {run['errors']}"
    )


# A cell run on a system with extra flags; and what its progress line says of a run.
Loadgen = Callable[[System, Cell, list[str]], dict]
Detail = Callable[[dict], str]


def measure_cell(
    system: System,
    cell: Cell,
    args: argparse.Namespace,
    run_cell: Loadgen = loadgen,
    detail: Detail = run_detail,
) -> dict:
    timing = [f"--duration={args.duration}"] + ([f"--warmup={args.warmup}"] if args.warmup else [])
    for attempt in range(1, args.attempts + 1):
        time.sleep(args.settle)  # let the last run's writeback and sockets settle
        wait_for_quiet(args.max_foreign_cores * 2, args.quiet_wait)
        run = run_cell(system, cell, timing)
        disturbed = run["foreign_cores"] > args.max_foreign_cores
        run.update(system=system.name, cell=cell.name, attempt=attempt, disturbed=disturbed)
        note(
            f"  {system.name:5} {cell.name:8} {run[cell.metric]:10.1f} {cell.metric}, "
            + detail(run)
            + (" (disturbed)" if disturbed else "")
        )
        if not disturbed:
            break
    return run  # the last attempt, flagged "disturbed" if foreign work was still too high


def wait_for_quiet(max_busy_cores: float, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) for a second in which the machine, our systems idle between
    runs, is busy less than ``max_busy_cores``: a run started then is less likely disturbed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = procstat.machine().busy
        time.sleep(1.0)
        if (procstat.machine().busy - before) / procstat.TICKS_PER_S < max_busy_cores:
            return
    note(f"  machine still busy after {timeout_s:g} s of waiting; running anyway")


def machine() -> dict:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD")
        + ("+dirty" if git("status", "--short") else ""),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, help="warm-up seconds (default: the cell's)")
    parser.add_argument("--settle", type=float, default=2.0, help="pause before each run, s")
    parser.add_argument("--only", help="comma-separated cells: " + ",".join(c.name for c in CELLS))
    parser.add_argument("--torus-data", type=Path, default=TMP / "torusbench")
    parser.add_argument("--torus-port", type=int, default=8080)
    parser.add_argument("--swift-port", type=int, default=8090)
    parser.add_argument("--no-torus", action="store_true")
    parser.add_argument("--no-swift", action="store_true")
    parser.add_argument("--keep-running", action="store_true", help="leave started systems up")
    parser.add_argument("--max-foreign-cores", type=float, default=0.15)
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="s to wait for quiet")
    parser.add_argument(
        "--attempts", type=int, default=3, help="runs of a cell while foreign work disturbs it"
    )
    parser.add_argument("--quick", action="store_true", help="1 repeat of 3 s runs")
    parser.add_argument("--json", type=Path, help="write every run and the medians here")
    parser.add_argument("--markdown", type=Path, default=TMP / "torus-bench-swiftapi.md")
    parser.add_argument(
        "--render", type=Path, nargs="+", help="only print the tables of --json files"
    )
    parser.add_argument(
        "--undisturbed", action="store_true", help="--render: medians of undisturbed runs only"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.duration = 1, 3.0
    cells = [c for c in CELLS if not args.only or c.name in args.only.split(",")]
    if args.render:
        render(args.render, cells, args)
        return

    systems: list[System] = []
    try:
        if not args.no_torus:
            torus = start_torus(args.torus_data, args.torus_port)
            systems += [torus] if torus else []
        if not args.no_swift:
            systems.append(start_swift(args.swift_port))
        runs = bench(systems, cells, args)
    finally:
        for system in systems:
            stop(system, args)

    info = machine()
    info["systems"] = [s.name for s in systems]
    info["repeat"], info["duration_s"] = args.repeat, args.duration
    if args.json:
        table = report.cell_medians(runs)
        args.json.write_text(
            json.dumps({"machine": info, "runs": runs, "medians": table}, indent=1)
        )
    write_tables(info, runs, cells, args)


def render(paths: list[Path], cells: list[Cell], args: argparse.Namespace) -> None:
    """Tables again from --json files, their runs pooled (runs that predate the "disturbed"
    flag get it here); the machine line is the first file's."""
    saved = [json.loads(path.read_text()) for path in paths]
    runs = [run for one in saved for run in one["runs"]]
    for run in runs:
        run.setdefault("disturbed", run["foreign_cores"] > args.max_foreign_cores)
    runs = [r for r in runs if not (args.undisturbed and r["disturbed"])]
    write_tables(saved[0]["machine"], runs, cells, args)


def write_tables(info: dict, runs: list[dict], cells: list[Cell], args: argparse.Namespace) -> None:
    text = report.markdown(cells, report.cell_medians(runs))
    header = (
        f"{info['date']}, commit {info['commit']}, {info['cores']} x {info['cpu']}, Python "
        f"{info['python']}; {info.get('repeat', '?')} x {info.get('duration_s', '?')} s per cell "
        f"and system, medians; systems: {', '.join(info.get('systems', []))}\n\n"
    )
    print(header + text)
    args.markdown.write_text(header + text)
    note(f"markdown: {args.markdown}")


def bench(
    systems: list[System],
    cells: list[Cell],
    args: argparse.Namespace,
    run_cell: Loadgen = loadgen,
    detail: Detail = run_detail,
) -> list[dict]:
    for system in systems:  # untimed: make every cell's objects first
        for cell in cells:
            prepared = run_cell(system, cell, ["--prepare-only"])
            note(f"prepared {system.name} {cell.name}: {prepared}")
    runs = []
    for repeat in range(args.repeat):
        for index, cell in enumerate(cells):
            order = systems if (repeat + index) % 2 == 0 else systems[::-1]
            note(f"round {repeat + 1}/{args.repeat}: {cell.name}")
            for system in order:
                runs.append(measure_cell(system, cell, args, run_cell, detail))
                if args.json:  # as we go: an interrupted benchmark keeps what it measured
                    args.json.write_text(json.dumps({"machine": machine(), "runs": runs}))
    return runs


if __name__ == "__main__":
    main()
