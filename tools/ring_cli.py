"""`torus ring BUILDER_FILE [COMMAND ARGS...]`: the ring-builder admin tool.

The commands, their argument syntax and their output follow
swift-ring-builder's (see docs/ring-admin.md).  This module is the entry
point and the command table; the commands live in ``ring_device_cmds`` (find
and change devices) and ``ring_build_cmds`` (the ring as a whole).

Errors are caught here and only here: a ``RingError``, ``ValueError`` or
``OSError`` becomes one ``torus ring: error: ...`` line on stderr and exit
status 2.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ring.errors import RingError
from tools import ring_build_cmds as build
from tools import ring_device_cmds as devices
from tools.ring_args import ADD_SYNTAX, CHANGE_SYNTAX, HelpRequested, split_args
from tools.ring_files import BuilderFiles
from tools.ring_report import summary

EXIT_ERROR = 2
PROG = "torus ring"


class Command(NamedTuple):
    run: Callable[[BuilderFiles, list[str]], int]
    usage: str  # the arguments after the command name


def cmd_default(files: BuilderFiles, argv: list[str]) -> int:
    """No command: the summary of the builder and its devices."""
    split_args(argv)  # only for -h
    print("\n".join(summary(files.builder, files.builder_path, files.ring_path)))
    return build.EXIT_OK


SEARCH_ARGS = "<search-value>... | --id/--region/--zone/--ip/--port/--device/--meta/--weight ..."
COMMANDS: dict[str, Command] = {
    "": Command(cmd_default, "(no command: show the builder and its devices)"),
    "create": Command(build.cmd_create, "<part_power> <replicas> <min_part_hours>"),
    "add": Command(
        devices.cmd_add,
        f"{ADD_SYNTAX} <weight> [...] | --region --zone --ip --port "
        "[--replication-ip --replication-port] --device [--meta] --weight",
    ),
    "remove": Command(devices.cmd_remove, f"{SEARCH_ARGS} [--yes]"),
    "set_weight": Command(
        devices.cmd_set_weight, "<search-value> <weight> [...] [--yes] | <search options> <weight>"
    ),
    "set_region": Command(devices.cmd_set_region, "<search-value> <region> [...] [--yes]"),
    "set_zone": Command(devices.cmd_set_zone, "<search-value> <zone> [...] [--yes]"),
    "set_info": Command(
        devices.cmd_set_info,
        f"<search-value> {CHANGE_SYNTAX} [...] [--yes] | <search options> --change-ip "
        "--change-port --change-replication-ip --change-replication-port --change-device "
        "--change-meta",
    ),
    "search": Command(devices.cmd_search, "<search-value> | <search options>"),
    "list": Command(devices.cmd_list, "(every device)"),
    "list_devices": Command(devices.cmd_list, "(same as list)"),
    "list_parts": Command(devices.cmd_list_parts, SEARCH_ARGS),
    "set_replicas": Command(build.cmd_set_replicas, "<replicas>"),
    "set_overload": Command(build.cmd_set_overload, "<overload>[%]"),
    "set_min_part_hours": Command(build.cmd_set_min_part_hours, "<hours>"),
    "rebalance": Command(build.cmd_rebalance, "[--seed S] [--force]"),
    "pretend_min_part_hours_passed": Command(build.cmd_pretend_min_part_hours_passed, ""),
    "validate": Command(build.cmd_validate, ""),
    "dispersion": Command(build.cmd_dispersion, "[<tier regex>] [-v|--verbose]"),
    "write_ring": Command(build.cmd_write_ring, "(BUILDER_FILE minus .builder, plus .ring)"),
    "write_builder": Command(build.cmd_write_builder, "[min_part_hours] (rebuild from the ring)"),
}

SEARCH_HELP = """\
Search values: [d<id>][r<region>][z<zone>][-][<ip>][:<port>][R[<ip>][:<port>]][/<device>][_<meta>]
  or a bare device id.  e.g. d3, 7, z1, r1z2-10.0.0.1, :6200, R10.1.0.1, /sdb, _ssd,
  z1-[::1]:6200/sda.  _<meta> matches a substring of the meta field.
Exit status: 0 done, 1 done with a warning (or nothing to rebalance), 2 error."""


def help_text() -> str:
    lines = [f"usage: {PROG} BUILDER_FILE [COMMAND [ARGS...]]", "", "Commands:"]
    for name, command in COMMANDS.items():
        if name:
            lines.append(f"  {name} {command.usage}".rstrip())
    return "\n".join([*lines, "", SEARCH_HELP])


def main(argv: Sequence[str], *, clock: Callable[[], float] = time.time) -> int:
    """Run one command; ``clock`` is the builder's and the backups' idea of now."""
    argv = list(argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(help_text())
        return build.EXIT_OK
    try:
        return _run(argv, clock)
    except (RingError, ValueError) as exc:
        return _error(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")


def _run(argv: list[str], clock: Callable[[], float]) -> int:
    if not argv:
        raise ValueError(f"usage: {PROG} BUILDER_FILE [COMMAND [ARGS...]] (see {PROG} --help)")
    builder_path, name, rest = argv[0], (argv[1] if len(argv) > 1 else ""), argv[2:]
    command = COMMANDS.get(name)
    if command is None:
        known = ", ".join(n for n in COMMANDS if n)
        raise ValueError(f"unknown command {name!r} (commands: {known})")
    try:
        return command.run(BuilderFiles(builder_path, clock), rest)
    except HelpRequested:
        print(f"usage: {PROG} {builder_path} {name} {command.usage}".rstrip())
        return build.EXIT_OK


def _error(message: str) -> int:
    # One line, whatever the message holds, so scripts can grep and operators can read it.
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_ERROR
