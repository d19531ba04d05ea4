"""Probe test 4: a container server down during an object PUT.

The object servers cannot tell the container replicas about the new object, so each keeps the
update as an async_pending on its device before answering; the PUT still succeeds (the object
is stored on a quorum).  While the container server is back but the updater has not run, the
listing misses the object.  One pass of ``torus serve object-updater --once`` on every object
node replays the updates: the listing has the object, and no async_pending is left.

Real processes throughout (tests/proxy_cluster.py): four object servers, one container server
with three devices (so all three container replicas go down together), an account server and
the proxy; the updater runs as ``torus serve`` runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import lmdb
from proxy_cluster import SECRET, ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

from service import async_pending
from service.async_pending import AsyncPending

ONCE_TIMEOUT_S = 120.0


def request(
    cluster: ProxyCluster, method: str, path: str, token: str, body: bytes | None = None
) -> tuple[int, bytes]:
    conn = cluster.connection()
    try:
        conn.request(method, path, body=body, headers={"X-Auth-Token": token})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def listing(cluster: ProxyCluster, path: str, token: str) -> list[str]:
    status, body = request(cluster, "GET", f"{path}?format=json", token)
    assert status == 200, status
    return [row["name"] for row in json.loads(body)]


def async_pendings(server: ServerProcess) -> list[AsyncPending]:
    """The async_pendings on the object server's devices, read beside the running server."""
    found: list[AsyncPending] = []
    for env_path in sorted(server.devices.glob("*/objects.lmdb")):
        env = lmdb.open(str(env_path), readonly=True, max_dbs=8)
        try:
            table = env.open_db(async_pending.TABLE, create=False)
            records = async_pending.list_pending(env, table)
        except lmdb.NotFoundError:
            records = []  # the table is made at the device's first open
        finally:
            env.close()
        assert all(record is not None for _, record in records)
        found += [record for _, record in records if record is not None]
    return found


def run_object_updater_once(cluster: ProxyCluster, server: ServerProcess) -> str:
    """``torus serve object-updater --once`` on ``server``'s devices; its output."""
    config = server.workdir / "object-updater.toml"
    options = {"devices": str(server.devices), "mount_check": False, "updates_per_s": 0}
    tables = {"cluster": {"ring_dir": str(cluster.ring_dir)}}
    write_config(config, "object_updater", options, SECRET, tables)
    argv = [sys.executable, "-m", "tools.cli", "serve", "object-updater", "--once"]
    done = subprocess.run(
        [*argv, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_an_update_kept_while_the_container_server_was_down_reaches_the_listing(
    tmp_path: Path,
) -> None:
    # The proxy must still know the container while its server is down: a long info cache.
    with ProxyCluster(tmp_path, proxy_options={"info_cache_ttl_s": 600.0}) as cluster:
        token, url = cluster.auth()
        container = f"{urlsplit(url).path}/probe"
        assert request(cluster, "PUT", container, token)[0] in (201, 202)
        assert request(cluster, "PUT", f"{container}/before", token, b"b")[0] == 201
        assert listing(cluster, container, token) == ["before"]

        cluster.container_server.stop()
        assert request(cluster, "PUT", f"{container}/during", token, b"during")[0] == 201
        kept = [p for s in cluster.object_servers for p in async_pendings(s)]
        assert kept, cluster.logs()
        assert {(p.op, p.container, p.obj) for p in kept} == {("PUT", "probe", "during")}
        assert all(p.headers["X-Size"] == "6" for p in kept)
        # The proxy shares the container replicas out among the object primaries (Swift's
        # spread); every replica was down, so between them the records name all three.
        told = {device for p in kept for _ip, port, device in p.targets}
        assert told == {"sda", "sdb", "sdc"}
        assert {port for p in kept for _ip, port, _device in p.targets} == {
            cluster.container_server.port
        }

        cluster.container_server.start()
        assert listing(cluster, container, token) == ["before"]  # not yet: nobody replayed it

        outputs = [run_object_updater_once(cluster, s) for s in cluster.object_servers]
        assert any("object-updater pass completed" in out for out in outputs)
        assert listing(cluster, container, token) == ["before", "during"]
        assert [p for s in cluster.object_servers for p in async_pendings(s)] == []
        # A second pass has nothing left to do.
        again = run_object_updater_once(cluster, cluster.object_servers[0])
        assert " 0 found," in again, again
