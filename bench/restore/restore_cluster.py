"""The all-in-one cluster the restore benchmark runs on, and what an operator does to it: stop
one node's servers, replace its device with an empty one, start them again, and run a daemon
once on every node with the settings `torus up` gives it (tools/aio_servers.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import aio_config, aio_rings
from tools.aio_layout import STOP_GRACE_S, DataDir, device_name
from tools.aio_pids import read_pid_file, stop_groups
from tools.aio_servers import ServerSpec, answers, cluster_specs, daemon_specs, start

REPO = Path(__file__).resolve().parents[2]
UP_TIMEOUT_S = 300.0  # `up` gives up by itself after 120 s of waiting for answers
START_TIMEOUT_S = 120.0  # a restarted node's servers answering HTTP
ONCE_TIMEOUT_S = 3600.0  # one daemon pass over a node holding ~750 MiB


def clean_env() -> dict[str, str]:
    """This environment without TORUS_* overrides, which would reach every server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TORUS_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def torus(*args: str, timeout_s: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=clean_env(),
    )


@dataclass
class Cluster:
    data: DataDir
    summary: dict[str, Any]  # run/cluster.json
    secret: bytes  # [cluster] hash_path_secret
    nodes: dict[int, dict[str, int]]  # node -> {service: port}
    restarted: list[subprocess.Popen[bytes]]  # servers this process started again

    @classmethod
    def up(cls, root: Path) -> Cluster:
        """``torus up --detach --data ROOT --port 0 --no-daemons``: the replicators run only
        when the benchmark runs them."""
        done = torus("up", "--detach", "--data", str(root), "--port", "0", "--no-daemons")
        if done.returncode != 0:
            raise RuntimeError(f"torus up failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        data = DataDir.at(root)
        document = aio_config.read_config(data)
        return cls(
            data,
            json.loads(data.cluster_file.read_text()),
            str(document["cluster"]["hash_path_secret"]).encode(),
            aio_rings.node_ports(aio_config.ring_dir(document, data)),
            [],
        )

    def down(self) -> str:
        done = torus("down", "--data", str(self.data.root), timeout_s=120.0)
        for proc in self.restarted:  # our children: reap them
            try:
                proc.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                proc.kill()
        return done.stdout + done.stderr

    @property
    def ring_dir(self) -> Path:
        return aio_config.ring_dir(aio_config.read_config(self.data), self.data)

    @property
    def auth_url(self) -> str:
        return self.summary["auth_url"]

    def device(self, node: int) -> Path:
        return self.data.node(node) / device_name(node)

    def server_pids(self) -> list[int]:
        """The pid (process group leader) of every running server, from the pid files."""
        pids = []
        for path in sorted(self.data.run.glob("*.pid")):
            entry = read_pid_file(path)
            if entry is not None and path.stem != "up":
                pids.append(entry.pid)
        return pids

    def _node_specs(self, node: int) -> list[ServerSpec]:
        document = aio_config.read_config(self.data)
        specs = cluster_specs(
            self.data,
            proxy_port=self.summary["servers"]["proxy"]["port"],
            identity_port=aio_config.identity_port(document),
            nodes=self.nodes,
        )
        names = {f"{service}-{node}" for service in ("object", "container", "account")}
        return [spec for spec in specs if spec.name in names]

    def replace_device(self, node: int) -> float:
        """Stop node ``node``'s servers, empty its device (the mount directory stays, as a
        fresh disk mounted there would), start them again; the seconds it took."""
        started = time.monotonic()
        specs = self._node_specs(node)
        entries = [read_pid_file(self.data.pid_file(spec.name)) for spec in specs]
        stop_groups([e for e in entries if e is not None], STOP_GRACE_S)
        for spec in specs:
            self.data.pid_file(spec.name).unlink(missing_ok=True)
        device = self.device(node)
        for child in device.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for spec in specs:
            proc, _entry = start(spec, self.data)
            self.restarted.append(proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        for spec in specs:
            while not answers(spec):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{spec.name} did not answer after its restart")
                time.sleep(0.2)
        return time.monotonic() - started

    def daemon_env(self, daemon: str, node: int, overrides: Mapping[str, str]) -> dict[str, str]:
        """The environment `torus up` gives node ``node``'s ``daemon``, plus ``overrides``
        (``{"PARTITIONS_PER_S": "0"}`` becomes ``TORUS_OBJECT_REPLICATOR_PARTITIONS_PER_S``)."""
        spec = next(s for s in daemon_specs(self.data, self.nodes) if s.name == f"{daemon}-{node}")
        table = daemon.replace("-", "_").upper()
        extra = {f"TORUS_{table}_{key.upper()}": value for key, value in overrides.items()}
        return {**clean_env(), **spec.env, **extra}

    def start_daemon_once(
        self, daemon: str, node: int, overrides: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        """``torus serve DAEMON --config DATA/torus.toml --once`` for node ``node``, its
        output to ``log`` (a file, not a pipe: four passes run at once and nobody reads)."""
        argv = [sys.executable, "-m", "tools.cli", "serve", daemon, "--once"]
        with open(log, "wb") as out:
            return subprocess.Popen(
                [*argv, "--config", str(self.data.config)],
                cwd=REPO,
                env=self.daemon_env(daemon, node, overrides),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
