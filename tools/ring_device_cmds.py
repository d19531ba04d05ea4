"""`torus ring` commands that find or change devices.

Each takes the command's arguments in swift-ring-builder's two forms:
compact values (``z1-10.0.0.1:6200/sda 100``) or long options
(``--zone 1 --ip 10.0.0.1 ...``), never both.  Changes are made to the
builder in memory and saved once at the end, so an error part-way through
(an unknown device, a bad weight in the third pair) leaves the builder file
as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ring.builder import RingBuilder
from ring.device import Device
from tools.ring_args import (
    CHANGE_OPTIONS,
    SEARCH_OPTIONS,
    YES_FLAG,
    Args,
    add_from_options,
    change_from_options,
    parse_add_value,
    parse_change_value,
    parse_int,
    parse_search_value,
    parse_weight,
    search_from_options,
    split_args,
)
from tools.ring_files import BuilderFiles
from tools.ring_report import device_table, format_device

Search = tuple[dict[str, Any], str]  # (criteria for search_devs, how the operator wrote it)


def _pairs(positional: list[str], command: str, shape: str) -> list[tuple[str, str]]:
    if not positional or len(positional) % 2:
        raise ValueError(f"{command} takes {shape} pairs")
    return list(zip(positional[::2], positional[1::2], strict=True))


def _option_search(args: Args) -> Search | None:
    """The search given as long options, or None if the compact form was used."""
    criteria = search_from_options(args.options)
    if not criteria:
        return None
    label = " ".join(f"--{k} {v}" for k, v in args.options.items() if k in SEARCH_OPTIONS)
    return criteria, label


def _searches(args: Args, command: str) -> list[Search]:
    """One search per positional search value, or one from the long options."""
    by_options = _option_search(args)
    if by_options and args.positional:
        raise ValueError(f"{command}: give search values or search options, not both")
    if by_options:
        return [by_options]
    if not args.positional:
        raise ValueError(f"{command} needs a search value (e.g. d3, z1-10.0.0.1, /sdb)")
    return [(parse_search_value(text), repr(text)) for text in args.positional]


def _select(builder: RingBuilder, search: Search, yes: bool) -> list[Device]:
    """The devices a change applies to; several only with --yes (we never prompt)."""
    criteria, label = search
    devs = builder.search_devs(**criteria)
    if not devs:
        raise ValueError(f"no device matches {label}; the builder file is unchanged")
    if len(devs) > 1 and not yes:
        print(f"{label} matches {len(devs)} devices:")
        for dev in devs:
            print(f"    {format_device(dev)}")
        raise ValueError(
            f"{label} matches {len(devs)} devices; nothing changed (add --yes to change them all)"
        )
    return devs


def cmd_add(files: BuilderFiles, argv: list[str]) -> int:
    args = split_args(argv, values=SEARCH_OPTIONS)
    if args.options and args.positional:
        raise ValueError("add: give <device> <weight> pairs or long options, not both")
    if args.options:
        specs = [add_from_options(args.options)]
    else:
        pairs = _pairs(args.positional, "add", "<device> <weight>")
        specs = [{**parse_add_value(dev), "weight": parse_weight(w)} for dev, w in pairs]
    builder = files.builder
    for spec in specs:
        dev_id = builder.add_dev(**spec)
        dev = builder.device(dev_id)
        print(f"Device {format_device(dev)} with {dev.weight} weight got id {dev_id}")
    files.save_builder()
    return 0


def cmd_remove(files: BuilderFiles, argv: list[str]) -> int:
    args = split_args(argv, values=SEARCH_OPTIONS, flags=YES_FLAG)
    builder = files.builder
    for search in _searches(args, "remove"):
        for dev in _select(builder, search, "yes" in args.flags):
            builder.remove_dev(dev.id)
            print(f"{format_device(dev)} marked for removal and will be removed next rebalance.")
    files.save_builder()
    return 0


def _set_each(
    files: BuilderFiles,
    argv: list[str],
    command: str,
    field: str,
    parse: Callable[[str], Any],
    apply: Callable[[RingBuilder, int, Any], None],
) -> int:
    """set_weight, set_region, set_zone: ``<search> <value>`` pairs or ``--options <value>``."""
    args = split_args(argv, values=SEARCH_OPTIONS, flags=YES_FLAG)
    by_options = _option_search(args)
    if by_options:
        if len(args.positional) != 1:
            raise ValueError(f"{command} with search options takes exactly one new {field}")
        jobs = [(by_options, args.positional[0])]
    else:
        pairs = _pairs(args.positional, command, f"<search-value> <{field}>")
        jobs = [((parse_search_value(s), repr(s)), value) for s, value in pairs]
    builder = files.builder
    for search, raw in jobs:
        value = parse(raw)
        for dev in _select(builder, search, "yes" in args.flags):
            apply(builder, dev.id, value)
            print(f"{format_device(dev)} {field} set to {value}")
    files.save_builder()
    return 0


def cmd_set_weight(files: BuilderFiles, argv: list[str]) -> int:
    return _set_each(
        files, argv, "set_weight", "weight", parse_weight, lambda b, i, v: b.set_dev_weight(i, v)
    )


def cmd_set_region(files: BuilderFiles, argv: list[str]) -> int:
    return _set_each(
        files,
        argv,
        "set_region",
        "region",
        lambda raw: parse_int(raw, "region"),
        lambda b, i, v: b.set_dev_info(i, region=v),
    )


def cmd_set_zone(files: BuilderFiles, argv: list[str]) -> int:
    return _set_each(
        files,
        argv,
        "set_zone",
        "zone",
        lambda raw: parse_int(raw, "zone"),
        lambda b, i, v: b.set_dev_info(i, zone=v),
    )


def cmd_set_info(files: BuilderFiles, argv: list[str]) -> int:
    args = split_args(argv, values=SEARCH_OPTIONS + CHANGE_OPTIONS, flags=YES_FLAG)
    by_options = _option_search(args)
    change = change_from_options(args.options)
    if args.options and args.positional:
        raise ValueError("set_info: give <search-value> <change> pairs or long options, not both")
    if args.options:
        if not by_options or not change:
            raise ValueError("set_info needs search options and at least one --change-* option")
        jobs = [(by_options, change)]
    else:
        pairs = _pairs(args.positional, "set_info", "<search-value> <change>")
        jobs = [((parse_search_value(s), repr(s)), parse_change_value(c)) for s, c in pairs]
    builder = files.builder
    for search, dev_change in jobs:
        for dev in _select(builder, search, "yes" in args.flags):
            builder.set_dev_info(dev.id, **dev_change)
            print(f"Device {format_device(dev)} is now {format_device(builder.device(dev.id))}")
    files.save_builder()
    return 0


def cmd_search(files: BuilderFiles, argv: list[str]) -> int:
    args = split_args(argv, values=SEARCH_OPTIONS)
    searches = _searches(args, "search")
    if len(searches) != 1:
        raise ValueError("search takes one search value")
    (criteria, label), builder = searches[0], files.builder
    devs = builder.search_devs(**criteria)
    if not devs:
        raise ValueError(f"no device matches {label}")
    print("Devices:")
    print("\n".join(device_table(builder, sorted(devs, key=lambda d: d.id))))
    return 0


def cmd_list(files: BuilderFiles, argv: list[str]) -> int:
    if split_args(argv).positional:
        raise ValueError("list takes no arguments (use search to filter)")
    builder = files.builder
    print("Devices:")
    print("\n".join(device_table(builder, sorted(builder.devices(), key=lambda d: d.id))))
    return 0


def cmd_list_parts(files: BuilderFiles, argv: list[str]) -> int:
    """The partitions with a replica on any matching device, most matches first."""
    args = split_args(argv, values=SEARCH_OPTIONS)
    builder = files.builder
    ids = {d.id for search in _searches(args, "list_parts") for d in _select(builder, search, True)}
    matches: Counter[int] = Counter()
    for row in builder.get_ring().replica2part2dev:
        matches.update(part for part, dev_id in enumerate(row) if dev_id in ids)
    print("Partition   Matches")
    for part, count in sorted(matches.items(), key=lambda pc: (-pc[1], pc[0])):
        print(f"{part:9d}   {count:7d}")
    return 0
