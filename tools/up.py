"""`torus up` and `torus down`: the all-in-one cluster on 127.0.0.1 (docs/design/all-in-one.md).

`up` makes the data directory's config and rings if they are absent, starts every server as
its own process (tools/aio_servers.py), and each storage node's daemons (the updaters, the
object replicator), waits until each server answers and the proxy's /healthcheck says 200,
prints how to use the cluster, and then either returns (``--detach``) or stays in the
foreground until Ctrl-C or SIGTERM, when it stops every server and daemon.  `down` stops what
the pid files under DATA/run/ name: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from service.config import ConfigError
from tools import aio_config, aio_rings
from tools.aio_layout import (
    ALL_NODE_DAEMONS,
    DEFAULT_IDENTITY_PORT,
    LOOPBACK,
    STOP_GRACE_S,
    DataDir,
    device_name,
    free_port,
    port_in_use,
    storage_port,
)
from tools.aio_pids import PidRecord, is_running, read_pid_file, stop_groups, write_pid_file
from tools.aio_servers import (
    ServerSpec,
    answers,
    cluster_specs,
    daemon_specs,
    log_tail,
    start,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_BUILT = 3
EXIT_INTERRUPTED = 130  # Ctrl-C before the cluster was up
START_TIMEOUT_S = 120.0  # fourteen Python processes starting on two busy cores
UP_PID_NAME = "up"  # DATA/run/up.pid: a foreground `torus up`, which `down` asks to stop
SERVICE_MODULES = ("proxy.server", "identity.server", "identity.users")


class UpError(Exception):
    """`up` cannot go on; the message says why, and nothing it started is left running."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


class _StopRequests:
    """While installed, SIGINT, SIGTERM and SIGHUP only set ``requested``: `up` then stops."""

    def __init__(self) -> None:
        self.requested = False

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopRequests]:
        signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in signums}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def up(data_path: str | Path, port: int, *, detach: bool, daemons: bool = True) -> int:
    """`torus up`: the exit status.  ``daemons`` False starts the servers only (as Swift's
    ``swift-init main start``): what a like-for-like benchmark against a SAIO wants."""
    data = DataDir.at(data_path)
    try:
        _check_built()
        data.make()
        with _exclusive(data), _StopRequests().installed() as stop:
            return _up_locked(data, port, detach=detach, daemons=daemons, stop=stop)
    except (UpError, ConfigError, aio_rings.LayoutError) as exc:
        print(f"torus up: {exc}", file=sys.stderr)
        return exc.status if isinstance(exc, UpError) else EXIT_FAILED


def _up_locked(
    data: DataDir, port: int, *, detach: bool, daemons: bool, stop: _StopRequests
) -> int:
    running = _running(data)
    if running:
        raise UpError(
            f"a cluster already runs on {data.root} ({len(running)} processes, pid files in "
            f"{data.run}); stop it with: torus down --data {data.root}"
        )
    _clear_run_files(data)
    specs, document = _prepare(data, port, daemons=daemons)
    taken = [
        f"{spec.port} ({spec.name})"
        for spec in specs
        if spec.port is not None and port_in_use(spec.port)
    ]
    if taken:
        raise UpError(
            f"ports already in use on {LOOPBACK}: {', '.join(taken)}; nothing was started. "
            "Stop what uses them, or choose another proxy port with --port (0: any free port)"
        )
    cluster = _Cluster(data, specs)
    try:
        cluster.start(stop)
        summary = _summary(data, specs, cluster.records, document, detached=detach)
        _write_json(data.cluster_file, summary)
        print(_banner(data, summary, detached=detach), flush=True)
        if detach:
            return EXIT_OK
        write_pid_file(data.pid_file(UP_PID_NAME), os.getpid())
        cluster.watch(stop)
    except BaseException:
        cluster.stop()
        raise
    cluster.stop()
    print("torus up: stopped", flush=True)
    return EXIT_OK


def _check_built() -> None:
    for module in SERVICE_MODULES:
        if importlib.util.find_spec(module) is None:
            raise UpError(f"{module} is not built yet; nothing was started", EXIT_NOT_BUILT)


