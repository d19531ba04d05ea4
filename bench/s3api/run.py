"""Side by side over S3 (SigV4): Torus's S3 API and OpenStack Swift's s3api (issue 6).

    python bench/s3api/run.py [--repeat 3] [--duration 15] [--only put-4K,get-64M]
        [--torus-data DIR] [--torus-port 8080] [--swift-port 8090] [--no-torus | --no-swift]
        [--quick] [--no-expect] [--keep-running] [--json PATH] [--markdown PATH]

The same method as bench/swiftapi/run.py, whose start/stop, quiet-wait, machine description
and table code it imports: Torus from ``./torus up --detach --no-daemons`` and Swift's SAIO
from the peers scripts (its proxy has s3api before tempauth, so ``test:tester``/``testing``
is an S3 key pair on both), each used as it is if already running and stopped only if started
here.  Then boto3 PUTs and GETs one object on each (validate.py: a refused request stops here
with its S3 error), every cell's objects are made (untimed), and each cell runs ``--repeat``
times per system, alternating which goes first, each run its own s3loadgen.py process; a run
disturbed by foreign work is run again (``--attempts``).  Cells: PUT and GET of 4 KiB (16 in
flight) and 64 MiB (4 in flight), as the Swift API benchmark runs them.  Prints medians,
Torus/Swift ratios, server and client CPU per op, signing cost and non-2xx answers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SWIFTAPI = HERE.parent / "swiftapi"
for directory in (SWIFTAPI, HERE):
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))

import report  # noqa: E402
import validate  # noqa: E402
from measure import medians  # noqa: E402
from report import Cell  # noqa: E402


def _swiftapi_run() -> ModuleType:
    """bench/swiftapi/run.py as a module (a file named run.py cannot be imported by name
    from here: this one would be found first)."""
    spec = importlib.util.spec_from_file_location("swiftapi_run", SWIFTAPI / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


swift_run = _swiftapi_run()
note = swift_run.note
System = Any  # swift_run.System: name, auth_url, pid_dir, started_here
Run = dict[str, Any]  # one s3loadgen.py JSON object, plus system, cell, attempt, disturbed

CELLS = (
    Cell("put-4K", ("--workload=put", "--size=4K", "--concurrency=16"), "ops_per_s"),
    Cell("get-4K", ("--workload=get", "--size=4K", "--concurrency=16"), "ops_per_s"),
    Cell(
        "put-64M",
        ("--workload=put", "--size=64M", "--concurrency=4", "--cleanup", "--warmup=5"),
        "mib_per_s",
    ),
    Cell("get-64M", ("--workload=get", "--size=64M", "--concurrency=4", "--warmup=5"), "mib_per_s"),
)


def endpoint(system: System) -> str:
    """The S3 endpoint of a swiftapi run.System: its auth URL's scheme and host."""
    return system.auth_url.split("/auth/", 1)[0]


def loadgen(system: System, cell: Cell, extra: list[str], args: argparse.Namespace) -> Run:
    return swift_run.run_loadgen(
        [
            sys.executable,
            str(HERE / "s3loadgen.py"),
            f"--endpoint={endpoint(system)}",
            f"--pid-dir={system.pid_dir}",
            "--json",
            *cell.flags,
            *([] if args.expect else ["--no-expect"]),
            *extra,  # later flags win: --duration, --warmup, --prepare-only
        ]
    )


def run_detail(run: Run) -> str:
    """A run's progress line besides its figure: the client's cost and the statuses too."""
    return (
        f"server {run['server_cpu_ms_per_op']:.2f} ms/op, client "
        f"{run['client_cpu_ms_per_op']:.2f} ms/op (signing {run['sign_us_per_op']:.0f} µs), "
        f"foreign {run['foreign_cores']:.2f} cores, non-2xx {run['non_2xx']} "
        f"{run['statuses']}, errors {run['errors']}"
    )


def bench(systems: list[System], cells: list[Cell], args: argparse.Namespace) -> list[Run]:
    """Swift's benchmark loop (bench/swiftapi/run.py) with the S3 load generator, after
    boto3 itself has checked each system answers S3."""
    for system in systems:
        note(validate.check(endpoint(system), "test:tester", "testing"))

    def run_cell(system: System, cell: Cell, extra: list[str]) -> Run:
        return loadgen(system, cell, extra, args)

    return swift_run.bench(systems, cells, args, run_cell, run_detail)


