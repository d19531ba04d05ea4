"""`torus status` against a real all-in-one cluster (tests/aio_cluster.py).

Objects are PUT through the proxy, every node's updaters run once as an operator would run
them (``torus serve object-updater --config DATA/torus.toml --once``, with the node's settings
from cluster.json), and the status document then shows each pass recorded, no async_pending
left, disk in use, the rings agreeing, and exit status 0.  A stopped object server makes the
exit status 1, naming it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aio_cluster import REPO_ROOT, AioCluster, running_cluster, torus, torus_env
from swiftclient import client as swiftclient

from tools.aio_pids import group_members
from tools.status_cluster import command_env

ONCE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def run_daemon_once(cluster: AioCluster, name: str, info: dict[str, Any]) -> str:
    """Daemon ``name`` of cluster.json, one pass, with the settings `up` gives it."""
    env = {**torus_env(), **command_env(info["command"])}
    argv = [sys.executable, "-m", "tools.cli", "serve", info["service"], "--once"]
    done = subprocess.run(
        [*argv, "--config", str(cluster.config)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def status_json(data_dir: Path) -> tuple[int, dict[str, Any]]:
    done = torus("status", "--data", str(data_dir), "--json", timeout_s=60.0)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_status_after_puts_and_an_updater_pass(aio_cluster: AioCluster) -> None:
    started_at = time.time()
    url, token = swiftclient.get_auth(aio_cluster.auth_url, "test:tester", "testing")
    swiftclient.put_container(url, token, "status")
    for n in range(5):
        swiftclient.put_object(url, token, "status", f"o{n}", b"x" * (1000 * n))
    summary = json.loads((aio_cluster.data_dir / "run" / "cluster.json").read_text())
    for name, info in sorted(summary["daemons"].items()):
        assert "pass completed" in run_daemon_once(aio_cluster, name, info)

    code, report = status_json(aio_cluster.data_dir)

    assert (code, report["ok"], report["problems"]) == (0, True, [])
    assert report["cluster_running"]
    assert all(doc["up"] for doc in report["processes"].values())
    assert sorted(report["nodes"]) == ["1", "2", "3", "4"]
    partitions = 0
    for node, info in report["nodes"].items():
        assert all(doc["up"] for doc in info["servers"].values()), info["servers"]
        replication = info["replication"]
        assert replication is not None and replication["ok"], replication
        assert replication["started_at"] >= started_at - 1
        for daemon in ("object-updater", "container-updater", "object-auditor"):
            entry = info["daemons"][f"{daemon}-{node}"]
            last = entry["last_pass"]
            assert entry["running"] and last is not None and last["ok"], entry
            assert last["started_at"] >= started_at - 1  # this test's pass, or a later one
            assert last["devices"] == info["devices_dir"] and last["age_s"] >= 0
            assert "devices" in last["stats"]
        for device in info["devices"].values():
            assert device["async_pendings"] == 0 and device["errors"] == []
            assert device["used_bytes"] > 0 and device["fs_avail_bytes"] > 0
            assert device["handoff_partitions"] == 0  # every replica went to a primary
            partitions += device["partitions"]
    assert partitions >= 3  # the container's 5 objects' replicas, at least one partition each
    for ring in ("object", "container", "account"):
        rings = report["rings"][ring]
        assert rings["agree"] and rings["md5"] and set(rings["by_reader"]) >= {"1", "proxy"}
    assert report["rings_reported_by_servers"] is False

    human = torus("status", "--data", str(aio_cluster.data_dir), timeout_s=60.0)
    assert human.returncode == 0 and "all is well" in human.stdout, human.stdout + human.stderr
    assert "object-updater-1" in human.stdout


@pytest.mark.slow
def test_a_stopped_object_server_is_exit_1_and_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_cluster(data) as cluster:
        pid = cluster.servers["object-2"].pid
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_members(pid)

        code, report = status_json(data)
        assert code == 1 and not report["ok"]
        assert report["problems"] == ["object-2 is down (not running)"]
        assert report["nodes"]["2"]["servers"]["object-2"]["up"] is False

        human = torus("status", "--data", str(data), timeout_s=60.0)
        assert human.returncode == 1
        assert "! object-2 is down (not running)" in human.stdout
