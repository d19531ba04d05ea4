"""A whole all-in-one Torus cluster as real processes, for tests (tests/ is on pytest's pythonpath).

It runs ``torus up --detach --data DIR --port 0``: every port is a free one, so a test cluster
never meets a developer's ``./torus up`` on 8080 (or Swift's SAIO beside it), and ``torus down
--data DIR`` at the end.  What the cluster offers comes from DATA/run/cluster.json, which
``up`` writes once the proxy answers.

In a test::

    from aio_cluster import running_cluster

    with running_cluster(tmp_path / "aio") as cluster:
        swift("-A", cluster.auth_url, "-U", "test:tester", "-K", cluster.users["test:tester"], ...)

One cluster for a whole session: the ``aio_cluster`` fixture below.  Make it visible with
``pytest_plugins = ["aio_cluster"]`` in tests/conftest.py (or import it into a conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
UP_TIMEOUT_S = 180.0  # `up` itself gives up after 120 s
DOWN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    name: str  # "proxy", "identity", "object-1", ...
    service: str
    port: int
    pid: int
    log: Path


@dataclass(frozen=True)
class AioCluster:
    data_dir: Path
    config: Path  # DATA/torus.toml
    endpoint: str  # "http://127.0.0.1:PORT": the proxy, Swift API under /v1/
    auth_url: str  # endpoint + "/auth/v1.0" (v1 auth, served by the proxy)
    identity_url: str  # the standalone identity service ("/auth/v1.0" there too)
    users: dict[str, str]  # "account:user" -> key, e.g. "test:tester" -> "testing"
    groups: dict[str, tuple[str, ...]]  # "account:user" -> groups as configured (".admin")
    servers: dict[str, Server]

    @property
    def proxy_port(self) -> int:
        return self.servers["proxy"].port

    def storage_url(self, account: str = "test") -> str:
        """The proxy URL of ``account`` (``AUTH_<account>``), as v1 auth hands it out."""
        return f"{self.endpoint}/v1/AUTH_{account}"

    def swift_auth_args(self, user: str = "test:tester") -> list[str]:
        """``-A URL -U USER -K KEY`` for the ``swift`` command line."""
        return ["-A", self.auth_url, "-U", user, "-K", self.users[user]]

    def log(self, name: str) -> str:
        """Server ``name``'s log (its output since the data directory was made)."""
        return self.servers[name].log.read_text(errors="replace")

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> AioCluster:
        return cls(
            data_dir=Path(summary["data_dir"]),
            config=Path(summary["config"]),
            endpoint=summary["endpoint"],
            auth_url=summary["auth_url"],
            identity_url=summary["identity_url"],
            users={name: info["key"] for name, info in summary["users"].items()},
            groups={name: tuple(info["groups"]) for name, info in summary["users"].items()},
            servers={
                name: Server(name, info["service"], info["port"], info["pid"], Path(info["log"]))
                for name, info in summary["servers"].items()
            },
        )


def torus_env() -> dict[str, str]:
    """This environment without TORUS_* overrides, which would reach every server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TORUS_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def torus(
    *args: str, timeout_s: float = UP_TIMEOUT_S, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``torus ARGS...`` as a process (this interpreter, so this venv), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=torus_env(),
        check=check,
    )


def read_cluster(data_dir: Path) -> AioCluster:
    """The running cluster as DATA/run/cluster.json describes it."""
    return AioCluster.from_summary(json.loads((data_dir / "run" / "cluster.json").read_text()))


def start_cluster(data_dir: Path, extra_args: Sequence[str] = ()) -> AioCluster:
    """``torus up --detach --data DATA --port 0``; raises with up's output if it fails."""
    proc = torus("up", "--detach", "--data", str(data_dir), "--port", "0", *extra_args)
    if proc.returncode != 0:
        raise RuntimeError(f"torus up failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return read_cluster(data_dir)


def stop_cluster(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``torus down --data DATA``: every server stopped (SIGKILL after its grace)."""
    return torus("down", "--data", str(data_dir), timeout_s=DOWN_TIMEOUT_S)


@contextlib.contextmanager
def running_cluster(data_dir: Path) -> Iterator[AioCluster]:
    """A cluster on free ports with its data in ``data_dir``, stopped when the block ends.

    ``data_dir`` may hold an earlier cluster's data: it is reused, as ``./torus up`` does.
    """
    cluster = start_cluster(data_dir)
    try:
        yield cluster
    finally:
        stop_cluster(data_dir)


@pytest.fixture(scope="session")
def aio_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AioCluster]:
    """One all-in-one cluster for the whole session (its data under pytest's tmp dir)."""
    with running_cluster(tmp_path_factory.mktemp("aio") / "data") as cluster:
        yield cluster