def s3_extras(cells: list[Cell], runs: list[Run]) -> str:
    """A second table: what the S3 load adds to report.markdown's (signing, statuses, cores)."""
    lines = [
        "| workload | signing µs/op, T / S | client cores, T / S | server cores, T / S "
        "| foreign cores, T / S | non-2xx T / S | statuses T / S |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]

    def side(cell: Cell, system: str) -> list[Run]:
        return [r for r in runs if r["cell"] == cell.name and r["system"] == system]

    def median(rs: list[Run], key: str, digits: int) -> str:
        value = medians(rs, [key])[key] if rs else math.nan
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"

    def statuses(rs: list[Run]) -> str:
        total: dict[str, int] = {}
        for r in rs:
            for code, count in r.get("statuses", {}).items():
                total[code] = total.get(code, 0) + count
        return ", ".join(f"{code}: {count}" for code, count in sorted(total.items())) or "n/a"

    for cell in cells:
        t, s = side(cell, "torus"), side(cell, "swift")
        lines.append(
            f"| {cell.name} | {median(t, 'sign_us_per_op', 1)} / {median(s, 'sign_us_per_op', 1)} "
            f"| {median(t, 'client_cores', 2)} / {median(s, 'client_cores', 2)} "
            f"| {median(t, 'server_cores', 2)} / {median(s, 'server_cores', 2)} "
            f"| {median(t, 'foreign_cores', 2)} / {median(s, 'foreign_cores', 2)} "
            f"| {sum(r['non_2xx'] for r in t)} / {sum(r['non_2xx'] for r in s)} "
            f"| {statuses(t)} / {statuses(s)} |"
        )
    return "\n".join(lines) + "\n"


def write_tables(
    info: dict[str, Any], runs: list[Run], cells: list[Cell], args: argparse.Namespace
) -> None:
    swift_run.write_tables(info, runs, cells, args)
    load = info.get("load_avg_1_5_15m")
    extras = s3_extras(cells, runs) + (
        f"\nLoad average (1/5/15 min) at the end: {load}\n" if load else ""
    )
    print(extras)
    with args.markdown.open("a") as out:
        out.write("\n" + extras)


def render(paths: list[Path], cells: list[Cell], args: argparse.Namespace) -> None:
    """The tables again from --json files, their runs pooled; the machine line is the first
    file's."""
    saved = [json.loads(path.read_text()) for path in paths]
    runs = [
        run for one in saved for run in one["runs"] if not (args.undisturbed and run["disturbed"])
    ]
    write_tables(saved[0]["machine"], runs, cells, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--repeat", type=int, default=3)
    add("--duration", type=float, default=15.0, help="measured seconds per run")
    add("--warmup", type=float, help="warm-up seconds (default: the cell's)")
    add("--settle", type=float, default=2.0, help="pause before each run, s")
    add("--only", help="comma-separated cells: " + ",".join(c.name for c in CELLS))
    add("--torus-data", type=Path, default=swift_run.TMP / "torusbench")
    add("--torus-port", type=int, default=8080)
    add("--swift-port", type=int, default=8090)
    add("--no-torus", action="store_true")
    add("--no-swift", action="store_true")
    add("--keep-running", action="store_true", help="leave started systems up")
    add("--max-foreign-cores", type=float, default=0.15)
    add("--quiet-wait", type=float, default=60.0, help="s to wait for quiet")
    add("--attempts", type=int, default=3, help="runs of a cell while foreign work disturbs it")
    add("--quick", action="store_true", help="1 repeat of 3 s runs")
    add("--no-expect", dest="expect", action="store_false", help="PUT without Expect: 100-continue")
    add("--json", type=Path, help="write every run and the medians here")
    add("--markdown", type=Path, default=swift_run.TMP / "torus-bench-s3api.md")
    add("--render", type=Path, nargs="+", help="only print the tables of --json files")
    add("--undisturbed", action="store_true", help="--render: medians of undisturbed runs only")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.duration = 1, 3.0
    unknown = set(args.only.split(",")) - {c.name for c in CELLS} if args.only else set()
    if unknown:
        parser.error(f"unknown cells {sorted(unknown)}")
    cells = [c for c in CELLS if not args.only or c.name in args.only.split(",")]
    if args.render:
        render(args.render, cells, args)
        return

    systems: list[System] = []
    try:
        if not args.no_torus:
            torus = swift_run.start_torus(args.torus_data, args.torus_port)
            systems += [torus] if torus else []
        if not args.no_swift:
            systems.append(swift_run.start_swift(args.swift_port))
        try:
            runs = bench(systems, cells, args)
        except validate.ValidationError as exc:
            sys.exit(f"s3 bench: {exc}")
    finally:
        for system in systems:
            swift_run.stop(system, args)

    info = swift_run.machine()
    info["systems"] = [s.name for s in systems]
    info["repeat"], info["duration_s"] = args.repeat, args.duration
    info["load_avg_1_5_15m"] = [round(load, 2) for load in os.getloadavg()]
    if args.json:
        table = report.cell_medians(runs)
        args.json.write_text(
            json.dumps({"machine": info, "runs": runs, "medians": table}, indent=1)
        )
    write_tables(info, runs, cells, args)


if __name__ == "__main__":
    main()
