"""A storage server as a real process (`torus serve SERVICE --config FILE`), for tests.

Functional and probe tests share it (tests/ is on pytest's pythonpath): it writes the TOML,
starts the process on a free loopback port, waits until it answers HTTP, and stops or kills
it.  Any service in tools/serve.py's SERVICES works; pass its table's keys as ``options``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A loopback port nobody listens on now (a race with other processes is unlikely)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


STORAGE_SERVICES = frozenset({"object", "container", "account"})  # the ones with devices


def write_config(
    path: Path,
    service: str,
    options: Mapping[str, Any],
    secret: str,
    tables: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """``[cluster]`` with the secret (plus ``tables["cluster"]``), the service's table, and any
    other ``tables`` (the proxy's ``[identity]``, say)."""
    tables = dict(tables or {})
    cluster = {"hash_path_secret": secret, **tables.pop("cluster", {})}
    lines: list[str] = []
    for name, table in {"cluster": cluster, service: options, **tables}.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))


class ServerProcess:
    """One server process; ``start()`` again after ``stop()``/``kill()`` reuses its config."""

    def __init__(
        self,
        service: str,
        workdir: Path,
        *,
        options: Mapping[str, Any] | None = None,
        secret: str = "functional-test-secret",
        tables: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.service = service
        self.secret = secret
        self.workdir = workdir
        self.devices = workdir / "devices"
        self.port = free_port()
        defaults: dict[str, Any] = {"bind_ip": "127.0.0.1", "bind_port": self.port}
        if service in STORAGE_SERVICES:
            self.devices.mkdir(parents=True, exist_ok=True)
            defaults.update(devices=str(self.devices), mount_check=False)
        self.options = {**defaults, "shutdown_grace_s": 2.0, **(options or {})}
        self.config_path = workdir / f"{service}-server.toml"
        write_config(self.config_path, service, self.options, secret, tables)
        self.log_path = workdir / f"{service}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> ServerProcess:
        assert self.proc is None, "already running"
        argv = [sys.executable, "-m", "tools.cli", "serve", self.service]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*argv, "--config", str(self.config_path)],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # its own process group: kill() reaches every worker
            )
        self._wait_until_answering()
        return self

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"{self.service} server exited at start:\n{self.log()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(*self.address, timeout=2)
                try:
                    conn.request("GET", "/")  # any HTTP answer will do, even 400
                    conn.getresponse().read()
                    return
                finally:
                    conn.close()
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.service} server did not answer in {START_TIMEOUT_S}s")

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (a graceful stop) and wait; the exit status."""
        return self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> int | None:
        """SIGKILL: a crash, nothing flushed or closed."""
        return self._end(signal.SIGKILL, 15.0)

    def _end(self, signum: int, timeout_s: float) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        if signum == signal.SIGKILL:
            os.killpg(proc.pid, signum)  # the supervisor cannot pass a SIGKILL on
        else:
            proc.send_signal(signum)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(15.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connection(self, timeout_s: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(*self.address, timeout=timeout_s)
