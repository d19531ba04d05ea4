"""`torus ring` commands on the ring as a whole: create, parameters, rebalance, reports, files.

Exit statuses follow swift-ring-builder: 0 done, 1 done with a warning (or,
for rebalance, nothing worth saving), 2 error.  Errors are raised as
``ValueError`` or ``RingError`` and turned into one line by ``ring_cli``.
"""

from __future__ import annotations

import os
import re
from array import array
from datetime import timedelta

from ring import ringfile
from ring.builder import RingBuilder
from ring.state import BuilderState
from tools.ring_args import parse_float, parse_int, split_args
from tools.ring_files import BuilderFiles
from tools.ring_report import dispersion_report

EXIT_OK = 0
EXIT_WARNING = 1
RULE = "-" * 79
# write_builder cannot recover min_part_hours from a ring; Swift assumes the same.
DEFAULT_MIN_PART_HOURS = 24


def _one(argv: list[str], command: str, shape: str) -> str:
    positional = split_args(argv).positional
    if len(positional) != 1:
        raise ValueError(f"{command} takes one argument: {shape}")
    return positional[0]


def _none(argv: list[str], command: str) -> None:
    if split_args(argv).positional:
        raise ValueError(f"{command} takes no arguments")


def cmd_create(files: BuilderFiles, argv: list[str]) -> int:
    positional = split_args(argv).positional
    if len(positional) != 3:
        raise ValueError("create takes <part_power> <replicas> <min_part_hours>")
    part_power = parse_int(positional[0], "part_power")
    replicas = parse_float(positional[1], "replicas")
    min_part_hours = parse_int(positional[2], "min_part_hours")
    files.create(RingBuilder(part_power, replicas, min_part_hours, clock=files.clock))
    print(f"Created {files.builder_path}: {1 << part_power} partitions, {replicas:g} replicas")
    return EXIT_OK


def cmd_set_replicas(files: BuilderFiles, argv: list[str]) -> int:
    replicas = parse_float(_one(argv, "set_replicas", "<replicas>"), "replicas")
    files.builder.set_replicas(replicas)
    files.save_builder()
    print(f"The replica count is now {files.builder.replicas:.6f}.")
    print("The change will take effect after the next rebalance.")
    return EXIT_OK


def cmd_set_overload(files: BuilderFiles, argv: list[str]) -> int:
    raw = _one(argv, "set_overload", "<overload>[%]")
    percent = raw.endswith("%")
    overload = parse_float(raw.removesuffix("%"), "overload")
    if percent:
        overload /= 100
    files.builder.set_overload(overload)
    files.save_builder()
    print(f"The overload factor is now {overload * 100:.2f}% ({overload:.6f})")
    print("The change will take effect after the next rebalance.")
    if overload > 1 and not percent:
        # 2 means 200%; someone who meant 2% wrote "2" — say so, but do what was asked.
        print("WARNING: the overload is over 100%; write 2% for two percent")
        return EXIT_WARNING
    return EXIT_OK


def cmd_set_min_part_hours(files: BuilderFiles, argv: list[str]) -> int:
    hours = parse_int(_one(argv, "set_min_part_hours", "<hours>"), "min_part_hours")
    files.builder.set_min_part_hours(hours)
    files.save_builder()
    print(f"The minimum number of hours before a partition can be reassigned is now {hours}")
    return EXIT_OK


def cmd_pretend_min_part_hours_passed(files: BuilderFiles, argv: list[str]) -> int:
    _none(argv, "pretend_min_part_hours_passed")
    files.builder.pretend_min_part_hours_passed()
    files.save_builder()
    print("Every partition may now be reassigned by the next rebalance.")
    return EXIT_OK


def _min_part_hours_note(builder: RingBuilder, seconds_left: int) -> str:
    return (
        f"The time between rebalances must be at least min_part_hours: "
        f"{builder.min_part_hours} hours ({timedelta(seconds=seconds_left)} remaining)"
    )


def _parse_seed(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"invalid seed {raw!r}: must be an integer") from None


def _explain_nothing_moved(builder: RingBuilder, seconds_left: int, devs_changed: bool) -> None:
    print("No partitions could be reassigned; the builder and ring files are unchanged.")
    if seconds_left:
        print(_min_part_hours_note(builder, seconds_left))
    else:
        print("There is no need to do so at this time.")
    if devs_changed:
        print("Device changes stay in the builder; write_ring publishes changed addresses.")


