"""The updaters against real processes (tests/proxy_cluster.py), run as ``torus serve``
runs them, one pass at a time (``--once``).

The container updater makes the account listing's per-container object counts and bytes
current (the container servers report them only when a container is PUT or DELETEd), and a
second pass with nothing changed sends no report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from proxy_cluster import SECRET, ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

ONCE_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyCluster]:
    with ProxyCluster(tmp_path_factory.mktemp("updaters")) as started:
        yield started


def request(
    cluster: ProxyCluster, method: str, path: str, token: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = cluster.connection()
    try:
        conn.request(method, path, body=body, headers={"X-Auth-Token": token})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def run_once(cluster: ProxyCluster, daemon: str, server: ServerProcess) -> dict[str, float]:
    """``torus serve DAEMON --once`` on ``server``'s devices; its summary line's counters."""
    table = daemon.replace("-", "_")
    config = server.workdir / f"{daemon}.toml"
    options = {"devices": str(server.devices), "mount_check": False}
    tables = {"cluster": {"ring_dir": str(cluster.ring_dir)}}
    write_config(config, table, options, SECRET, tables)
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "serve", daemon, "--once", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    line = re.search(rf"{daemon} pass completed: [\d.]+s, (.*)", output)
    assert line is not None, output
    counters = (part.split(" ", 1) for part in line.group(1).split(", "))
    return {name: float(value) for value, name in counters}


def account_rows(cluster: ProxyCluster, account: str, token: str) -> dict[str, tuple[int, int]]:
    status, _, body = request(cluster, "GET", f"{account}?format=json", token)
    assert status == 200, status
    return {row["name"]: (row["count"], row["bytes"]) for row in json.loads(body)}


def test_the_container_updater_brings_the_account_totals_up_to_date(
    cluster: ProxyCluster,
) -> None:
    token, url = cluster.auth()
    account = urlsplit(url).path
    for name in ("totals", "empty"):
        assert request(cluster, "PUT", f"{account}/{name}", token)[0] in (201, 202)
    for name, size in (("a", 1), ("b", 20), ("c", 300)):
        assert request(cluster, "PUT", f"{account}/totals/{name}", token, b"x" * size)[0] == 201

    first = run_once(cluster, "container-updater", cluster.container_server)
    assert first["errors"] == 0 and first["report failures"] == 0, first
    # Three replicas (sda, sdb, sdc) of each of two containers, each replica reporting once.
    assert (first["containers"], first["reported"]) == (6, 6), first
    assert account_rows(cluster, account, token) == {"empty": (0, 0), "totals": (3, 321)}
    status, headers, _ = request(cluster, "HEAD", account, token)
    assert status == 204
    assert (headers["X-Account-Object-Count"], headers["X-Account-Bytes-Used"]) == ("3", "321")

    # Nothing changed: every container is found unchanged and costs no report.
    second = run_once(cluster, "container-updater", cluster.container_server)
    assert (second["containers"], second["unchanged"], second["reported"]) == (6, 6, 0), second

    assert request(cluster, "DELETE", f"{account}/totals/b", token)[0] == 204
    third = run_once(cluster, "container-updater", cluster.container_server)
    assert third["reported"] == 3 and third["unchanged"] == 3, third
    assert account_rows(cluster, account, token) == {"empty": (0, 0), "totals": (2, 301)}


def test_the_object_updater_finds_nothing_to_do_on_a_healthy_cluster(
    cluster: ProxyCluster,
) -> None:
    for server in cluster.object_servers:
        stats = run_once(cluster, "object-updater", server)
        assert (stats["found"], stats["errors"]) == (0, 0), stats
        assert stats["devices"] == 1, stats
