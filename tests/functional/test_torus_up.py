"""`torus up` and `torus down` as an operator runs them: a whole cluster of real processes.

Every cluster here runs on free ports (``--port 0``, tests/aio_cluster.py), in its own data
directory, so none meets a developer's ``./torus up`` on 8080.  The first tests need no process:
they check that the config and rings `up` writes are what each server accepts.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from aio_cluster import (
    REPO_ROOT,
    AioCluster,
    read_cluster,
    running_cluster,
    stop_cluster,
    torus,
    torus_env,
)
from swiftclient import client as swiftclient

from ring.ring import Ring
from service.config import load_toml
from tools import aio_config, aio_rings, serve
from tools.aio_layout import NODES, PART_POWER, DataDir, storage_port
from tools.aio_pids import group_members
from tools.aio_servers import cluster_specs

SERVER_NAMES = sorted(
    ["proxy", "identity"]
    + [
        f"{service}-{node}"
        for service in ("object", "container", "account")
        for node in (1, 2, 3, 4)
    ]
)
USERS = {"test:tester": "testing .admin", "test:tester3": "testing3"}


# -- what `up` writes, checked in-process ------------------------------------------------


def test_every_server_accepts_the_config_with_its_environment(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    aio_config.ensure_config(data, proxy_port=8080, identity_port=5000, users=USERS)
    document = load_toml(data.config)
    nodes = {n: {s: storage_port(s, n) for s in ("object", "container", "account")} for n in (1, 2)}
    for spec in cluster_specs(data, proxy_port=8080, identity_port=5000, nodes=nodes):
        build_app, config_cls = serve.load_factory(spec.service)
        config, arguments = serve.load_arguments(
            spec.service, build_app, config_cls, document, spec.env
        )
        assert config.bind_port == spec.port
        assert arguments["cluster"].ring_dir == data.rings
        if spec.service in ("object", "container", "account"):
            assert config.devices == data.node(int(spec.name[-1]))
            assert config.mount_check is False
    identity = document["identity"]
    assert identity["users"] == USERS
    assert len(identity["token_secret"]) >= 32


def test_the_config_is_written_once_and_only_for_its_owner(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path)
    assert aio_config.ensure_config(data, proxy_port=8080, identity_port=5000, users=USERS)
    first = data.config.read_bytes()
    assert not aio_config.ensure_config(data, proxy_port=9, identity_port=9, users={})
    assert data.config.read_bytes() == first
    assert stat.S_IMODE(data.config.stat().st_mode) == 0o600
    other = DataDir.at(tmp_path / "other")
    other.make()
    aio_config.ensure_config(other, proxy_port=8080, identity_port=5000, users=USERS)
    secrets = [
        tomllib.loads(d.config.read_text())["cluster"]["hash_path_secret"] for d in (data, other)
    ]
    assert secrets[0] != secrets[1]


def test_rings_have_one_device_per_node_and_spread_replicas_over_zones(tmp_path: Path) -> None:
    built = aio_rings.ensure_rings(tmp_path, storage_port)
    assert built == ["object", "container", "account"]
    assert aio_rings.ensure_rings(tmp_path, lambda service, node: 1) == []  # kept as they are
    assert aio_rings.node_ports(tmp_path) == {
        node: {
            "object": 6300 + 10 * node,
            "container": 6301 + 10 * node,
            "account": 6302 + 10 * node,
        }
        for node in range(1, NODES + 1)
    }
    ring = Ring.load(tmp_path / "object.ring", b"secret")
    assert ring.part_power == PART_POWER and ring.replica_count == 3
    assert {(d.region, d.zone, d.device) for d in ring.devices if d} == {
        (1, n, f"d{n}") for n in range(1, NODES + 1)
    }
    for part in range(0, ring.partition_count, 97):
        assert len({d.zone for d in ring.get_part_nodes(part)}) == 3
    assert (tmp_path / "object.builder").exists()  # for `torus ring DATA/rings/object.builder`


# -- real clusters -----------------------------------------------------------------------


def _http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers)


def _assert_all_stopped(cluster: AioCluster) -> None:
    left = {name: group_members(s.pid) for name, s in cluster.servers.items()}
    assert {name: pids for name, pids in left.items() if pids} == {}
    assert sorted(p.name for p in (cluster.data_dir / "run").iterdir()) == ["up.lock"]


@pytest.mark.slow
def test_up_detach_serves_then_down_stops_everything_and_up_again_reuses_the_data(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    up = torus("up", "--detach", "--data", str(data), "--port", "0")
    assert up.returncode == 0, up.stdout + up.stderr
    cluster = read_cluster(data)
    try:
        assert sorted(cluster.servers) == SERVER_NAMES
        assert _http_get(cluster.endpoint + "/healthcheck")[0] == 200
        # What `up` prints to try works as printed (swift from this venv).
        swift_line = f"swift -A {cluster.auth_url} -U test:tester -K testing stat"
        assert swift_line in up.stdout
        swift = Path(sys.executable).with_name("swift")
        stat_run = subprocess.run(
            [str(swift), *swift_line.split()[1:]], capture_output=True, text=True, timeout=60
        )
        assert stat_run.returncode == 0, stat_run.stdout + stat_run.stderr
        assert "Account: AUTH_test" in stat_run.stdout
        # The standalone identity sends clients to the proxy, as the proxy's own auth does.
        for auth_url in (cluster.auth_url, cluster.identity_url + "/auth/v1.0"):
            storage_url, _token = swiftclient.get_auth(auth_url, "test:tester", "testing")
            assert storage_url == cluster.storage_url("test")
        conn = swiftclient.Connection(cluster.auth_url, "test:tester", "testing", retries=0)
        conn.put_container("kept")
        conn.put_object("kept", "across/restarts", b"still here")
        secrets = (data / "torus.toml").read_bytes()
        rings = {p.name: p.read_bytes() for p in (data / "rings").glob("*.ring")}

        again = torus("up", "--detach", "--data", str(data), "--port", "0")
        assert again.returncode == 1
        assert f"a cluster already runs on {data}" in again.stderr
        assert _http_get(cluster.endpoint + "/healthcheck")[0] == 200  # untouched
    finally:
        down = stop_cluster(data)
    assert down.returncode == 0, down.stderr
    assert "stopped 14 servers" in down.stderr
    _assert_all_stopped(cluster)

    with running_cluster(data) as restarted:
        assert (data / "torus.toml").read_bytes() == secrets
        assert {p.name: p.read_bytes() for p in (data / "rings").glob("*.ring")} == rings
        storage_ports = {n: s.port for n, s in restarted.servers.items() if n[-1].isdigit()}
        assert storage_ports == {n: s.port for n, s in cluster.servers.items() if n[-1].isdigit()}
        conn = swiftclient.Connection(restarted.auth_url, "test:tester", "testing", retries=0)
        assert conn.get_object("kept", "across/restarts")[1] == b"still here"
    _assert_all_stopped(restarted)


@pytest.mark.slow
def test_ctrl_c_stops_a_foreground_up_and_every_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv = [sys.executable, "-m", "tools.cli", "up", "--data", str(data), "--port", "0"]
    proc = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=torus_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (data / "run" / "up.pid").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "torus up did not come up"
            time.sleep(0.1)
        cluster = read_cluster(data)
        assert _http_get(cluster.endpoint + "/healthcheck")[0] == 200
        proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends it
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop_cluster(data)
    assert proc.returncode == 0, err
    assert "Stop it with Ctrl-C." in out
    assert out.rstrip().endswith("torus up: stopped")
    _assert_all_stopped(cluster)


def test_a_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = torus("up", "--detach", "--data", str(data), "--port", str(port))
    assert proc.returncode == 1
    assert "ports already in use on 127.0.0.1" in proc.stderr
    assert f"{port} (proxy)" in proc.stderr
    assert sorted(p.name for p in (data / "run").iterdir()) == ["up.lock"]


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    proc = torus("down", "--data", str(tmp_path / "none"))
    assert proc.returncode == 0
    assert f"no cluster runs on {tmp_path / 'none'}" in proc.stderr


def test_the_launcher_takes_paths_from_where_it_was_called(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(REPO_ROOT / "torus"), "down", "--data", "relative"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**torus_env(), "CI": "true"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"no cluster runs on {tmp_path / 'relative'}" in proc.stderr
    assert not os.path.exists(REPO_ROOT / "relative")
