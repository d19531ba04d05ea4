"""The object expirer end to end, with real processes (tests/proxy_cluster.py: four object
servers, one container server with three devices, an account server and the proxy).

- An object PUT with ``X-Delete-After: 1`` is recorded in the expirer's queue; once due, one
  ``torus serve object-expirer --once`` on the container node deletes it on every object
  replica (a tombstone at the delete-at time), takes it out of the container listing and its
  totals, and removes its queue row.
- An object overwritten without an expiry before the expirer runs is not deleted (the
  expirer's ``X-If-Delete-At`` no longer matches): its stale row is just removed.
- An object given an expiry by a POST is recorded and expired the same way.
- An object not yet due is left, with its row.
- A queue update that failed while the container server was down is kept as an
  async_pending, replayed by ``torus serve object-updater --once``, and then expired.

Until tools/serve.py names the daemon, it runs through a shim adding its ``DAEMONS`` entry
(as tests/probe/test_bitrot_probe.py runs the auditor).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from proxy_cluster import SECRET, ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

from ring.ring import Ring
from service.update_targets import EXPIRING_ACCOUNT, expiring_container

ONCE_TIMEOUT_S = 120.0
_SERVE_EXPIRER = (
    "import sys; from tools import serve; "
    "serve.DAEMONS.setdefault('object-expirer', 'replicator.object_expirer:open_object_expirer'); "
    "sys.exit(serve.run('object-expirer', sys.argv[1], once=True))"
)


def request(
    cluster: ProxyCluster,
    method: str,
    path: str,
    token: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = cluster.connection()
    try:
        conn.request(method, path, body=body, headers={"X-Auth-Token": token, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def direct(port: int, method: str, path: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, quote(path) + query)
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def listing(cluster: ProxyCluster, path: str, token: str) -> list[str]:
    status, _, body = request(cluster, "GET", f"{path}?format=json", token)
    assert status == 200, status
    return [row["name"] for row in json.loads(body)]


def queue_rows(cluster: ProxyCluster, bucket: str) -> dict[str, list[str]]:
    """The bucket's rows on each replica, read from the container server directly."""
    ring = Ring.load(cluster.ring_dir / "container.ring", SECRET.encode())
    part, nodes = ring.get_nodes(EXPIRING_ACCOUNT, bucket)
    rows = {}
    for node in nodes:
        path = f"/{node.device}/{part}/{EXPIRING_ACCOUNT}/{bucket}"
        status, _, body = direct(node.port, "GET", path, "?format=json")
        rows[node.device] = [] if status in (204, 404) else [r["name"] for r in json.loads(body)]
    return rows


def object_replicas(cluster: ProxyCluster, account: str, container: str, obj: str) -> list[tuple]:
    """(status, X-Backend-Timestamp) of a HEAD on every primary, asked directly."""
    ring = Ring.load(cluster.ring_dir / "object.ring", SECRET.encode())
    part, nodes = ring.get_nodes(account, container, obj)
    found = []
    for node in nodes:
        path = f"/{node.device}/{part}/{account}/{container}/{obj}"
        status, headers, _ = direct(node.port, "HEAD", path)
        found.append((status, headers.get("X-Backend-Timestamp")))
    return found


def run_daemon(cluster: ProxyCluster, server: ServerProcess, service: str, options: dict) -> str:
    table = service.replace("-", "_")
    config = server.workdir / f"{service}.toml"
    options = {"devices": str(server.devices), "mount_check": False, **options}
    write_config(config, table, options, SECRET, {"cluster": {"ring_dir": str(cluster.ring_dir)}})
    if service == "object-expirer":
        argv = [sys.executable, "-c", _SERVE_EXPIRER, str(config)]
    else:
        argv = [sys.executable, "-m", "tools.cli", "serve", service, "--once", "--config"]
        argv.append(str(config))
    done = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=ONCE_TIMEOUT_S
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def run_expirer(cluster: ProxyCluster) -> str:
    server = cluster.container_server
    options = {"bind_ip": "127.0.0.1", "bind_port": server.port, "tasks_per_s": 0}
    out = run_daemon(cluster, server, "object-expirer", options)
    assert "object-expirer pass completed" in out, out
    return out


def wait_until(deadline_s: float) -> None:
    while time.time() <= deadline_s:
        time.sleep(0.1)


def put(cluster, path, token, body, headers=None) -> None:
    status, _, _ = request(cluster, "PUT", path, token, body, headers)
    assert status == 201, (status, cluster.logs())


