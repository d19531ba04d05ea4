"""Helpers the probe tests share (tests/ is on pytest's pythonpath): requests through the proxy,
``torus serve <daemon> --once`` on a node, replicating until a pass moves nothing, and reading
a node's object index directly, beside its running server.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import lmdb
from proxy_cluster import SECRET, ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

from objectd.metadata import decode

ONCE_TIMEOUT_S = 300.0  # a pass over a few hundred objects on two busy cores


def direct(
    server: ServerProcess, method: str, path: str, query: str = ""
) -> tuple[int, dict[str, str], Any]:
    """A request straight to one server (no proxy): status, headers, body."""
    conn = server.connection()
    try:
        conn.request(method, quote(path) + query)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def replica_state(server: ServerProcess, path: str) -> tuple[int, list[str], str, str]:
    """(HEAD status, names listed, object count, bytes used) on one container server."""
    status, headers, _ = direct(server, "HEAD", path)
    if status != 204:
        return status, [], "", ""
    status, _, body = direct(server, "GET", path, "?format=json")
    assert status == 200, status
    names = [row["name"] for row in json.loads(body)]
    return 204, names, headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def request(
    cluster: ProxyCluster,
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through the proxy: (status, headers, body)."""
    conn = cluster.connection()
    try:
        conn.request(
            method, quote(path), body=body, headers={"X-Auth-Token": token, **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def run_daemon_once(
    cluster: ProxyCluster, server: ServerProcess, daemon: str, **options: Any
) -> str:
    """``torus serve DAEMON --once`` on ``server``'s devices; its output.  The replicators find
    their devices in the ring by ``server``'s port."""
    config = server.workdir / f"{daemon}.toml"
    table: dict[str, Any] = {"devices": str(server.devices), "mount_check": False}
    if daemon == "object-replicator":
        table.update(bind_ip="127.0.0.1", bind_port=server.port, partitions_per_s=0)
    elif daemon == "container-replicator":
        table.update(bind_ip="127.0.0.1", bind_port=server.port, containers_per_s=0)
    elif daemon == "object-updater":
        table.update(updates_per_s=0)
    elif daemon == "container-updater":
        table.update(reports_per_s=0)
    elif daemon == "object-auditor":
        table.update(bytes_per_s=0, objects_per_s=0)
    elif daemon == "container-auditor":
        table.update(containers_per_s=0, rows_per_s=0)
    elif daemon == "account-auditor":
        table.update(accounts_per_s=0, rows_per_s=0)
    tables = {"cluster": {"ring_dir": str(cluster.ring_dir)}}
    write_config(config, daemon.replace("-", "_"), {**table, **options}, SECRET, tables)
    argv = [sys.executable, "-m", "tools.cli", "serve", daemon, "--once"]
    done = subprocess.run(
        [*argv, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{daemon} pass completed" in output, output
    return output


def counter(output: str, daemon: str, name: str) -> int:
    """A counter of the daemon's summary line (``... 3 objects pushed, ...``)."""
    found = re.search(rf"{daemon} pass completed: [^\n]*?(\d+) {name}\b", output)
    assert found, output
    return int(found.group(1))


def replicate_round(cluster: ProxyCluster, servers: Iterable[ServerProcess]) -> dict[str, int]:
    """One object replicator pass on each node; the counters summed over the nodes."""
    totals = {"objects pushed": 0, "handoffs removed": 0, "failures": 0, "errors": 0}
    for server in servers:
        output = run_daemon_once(cluster, server, "object-replicator")
        for name in totals:
            totals[name] += counter(output, "object-replicator", name)
    return totals


def replicate_until_settled(
    cluster: ProxyCluster, servers: list[ServerProcess], max_rounds: int = 6
) -> list[dict[str, int]]:
    """Rounds of replication until one pushes and removes nothing; every round's totals.
    Fails if ``max_rounds`` never settle or a round counts failures or errors."""
    rounds: list[dict[str, int]] = []
    for _ in range(max_rounds):
        totals = replicate_round(cluster, servers)
        rounds.append(totals)
        assert totals["failures"] == 0 and totals["errors"] == 0, rounds
        if totals["objects pushed"] == 0 and totals["handoffs removed"] == 0:
            return rounds
    raise AssertionError(f"replication did not settle in {max_rounds} rounds: {rounds}")


Version = tuple[str, str, str, bool, str]  # device, timestamp, meta timestamp, deleted, etag


def stored(server: ServerProcess) -> dict[str, list[Version]]:
    """Every version in the node's object indexes by name, read directly beside the running
    server."""
    found: dict[str, list[Version]] = {}
    for env_path in sorted(server.devices.glob("*/objects.lmdb")):
        env = lmdb.open(str(env_path), readonly=True, max_dbs=8, lock=False)
        try:
            with env.begin() as txn:
                table = env.open_db(b"index", txn=txn, create=False)
                for _key, value in txn.cursor(db=table):
                    meta = decode(value)
                    row = (
                        env_path.parent.name,
                        meta.timestamp.internal,
                        meta.meta_timestamp.internal,
                        meta.deleted,
                        meta.etag,
                    )
                    found.setdefault(meta.name, []).append(row)
        except lmdb.NotFoundError:
            pass  # the table is made at the device's first open
        finally:
            env.close()
    return found
