"""The `torus` command: one entry point for operators and developers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tools import serve
from tools.aio_layout import DEFAULT_DATA_DIR, DEFAULT_PROXY_PORT, STOP_GRACE_S


def _run_tests(rest: list[str]) -> int:
    from tools import testrun  # lazy: plain `torus up` should not pay for it

    return testrun.run(rest)


def _run_ring(rest: list[str]) -> int:
    from tools import ring_cli  # lazy: written separately, and only `torus ring` needs it

    return ring_cli.main(rest)


# These hand every argument after their own name to another tool untouched (options that start
# with '-' and '--' included), which argparse.REMAINDER cannot do when the first one is an
# option, so main() dispatches them before argparse sees the rest.
def _run_bench(rest: list[str]) -> int:
    """bench/ is neither installed nor imported by any package: run its script as a process."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "swiftapi" / "loadgen.py"
    return subprocess.call([sys.executable, str(script), *rest])


PASSTHROUGH: dict[str, Callable[[list[str]], int]] = {
    "test": _run_tests,
    "ring": _run_ring,
    "bench": _run_bench,
}


def _up(args: argparse.Namespace) -> int:
    from tools import up  # lazy: only `torus up` and `torus down` need it

    return up.up(args.data, args.port, detach=args.detach, daemons=not args.no_daemons)


def _down(args: argparse.Namespace) -> int:
    from tools import up

    return up.down(args.data, grace_s=args.grace)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(port)
    return port


_port.__name__ = "port"  # argparse names the type in its error: "invalid port value"
_DATA_HELP = f"data directory ({DEFAULT_DATA_DIR})"


def _status(args: argparse.Namespace) -> int:
    from tools import status  # lazy: only `torus status` reads LMDB and the rings

    return status.run(args.data, as_json=args.json)


def _serve(args: argparse.Namespace) -> int:
    return serve.run(args.service, args.config, once=args.once)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torus", description="Torus object store.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser(
        "up",
        help="start the all-in-one cluster on 127.0.0.1",
        description="Build the rings and config if absent, start identity, proxy and 4 storage "
        "nodes on 127.0.0.1, wait until the proxy answers, and print how to use it. Runs until "
        "Ctrl-C unless --detach. Layout and ports: docs/design/all-in-one.md.",
    )
    up.add_argument("--data", default=DEFAULT_DATA_DIR, metavar="DIR", help=_DATA_HELP)
    up.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PROXY_PORT,
        help=f"proxy port ({DEFAULT_PROXY_PORT}); 0: a free port, and free ports for every "
        "server of a new data directory too (what tests use)",
    )
    up.add_argument("--detach", action="store_true", help="return once the cluster is up")
    up.add_argument(
        "--no-daemons",
        action="store_true",
        help="servers only, no replicators, auditors or updaters (as swift-init main start)",
    )
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop the all-in-one cluster")
    down.add_argument("--data", default=DEFAULT_DATA_DIR, metavar="DIR", help=_DATA_HELP)
    down.add_argument(
        "--grace",
        type=float,
        default=STOP_GRACE_S,
        metavar="SECONDS",
        help=f"how long servers get to stop after SIGTERM before SIGKILL ({STOP_GRACE_S:g})",
    )
    down.set_defaults(func=_down)

    status = sub.add_parser(
        "status",
        help="health of the all-in-one cluster, recon-style (exit 1 if something is wrong)",
        description="Per node: servers up, each daemon's last pass, async_pendings, quarantined "
        "bodies, handoff partitions and disk use per device; the ring md5 every node reads. "
        "Read from the data directory's files (recon records, LMDB read-only, rings). Exit "
        "status 1 names what is wrong: a server or daemon down, rings that disagree, a failed "
        "daemon pass, a device that cannot be read.",
    )
    status.add_argument("--data", default=DEFAULT_DATA_DIR, metavar="DIR", help=_DATA_HELP)
    status.add_argument("--json", action="store_true", help="one JSON object with everything")
    status.set_defaults(func=_status)

    serve_cmd = sub.add_parser(
        "serve",
        help="run one server or daemon in the foreground",
        description="Run one server or background daemon until SIGTERM or SIGINT, configured "
        "from a TOML file: [cluster], the service's own table ([object_updater] for "
        "object-updater), and any other table its build_app takes (the proxy's [identity]). "
        "TORUS_<TABLE>_<KEY> environment variables override the file.",
    )
    serve_cmd.add_argument(
        "service",
        choices=sorted([*serve.SERVICES, *serve.DAEMONS]),
        help="which server or daemon to run",
    )
    serve_cmd.add_argument("--config", required=True, metavar="FILE", help="TOML config file")
    serve_cmd.add_argument(
        "--once", action="store_true", help="daemons only: run one pass, then exit"
    )
    serve_cmd.set_defaults(func=_serve)

    # Listed for --help only; main() dispatches them (see PASSTHROUGH).
    sub.add_parser("test", help="ruff check, ruff format --check, then pytest [ARGS...]")
    sub.add_parser("ring", help="ring-builder admin tool: ring BUILDER_FILE [COMMAND ...]")
    sub.add_parser("bench", help="Swift API load generator: ops/s, MiB/s, latency, CPU per op")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in PASSTHROUGH:
        return PASSTHROUGH[args[0]](args[1:])
    namespace = build_parser().parse_args(args)
    return namespace.func(namespace)


if __name__ == "__main__":
    sys.exit(main())