def test_the_expirer_deletes_due_objects_and_only_those(tmp_path: Path) -> None:
    with ProxyCluster(tmp_path, proxy_options={"info_cache_ttl_s": 600.0}) as cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[-1]
        container = f"{urlsplit(url).path}/exp"
        assert request(cluster, "PUT", container, token)[0] in (201, 202)

        after_1 = {"X-Delete-After": "1"}
        put(cluster, f"{container}/doomed", token, b"doomed", after_1)
        delete_at = int(request(cluster, "HEAD", f"{container}/doomed", token)[1]["X-Delete-At"])
        put(cluster, f"{container}/kept", token, b"k1", {"X-Delete-After": "1"})
        put(cluster, f"{container}/kept", token, b"kept, no expiry")
        put(cluster, f"{container}/later", token, b"later", {"X-Delete-After": "3600"})
        put(cluster, f"{container}/plain", token, b"plain")
        put(cluster, f"{container}/posted", token, b"posted")  # its expiry comes by POST
        status, _, _ = request(cluster, "POST", f"{container}/posted", token, None, after_1)
        assert status == 202, status
        posted_at = int(request(cluster, "HEAD", f"{container}/posted", token)[1]["X-Delete-At"])

        bucket = expiring_container(delete_at)
        rows = queue_rows(cluster, bucket)
        doomed_row = f"{delete_at:010d}-{account}/exp/doomed"
        assert all(doomed_row in names for names in rows.values()), (rows, cluster.logs())
        assert all(len(names) >= 3 for names in rows.values()), rows  # doomed, kept, later

        wait_until(max(delete_at, posted_at) + 1)
        out = run_expirer(cluster)
        assert " 2 deleted," in out and " 1 stale," in out and " 3 removed," in out, out
        assert " 0 failures," in out, out

        # Gone everywhere: a tombstone at the delete-at time on every primary.
        replicas = object_replicas(cluster, account, "exp", "doomed")
        assert all(status == 404 for status, _ in replicas), replicas
        assert {ts for _, ts in replicas} == {f"{delete_at:010d}.00000"}, replicas
        replicas = object_replicas(cluster, account, "exp", "posted")
        assert {ts for _, ts in replicas} == {f"{posted_at:010d}.00000"}, replicas
        # ...and from the listing and its totals.
        assert listing(cluster, container, token) == ["kept", "later", "plain"]
        status, headers, _ = request(cluster, "HEAD", container, token)
        assert headers["X-Container-Object-Count"] == "3", headers
        assert headers["X-Container-Bytes-Used"] == str(len(b"kept, no expiry") + 5 + 5)
        # The overwrite stays; the not-yet-due object and its row stay.
        status, _, body = request(cluster, "GET", f"{container}/kept", token)
        assert (status, body) == (200, b"kept, no expiry")
        assert request(cluster, "GET", f"{container}/later", token)[0] == 200
        rows = queue_rows(cluster, bucket)
        if expiring_container(delete_at + 3600) == bucket:
            assert all(len(names) == 1 and "/exp/later" in names[0] for names in rows.values())
        again = run_expirer(cluster)
        assert " 0 found," in again, again


def test_a_queue_update_kept_while_the_container_server_was_down_is_replayed(
    tmp_path: Path,
) -> None:
    with ProxyCluster(tmp_path, proxy_options={"info_cache_ttl_s": 600.0}) as cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[-1]
        container = f"{urlsplit(url).path}/exp"
        assert request(cluster, "PUT", container, token)[0] in (201, 202)
        # The bucket exists on every replica first (see the report: a replayed row cannot
        # create it, since the container server does not auto-create hidden containers).
        put(cluster, f"{container}/first", token, b"1", {"X-Delete-After": "1"})

        # Due after the stop, the restart and the updater (a few seconds each), not before.
        delete_at = int(time.time()) + 15
        cluster.container_server.stop()
        at = {"X-Delete-At": str(delete_at)}
        put(cluster, f"{container}/pending", token, b"pending", at)
        cluster.container_server.start()
        bucket = expiring_container(delete_at)
        row = f"{delete_at:010d}-{account}/exp/pending"
        assert all(row not in names for names in queue_rows(cluster, bucket).values())

        for server in cluster.object_servers:
            run_daemon(cluster, server, "object-updater", {"updates_per_s": 0})
        rows = queue_rows(cluster, bucket)
        assert all(row in names for names in rows.values()), (rows, cluster.logs())
        assert "pending" in listing(cluster, container, token)

        wait_until(delete_at + 1)
        out = run_expirer(cluster)
        assert " 2 deleted," in out, out
        assert listing(cluster, container, token) == []
        assert all(s == 404 for s, _ in object_replicas(cluster, account, "exp", "pending"))
        assert all(names == [] for names in queue_rows(cluster, bucket).values())
