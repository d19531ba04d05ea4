"""The all-in-one cluster's server processes: what each one is, starting it, and its health.

Each server is ``torus serve SERVICE --config DATA/torus.toml`` in its own session (so its
process group holds its workers too), with its per-process settings as ``TORUS_*`` environment
variables, its output appended to DATA/log/NAME.log and its pid in DATA/run/NAME.pid.  Each
storage node also runs its background daemons (the updaters) the same way; a daemon has no
port, and counts as up while its process runs.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from tools.aio_layout import (
    ALL_NODE_DAEMONS,
    LOOPBACK,
    NODE_RING_DAEMONS,
    STORAGE_SERVICES,
    DataDir,
)
from tools.aio_pids import PidRecord, write_pid_file

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServerSpec:
    name: str  # "proxy", "identity", "object-1": names its log and pid files
    service: str  # what `torus serve` runs
    port: int | None  # None: a daemon, which serves no HTTP
    env: Mapping[str, str] = field(default_factory=dict)  # TORUS_* overrides of torus.toml
    health_path: str | None = None  # must answer 200; None: any HTTP answer will do

    def argv(self, data: DataDir) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tools.cli",
            "serve",
            self.service,
            "--config",
            str(data.config),
        ]

    def command_line(self, data: DataDir) -> str:
        """The shell line that runs this server by hand, as `torus up` runs it."""
        env = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(self.env.items()))
        return f"{env} torus serve {self.service} --config {shlex.quote(str(data.config))}".strip()


def cluster_specs(
    data: DataDir, *, proxy_port: int, identity_port: int, nodes: Mapping[int, Mapping[str, int]]
) -> list[ServerSpec]:
    """Every server of the cluster, storage nodes first and the proxy last."""
    specs = []
    for node, ports in nodes.items():
        for service in STORAGE_SERVICES:
            table = service.upper()
            env = {
                f"TORUS_{table}_BIND_PORT": str(ports[service]),
                f"TORUS_{table}_DEVICES": str(data.node(node)),
            }
            specs.append(ServerSpec(f"{service}-{node}", service, ports[service], env))
    endpoint = f"http://{LOOPBACK}:{proxy_port}"
    identity_env = {
        "TORUS_IDENTITY_BIND_PORT": str(identity_port),
        # Its v1 answers send clients to the proxy, not back to identity's own port.
        "TORUS_IDENTITY_STORAGE_URL_BASE": endpoint,
    }
    specs.append(ServerSpec("identity", "identity", identity_port, identity_env, "/healthcheck"))
    proxy_env = {"TORUS_PROXY_BIND_PORT": str(proxy_port)}
    specs.append(ServerSpec("proxy", "proxy", proxy_port, proxy_env, "/healthcheck"))
    return specs


def daemon_specs(data: DataDir, nodes: Mapping[int, Mapping[str, int]]) -> list[ServerSpec]:
    """Each storage node's daemons, walking that node's devices (``object-updater-1``, ...)."""
    specs = []
    for node, ports in nodes.items():
        for daemon in ALL_NODE_DAEMONS:
            table = daemon.replace("-", "_").upper()
            env = {
                f"TORUS_{table}_DEVICES": str(data.node(node)),
                # The all-in-one has no mount points; set here rather than only in torus.toml
                # so that a data directory made before the daemons existed works too.
                f"TORUS_{table}_MOUNT_CHECK": "false",
            }
            if daemon in NODE_RING_DAEMONS:  # its devices in that ring: this node's port there
                env[f"TORUS_{table}_BIND_IP"] = LOOPBACK
                env[f"TORUS_{table}_BIND_PORT"] = str(ports[NODE_RING_DAEMONS[daemon]])
            specs.append(ServerSpec(f"{daemon}-{node}", daemon, None, env))
    return specs


def start(spec: ServerSpec, data: DataDir) -> tuple[subprocess.Popen[bytes], PidRecord]:
    """Start ``spec``'s server and record its pid; it may not answer yet."""
    log_path = data.log_file(spec.name)
    with open(log_path, "ab") as log:
        stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        log.write(f"--- {stamp} torus up: {spec.command_line(data)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            spec.argv(data),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            start_new_session=True,  # its own process group: signals reach its workers too
        )
    return proc, write_pid_file(data.pid_file(spec.name), proc.pid)


def answers(spec: ServerSpec) -> bool:
    """Whether the server answers HTTP now (with 200 on its health path, if it has one); a
    daemon (no port) always does: that its process runs is checked apart."""
    if spec.port is None:
        return True
    with contextlib.suppress(OSError, http.client.HTTPException):
        conn = http.client.HTTPConnection(LOOPBACK, spec.port, timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("GET", spec.health_path or "/")
            status = conn.getresponse().status
            return spec.health_path is None or status == 200
        finally:
            conn.close()
    return False


def log_tail(data: DataDir, name: str, lines: int = 20) -> str:
    try:
        text = data.log_file(name).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