@contextlib.contextmanager
def _exclusive(data: DataDir) -> Iterator[None]:
    """Hold DATA/run/up.lock: one `up` at a time per data directory (foreground: for life)."""
    with open(data.lock_file, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpError(
                f"another torus up is starting or running a cluster on {data.root}; "
                f"stop it with: torus down --data {data.root}"
            ) from None
        yield


def _prepare(
    data: DataDir, port: int, *, daemons: bool = True
) -> tuple[list[ServerSpec], dict[str, Any]]:
    """Write the config and rings if absent; every server and daemon to start (daemons last,
    so stopping in reverse order stops them first), and the parsed config.

    Port 0 asks for a free proxy port, and for free ports for whatever this run creates.
    """
    picker = _PortPicker(free=port == 0)
    proxy_port = picker.take(port)
    if not data.config.exists():
        users = _test_users()
        identity_port = picker.take(DEFAULT_IDENTITY_PORT)
        aio_config.ensure_config(
            data, proxy_port=proxy_port, identity_port=identity_port, users=users
        )
    document = aio_config.read_config(data)
    ring_dir = aio_config.ring_dir(document, data)
    aio_rings.ensure_rings(ring_dir, lambda service, node: picker.take(storage_port(service, node)))
    nodes = aio_rings.node_ports(ring_dir)
    for node in nodes:
        (data.node(node) / device_name(node)).mkdir(parents=True, exist_ok=True)
    identity_port = aio_config.identity_port(document)
    specs = cluster_specs(data, proxy_port=proxy_port, identity_port=identity_port, nodes=nodes)
    ports = [spec.port for spec in specs if spec.port is not None]
    if len(set(ports)) != len(ports):
        raise UpError(f"two servers would share a port: {sorted(ports)}; see {data.config}")
    return specs + (daemon_specs(data, nodes) if daemons else []), document


class _PortPicker:
    """Default ports, or distinct free ones (tests: nothing collides with a real cluster)."""

    def __init__(self, *, free: bool) -> None:
        self.free = free
        self.taken: set[int] = set()

    def take(self, default: int = 0) -> int:
        if not self.free:
            return default
        port = free_port()
        while port in self.taken:
            port = free_port()
        self.taken.add(port)
        return port


def _test_users() -> dict[str, str]:
    from identity.users import TEST_USERS  # lazy: only a new cluster's config needs them

    return dict(TEST_USERS)


class _Cluster:
    """The servers one `up` started: start them, watch them, stop them."""

    def __init__(self, data: DataDir, specs: list[ServerSpec]) -> None:
        self.data = data
        self.specs = specs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.records: dict[str, PidRecord] = {}

    def start(self, stop: _StopRequests) -> None:
        for spec in self.specs:
            self.procs[spec.name], self.records[spec.name] = start(spec, self.data)
        pending = list(self.specs)
        deadline = time.monotonic() + START_TIMEOUT_S
        while pending:
            if stop.requested:
                raise UpError("interrupted; stopped what had started", EXIT_INTERRUPTED)
            for spec in pending:
                self._check_alive(spec.name)
            pending = [spec for spec in pending if not answers(spec)]
            if pending and time.monotonic() > deadline:
                names = ", ".join(spec.name for spec in pending)
                raise UpError(
                    f"not answering after {START_TIMEOUT_S:.0f}s: {names}; logs in {self.data.logs}"
                )
            time.sleep(0.1)
        for spec in self.specs:  # a daemon "answers" at once: one with a bad config is gone now
            self._check_alive(spec.name)

    def _check_alive(self, name: str) -> None:
        status = self.procs[name].poll()
        if status is not None:
            raise UpError(
                f"{name} exited at start (status {status}); the end of "
                f"{self.data.log_file(name)}:\n{log_tail(self.data, name)}"
            )

    def watch(self, stop: _StopRequests) -> None:
        """Until asked to stop, say when a server exits (the others keep running)."""
        reported: set[str] = set()
        while not stop.requested:
            for name, proc in self.procs.items():
                if name not in reported and proc.poll() is not None:
                    reported.add(name)
                    print(
                        f"torus up: {name} exited (status {proc.returncode}); "
                        f"see {self.data.log_file(name)}",
                        file=sys.stderr,
                        flush=True,
                    )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop every server, proxy first; forget the pid files."""
        entries = [
            self.records[spec.name] for spec in reversed(self.specs) if spec.name in self.records
        ]
        stop_groups(entries, STOP_GRACE_S, on_kill=_say_killed, reap=self._reap)
        _clear_run_files(self.data)

    def _reap(self) -> None:
        for proc in self.procs.values():
            proc.poll()


def _say_killed(entry: PidRecord) -> None:
    print(f"torus: pid {entry.pid} did not stop in time; killing it", file=sys.stderr, flush=True)


def _running(data: DataDir) -> dict[str, PidRecord]:
    """Each process a pid file under DATA/run/ names that still runs, by name."""
    found = {}
    for path in sorted(data.run.glob("*.pid")) if data.run.is_dir() else []:
        entry = read_pid_file(path)
        if entry is not None and is_running(entry):
            found[path.stem] = entry
    return found


def _clear_run_files(data: DataDir) -> None:
    for path in [*data.run.glob("*.pid"), data.cluster_file] if data.run.is_dir() else []:
        path.unlink(missing_ok=True)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _summary(
    data: DataDir,
    specs: list[ServerSpec],
    records: Mapping[str, PidRecord],
    document: Mapping[str, Any],
    *,
    detached: bool,
) -> dict[str, Any]:
    """What DATA/run/cluster.json says about the running cluster (tests/aio_cluster.py reads it)."""
    by_name = {spec.name: spec for spec in specs}
    endpoint = f"http://{LOOPBACK}:{by_name['proxy'].port}"

    def process(spec: ServerSpec) -> dict[str, Any]:
        return {
            "service": spec.service,
            "port": spec.port,
            "pid": records[spec.name].pid,
            "log": str(data.log_file(spec.name)),
            "command": spec.command_line(data),
        }

    users = {}
    for name, value in aio_config.users(document).items():
        key, *groups = value.split()
        users[name] = {"key": key, "groups": groups}
    return {
        "data_dir": str(data.root),
        "config": str(data.config),
        "endpoint": endpoint,
        "auth_url": f"{endpoint}/auth/v1.0",
        "identity_url": f"http://{LOOPBACK}:{by_name['identity'].port}",
        "users": users,
        "detached": detached,
        "servers": {spec.name: process(spec) for spec in specs if spec.port is not None},
        # Background daemons (no port): object-updater-N, container-updater-N,
        # object-replicator-N.
        "daemons": {spec.name: process(spec) for spec in specs if spec.port is None},
    }


def _swift_command() -> str:
    """``swift`` if it is on PATH, else the one installed beside this interpreter (the venv)."""
    if shutil.which("swift"):
        return "swift"
    beside = Path(sys.executable).parent / "swift"
    return str(beside) if beside.exists() else "swift"


def _banner(data: DataDir, summary: Mapping[str, Any], *, detached: bool) -> str:
    users = summary["users"]
    user = "test:tester" if "test:tester" in users else next(iter(users), "ACCOUNT:USER")
    key = users.get(user, {}).get("key", "KEY")
    lines = [
        f"Torus is up on {LOOPBACK}: identity, proxy and 4 storage nodes; data in {data.root}",
        f"  endpoint  {summary['endpoint']}",
        f"  auth URL  {summary['auth_url']}   (identity also on {summary['identity_url']})",
    ]
    for i, (name, info) in enumerate(users.items()):
        groups = " ".join(info["groups"])
        lines.append(
            f"  {'users' if i == 0 else '':8}  {name:16} key {info['key']:12} {groups}".rstrip()
        )
    lines += [
        f"  S3        {summary['endpoint']}   region us-east-1, path-style; each user's pair is",
        "            access key = the user (e.g. test:tester), secret = its key (e.g. testing)",
        f"  logs      {data.logs}/",
        "Try:",
        f"  {_swift_command()} -A {summary['auth_url']} -U {user} -K {key} stat",
        f"  AWS_ACCESS_KEY_ID={user} AWS_SECRET_ACCESS_KEY={key} aws --endpoint-url "
        f"{summary['endpoint']} --region us-east-1 s3 ls",
    ]
    if detached:
        lines.append(f"Stop it with: torus down --data {data.root}")
    else:
        lines.append("Stop it with Ctrl-C.")
    return "\n".join(lines)


def down(data_path: str | Path, *, grace_s: float = STOP_GRACE_S) -> int:
    """`torus down`: stop the cluster whose pid files are under DATA/run/; the exit status."""
    data = DataDir.at(data_path)
    running = _running(data)
    foreground = running.pop(UP_PID_NAME, None)
    if not running and foreground is None:
        _clear_run_files(data)
        print(f"torus down: no cluster runs on {data.root}", file=sys.stderr)
        return EXIT_OK
    if foreground is not None:
        os.kill(foreground.pid, signal.SIGTERM)  # a foreground `up` stops its own servers too
    killed: list[int] = []
    stop_groups(running.values(), grace_s, on_kill=lambda entry: killed.append(entry.pid))
    if foreground is not None:
        _wait_for_exit(foreground, grace_s)
    _clear_run_files(data)
    note = f" ({len(killed)} killed after {grace_s:g}s)" if killed else ""
    daemons = sum(1 for name in running if name.rpartition("-")[0] in ALL_NODE_DAEMONS)
    stopped = f"{len(running) - daemons} servers" + (f" and {daemons} daemons" if daemons else "")
    print(f"torus down: stopped {stopped} on {data.root}{note}", file=sys.stderr)
    return EXIT_OK


def _wait_for_exit(entry: PidRecord, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while is_running(entry) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_running(entry):
        os.kill(entry.pid, signal.SIGKILL)
