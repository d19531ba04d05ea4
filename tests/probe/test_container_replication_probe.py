"""Probe test: the container replicator mends container replicas a server missed.

Real processes (tests/proxy_cluster.py, with three container servers of one device each, so
every container has a replica on each): a container server is stopped; objects are PUT
through the proxy (their listing rows land on the two replicas up; the object servers keep
async_pendings for the third, and the updater is NOT run) and a second container is
DELETEd (on the two replicas up).  The server is restarted: its replica misses the rows and
still holds the deleted container.  One ``torus serve container-replicator --once`` on each
container node, and every replica, read directly on its server, lists the same objects with
the same totals, and the deleted container is deleted on all three.  A later round pushes
back at most the rows the mended replica merged (their echo), and the one after nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from probe_helpers import replica_state, request
from proxy_cluster import SECRET, ProxyCluster, ThreeContainerServers
from server_process import REPO_ROOT, ServerProcess, write_config

from ring.ring import Ring

ONCE_TIMEOUT_S = 300.0
OBJECTS = 40
DAEMON = "container-replicator"
# `torus serve container-replicator --once`, until tools/serve.py names the daemon (DAEMONS):
# the same loader and process runner, with the line that wiring will add.
_SERVE_REPLICATORS = (
    "import sys; from tools import serve; "
    "serve.DAEMONS.setdefault('container-replicator', "
    "'replicator.container_replicator:open_container_replicator'); "
    "serve.DAEMONS.setdefault('account-replicator', "
    "'replicator.account_replicator:open_account_replicator'); "
    "sys.exit(serve.run(sys.argv[1], sys.argv[2], once=True))"
)


def run_replicator_once(cluster: ProxyCluster, server: ServerProcess, daemon: str = DAEMON) -> str:
    config = server.workdir / f"{daemon}.toml"
    options = {
        "devices": str(server.devices),
        "mount_check": False,
        "bind_ip": "127.0.0.1",
        "bind_port": server.port,
        f"{daemon.split('-')[0]}s_per_s": 0,
    }
    tables = {"cluster": {"ring_dir": str(cluster.ring_dir)}}
    write_config(config, daemon.replace("-", "_"), options, SECRET, tables)
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_REPLICATORS, daemon, str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{daemon} pass completed" in output, output
    return output


def counter(output: str, name: str, daemon: str = DAEMON) -> int:
    found = re.search(rf"{daemon} pass completed: [^\n]*?(\d+) {name}\b", output)
    assert found, output
    return int(found.group(1))


def replicate_round(cluster: ThreeContainerServers) -> dict[str, int]:
    totals = {"rows pushed": 0, "full copies": 0, "failures": 0, "errors": 0}
    for server in cluster.container_servers:
        output = run_replicator_once(cluster, server)
        for name in totals:
            totals[name] += counter(output, name)
    return totals


def test_replicators_mend_a_replica_that_missed_rows_and_a_delete(tmp_path: Path) -> None:
    with ThreeContainerServers(tmp_path) as cluster:
        token, url = cluster.auth()
        base = urlsplit(url).path
        account = base.rsplit("/", 1)[1]
        for container in ("kept", "gone"):
            assert request(cluster, "PUT", f"{base}/{container}", token)[0] == 201
        assert request(cluster, "PUT", f"{base}/gone/x", token, b"x")[0] == 201
        assert request(cluster, "DELETE", f"{base}/gone/x", token)[0] == 204
        ring = Ring.load(cluster.ring_dir / "container.ring", SECRET.encode())
        paths = {c: f"/sda/{ring.get_part(account, c)}/{account}/{c}" for c in ("kept", "gone")}

        down = cluster.container_servers[1]
        down.stop()
        names = sorted(f"obj-{i:03d}" for i in range(OBJECTS))
        for i, name in enumerate(names):
            body = b"z" * (i + 1)
            assert request(cluster, "PUT", f"{base}/kept/{name}", token, body)[0] == 201
        assert request(cluster, "DELETE", f"{base}/gone", token)[0] == 204
        down.start()

        # The restarted replica missed it all; the updater would replay the rows, not the
        # container DELETE.
        assert replica_state(down, paths["kept"])[1] == []
        assert replica_state(down, paths["gone"])[0] == 204

        started = time.monotonic()
        first = replicate_round(cluster)
        elapsed_s = time.monotonic() - started
        assert first["failures"] == 0 and first["errors"] == 0, first
        assert first["rows pushed"] >= OBJECTS, first
        total_bytes = str(sum(range(1, OBJECTS + 1)))
        for server in cluster.container_servers:
            assert replica_state(server, paths["kept"]) == (204, names, str(OBJECTS), total_bytes)
            assert replica_state(server, paths["gone"])[0] == 404
        # Settles: the echo of what the mended replica merged, then nothing.
        second = replicate_round(cluster)
        third = replicate_round(cluster)
        assert second["failures"] == 0 and second["errors"] == 0, second
        assert third["rows pushed"] == 0 and third["full copies"] == 0, third
        print(f"first round {elapsed_s:.2f}s: {first}; second {second}; third {third}")
        for server in cluster.container_servers:
            assert replica_state(server, paths["kept"]) == (204, names, str(OBJECTS), total_bytes)

        # The account server's three devices hold the account's replicas; the account
        # replicator compares them (their container rows came from the same reports).
        output = run_replicator_once(cluster, cluster.account_server, "account-replicator")
        for name in ("failures", "errors"):
            assert counter(output, name, "account-replicator") == 0, output
        assert counter(output, "pushes", "account-replicator") >= 2, output
        print(next(line for line in output.splitlines() if "pass completed" in line))
