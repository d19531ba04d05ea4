"""The account reaper (replicator/account_reaper.py) against the all-in-one, real processes.

An account with two containers and some objects (some > 64 KiB, so not inline bodies), made
and DELETEd by the reseller admin; then one reaper pass on every storage node, each a process
over that node's devices beside its running servers (as ``torus serve account-reaper --once``
will run it).  Exactly one node reaps (the first primary of the account's partition); after it:

- every object replica holds a tombstone (a 404 naming the reaper's X-Backend-Timestamp);
- every container replica has the containers deleted (404);
- the proxy answers as Swift's would: 410 for the account, 404 for its containers/objects.

A second pass on every node does nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from urllib.parse import quote

import requests
from aio_cluster import REPO_ROOT, AioCluster
from server_process import write_config

from ring.ring import Ring
from tools.aio_layout import NODES

TIMEOUT_S = 30
ONCE_TIMEOUT_S = 120.0
# `torus serve account-reaper --once`, until tools/serve.py names the daemon (DAEMONS): the
# same loader and process runner, with the line that wiring will add.
_SERVE_REAPER = (
    "import sys; from tools import serve; "
    "serve.DAEMONS.setdefault('account-reaper', 'replicator.account_reaper:open_account_reaper'); "
    "sys.exit(serve.run('account-reaper', sys.argv[1], once=True))"
)
OBJECTS = {
    "c1": {"small": b"s" * 100, "big": os.urandom(100 * 1024), "dir/with space": b"x"},
    "c2 ünïcode": {"tiny": b"", "large": os.urandom(300 * 1024)},
}
COUNTERS = (
    "accounts",
    "accounts elsewhere",
    "accounts reaped",
    "accounts remaining",
    "containers deleted",
    "objects deleted",
    "failures",
    "errors",
)


def login(cluster: AioCluster, user: str) -> str:
    response = requests.get(
        cluster.auth_url,
        headers={"X-Auth-User": user, "X-Auth-Key": cluster.users[user]},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    return response.headers["X-Auth-Token"]


def proxy(cluster: AioCluster, token: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"X-Auth-Token": token, **kwargs.pop("headers", {})}
    url = f"{cluster.endpoint}/v1/{quote(path)}"
    return requests.request(method, url, headers=headers, timeout=TIMEOUT_S, **kwargs)


def run_reaper_once(cluster: AioCluster, node: int, workdir: Path) -> dict[str, int]:
    """One pass on storage node ``node``; its summary line's counters."""
    with open(cluster.config, "rb") as f:
        cluster_table = tomllib.load(f)["cluster"]
    ring_dir = Path(cluster_table.get("ring_dir", cluster.data_dir / "rings"))
    if not ring_dir.is_absolute():
        ring_dir = cluster.config.parent / ring_dir
    config = workdir / f"account-reaper-{node}.toml"
    options = {
        "devices": str(cluster.data_dir / f"node{node}"),
        "mount_check": False,
        "bind_ip": "127.0.0.1",
        "bind_port": cluster.servers[f"account-{node}"].port,
        "deletes_per_s": 0,
    }
    write_config(
        config,
        "account_reaper",
        options,
        cluster_table["hash_path_secret"],
        {"cluster": {"ring_dir": str(ring_dir)}},
    )
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_REAPER, str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    found = re.search(r"account-reaper pass completed: (.*)", output)
    assert found, output
    counters = dict(
        (name, int(value)) for value, name in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", found.group(1))
    )
    assert set(COUNTERS) <= set(counters), output
    return counters


def totals(passes: list[dict[str, int]]) -> dict[str, int]:
    return {name: sum(p[name] for p in passes) for name in COUNTERS}


def backend(port: int, method: str, device: str, part: int, path: str) -> requests.Response:
    url = f"http://127.0.0.1:{port}/{device}/{part}{quote(path)}"
    return requests.request(method, url, timeout=TIMEOUT_S)


def test_the_reaper_deletes_a_deleted_accounts_containers_and_objects(
    aio_cluster: AioCluster, tmp_path: Path
) -> None:
    cluster = aio_cluster
    admin = login(cluster, "admin:admin")
    account = f"AUTH_reap-{uuid.uuid4().hex[:10]}"
    assert proxy(cluster, admin, "PUT", account).status_code == 201
    for container, objects in OBJECTS.items():
        assert proxy(cluster, admin, "PUT", f"{account}/{container}").status_code == 201
        for name, body in objects.items():
            put = proxy(cluster, admin, "PUT", f"{account}/{container}/{name}", data=body)
            assert put.status_code == 201, put.text
    assert proxy(cluster, admin, "DELETE", account).status_code == 204
    # Deleted, not yet reaped: the objects are all still there on the object servers.
    rings = {
        kind: Ring.load(cluster.data_dir / "rings" / f"{kind}.ring", secret(cluster))
        for kind in ("object", "container")
    }
    ports = {s.port: s for s in cluster.servers.values()}
    some = next(iter(OBJECTS["c1"]))
    opart, onodes = rings["object"].get_nodes(account, "c1", some)
    assert all(backend(n.port, "HEAD", n.device, opart, f"/{account}/c1/{some}").ok for n in onodes)

    first = totals([run_reaper_once(cluster, node, tmp_path) for node in range(1, NODES + 1)])
    count = sum(len(objects) for objects in OBJECTS.values())
    assert first["accounts"] == 1  # one node reaps: the first primary
    assert first["accounts elsewhere"] == 2  # the other two replicas' nodes leave it
    assert first["accounts reaped"] == 1
    assert first["containers deleted"] == len(OBJECTS)
    assert first["objects deleted"] == count
    assert first["failures"] == first["errors"] == first["accounts remaining"] == 0

    for container, objects in OBJECTS.items():
        cpart, cnodes = rings["container"].get_nodes(account, container)
        for node in cnodes:
            assert ports[node.port].service == "container"
            head = backend(node.port, "HEAD", node.device, cpart, f"/{account}/{container}")
            assert head.status_code == 404, (container, node)
        for name in objects:
            opart, onodes = rings["object"].get_nodes(account, container, name)
            for node in onodes:
                path = f"/{account}/{container}/{name}"
                head = backend(node.port, "HEAD", node.device, opart, path)
                # A tombstone: a 404 that names its timestamp.
                assert head.status_code == 404, (path, node)
                assert "X-Backend-Timestamp" in head.headers, (path, node, head.headers)
            get = proxy(cluster, admin, "GET", f"{account}/{container}/{name}")
            assert get.status_code == 404, (name, get.status_code)
        assert proxy(cluster, admin, "GET", f"{account}/{container}").status_code == 404
    # ...while a name never written has no tombstone: no timestamp to name.
    opart, onodes = rings["object"].get_nodes(account, "c1", "never")
    never = backend(onodes[0].port, "HEAD", onodes[0].device, opart, f"/{account}/c1/never")
    assert never.status_code == 404 and "X-Backend-Timestamp" not in never.headers
    assert proxy(cluster, admin, "GET", account).status_code == 410
    assert proxy(cluster, admin, "HEAD", account).status_code == 410

    second = totals([run_reaper_once(cluster, node, tmp_path) for node in range(1, NODES + 1)])
    assert second["accounts"] == 1
    for name in ("accounts reaped", "containers deleted", "objects deleted", "failures"):
        assert second[name] == 0, (name, second)


def secret(cluster: AioCluster) -> bytes:
    with open(cluster.config, "rb") as f:
        return tomllib.load(f)["cluster"]["hash_path_secret"].encode("utf-8")
