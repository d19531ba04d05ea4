"""The `torus` command: one entry point for operators and developers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tools import serve

NOT_BUILT = "the storage servers are not built yet (see issue 4); nothing was started"
EXIT_NOT_BUILT = 3


def _run_tests(rest: list[str]) -> int:
    from tools import testrun  # lazy: plain `torus up` should not pay for it

    return testrun.run(rest)


def _run_ring(rest: list[str]) -> int:
    from tools import ring_cli  # lazy: written separately, and only `torus ring` needs it

    return ring_cli.main(rest)


# These hand every argument after their own name to another tool untouched (options that start
# with '-' and '--' included), which argparse.REMAINDER cannot do when the first one is an
# option, so main() dispatches them before argparse sees the rest.
PASSTHROUGH: dict[str, Callable[[list[str]], int]] = {"test": _run_tests, "ring": _run_ring}


def _up(args: argparse.Namespace) -> int:
    print(f"torus up: {NOT_BUILT}", file=sys.stderr)
    return EXIT_NOT_BUILT


def _down(args: argparse.Namespace) -> int:
    print(f"torus down: {NOT_BUILT}", file=sys.stderr)
    return EXIT_NOT_BUILT


def _serve(args: argparse.Namespace) -> int:
    return serve.run(args.service, args.config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torus", description="Torus object store.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="start the all-in-one cluster on 127.0.0.1")
    up.add_argument("--data", default="./data", metavar="DIR", help="data directory (./data)")
    up.add_argument("--port", type=int, default=8080, help="proxy port (8080)")
    up.add_argument("--detach", action="store_true", help="return once the cluster is up")
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop the all-in-one cluster")
    down.set_defaults(func=_down)

    serve_cmd = sub.add_parser(
        "serve",
        help="run one storage server in the foreground",
        description="Run one server until SIGTERM or SIGINT, configured from [cluster] and "
        "the service's own table of a TOML file.",
    )
    serve_cmd.add_argument("service", choices=sorted(serve.SERVICES), help="which server to run")
    serve_cmd.add_argument("--config", required=True, metavar="FILE", help="TOML config file")
    serve_cmd.set_defaults(func=_serve)

    # Listed for --help only; main() dispatches them (see PASSTHROUGH).
    sub.add_parser("test", help="ruff check, ruff format --check, then pytest [ARGS...]")
    sub.add_parser("ring", help="ring-builder admin tool: ring BUILDER_FILE [COMMAND ...]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in PASSTHROUGH:
        return PASSTHROUGH[args[0]](args[1:])
    namespace = build_parser().parse_args(args)
    return namespace.func(namespace)


if __name__ == "__main__":
    sys.exit(main())