def cmd_rebalance(files: BuilderFiles, argv: list[str]) -> int:
    args = split_args(argv, values=("seed",), flags={"--force": "force", "-f": "force"})
    if len(args.positional) > 1 or (args.positional and "seed" in args.options):
        raise ValueError("rebalance takes one seed at most: rebalance [--seed S] [--force]")
    raw_seed = args.options.get("seed", args.positional[0] if args.positional else None)
    seed = None if raw_seed is None else _parse_seed(raw_seed)
    force = "force" in args.flags
    builder = files.builder
    devs_changed, seconds_left = builder.devs_changed, builder.min_part_seconds_left()
    result = builder.rebalance(seed)
    moved = result.parts_moved or result.removed_devices
    # Nothing moved and no device change to publish (or min_part_hours held every move back):
    # saving would only bump versions and make operators push an identical ring.
    if not (moved or force) and (seconds_left or not devs_changed):
        _explain_nothing_moved(builder, seconds_left, devs_changed)
        return EXIT_WARNING
    builder.validate()
    replica_count = builder.parts * builder.replicas
    print(
        f"Reassigned {result.parts_moved} ({100.0 * result.parts_moved / replica_count:.2f}%) "
        f"partition-replicas. Balance is now {result.balance:.2f}.  "
        f"Dispersion is now {result.dispersion:.2f}"
    )
    status = _rebalance_notes(builder, result.plan_reached, result.balance, result.dispersion)
    files.save_builder()
    files.write_ring()
    return status


def _rebalance_notes(
    builder: RingBuilder, plan_reached: bool, balance: float, dispersion: float
) -> int:
    """Warn when the ring is saved but not yet where the plan wants it."""
    if plan_reached and not dispersion:
        return EXIT_OK
    print(RULE)
    if not plan_reached:
        print(f"NOTE: Balance of {balance:.2f} indicates you should push this ring, wait at least")
        print(f"      {builder.min_part_hours} hours (min_part_hours), and rebalance/repush.")
    if dispersion:
        print(f"NOTE: Dispersion of {dispersion:.6f} indicates some partitions are not")
        print("      optimally dispersed; adjust device weights, raise the overload or")
        print("      review the dispersion report.")
    print(RULE)
    return EXIT_WARNING


def cmd_validate(files: BuilderFiles, argv: list[str]) -> int:
    _none(argv, "validate")
    files.builder.validate()
    print(f"{files.builder_path} is valid")
    return EXIT_OK


def cmd_dispersion(files: BuilderFiles, argv: list[str]) -> int:
    args = split_args(argv, flags={"-v": "verbose", "--verbose": "verbose"})
    if len(args.positional) > 1:
        raise ValueError("dispersion takes one tier filter at most: dispersion [<regex>] [-v]")
    tier_filter = args.positional[0] if args.positional else None
    if tier_filter:
        try:
            re.compile(tier_filter)
        except re.error as exc:
            raise ValueError(f"invalid tier filter {tier_filter!r}: {exc}") from None
    if not files.builder.ever_rebalanced:
        raise ValueError(f"{files.builder_path} has not been rebalanced yet; rebalance first")
    lines, at_risk = dispersion_report(files.builder, "verbose" in args.flags, tier_filter)
    print("\n".join(lines))
    return EXIT_WARNING if at_risk else EXIT_OK


def cmd_write_ring(files: BuilderFiles, argv: list[str]) -> int:
    _none(argv, "write_ring")
    files.write_ring()
    print(f"Wrote {files.ring_path} (build version {files.builder.version})")
    return EXIT_OK


def cmd_write_builder(files: BuilderFiles, argv: list[str]) -> int:
    """Rebuild a lost builder from its ring file (lossy: see the operator guide)."""
    positional = split_args(argv).positional
    if len(positional) > 1:
        raise ValueError("write_builder takes one optional argument: [min_part_hours]")
    hours = parse_int(positional[0], "min_part_hours") if positional else DEFAULT_MIN_PART_HOURS
    if os.path.exists(files.builder_path):
        raise ValueError(f"builder file {files.builder_path} already exists; not replacing it")
    ring_data = ringfile.read(files.ring_path)
    state = BuilderState(
        part_power=ring_data.part_power,
        replicas=ring_data.replicas,
        min_part_hours=hours,
        devices=list(ring_data.devices),
        replica2part2dev=[array(row.typecode, row) for row in ring_data.replica2part2dev],
        version=ring_data.version,
        id=ring_data.builder_id,
    )
    files.create(RingBuilder.from_state(state, clock=files.clock))
    print(f"Wrote {files.builder_path} from {files.ring_path} with min_part_hours {hours}")
    if not positional:
        print(f"WARNING: min_part_hours was not given; it is {hours} (change: set_min_part_hours)")
    return EXIT_OK
