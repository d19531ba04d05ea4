"""Probe test: a container replica's database rots; the auditor finds it, replication mends it.

Real processes (tests/proxy_cluster.py, with three container servers of one device each, so
every container has a replica on each): objects are PUT through the proxy and a round of
``torus serve container-replicator --once`` gives every replica a sync point for every other
(so an incremental push would not resend old rows).  Then, beside the running server, one
replica's database is damaged at the storage seam: a row's bytes no longer decode and the
totals are wrong.  That replica's listing fails (500).  One ``container-auditor --once`` on
its node quarantines the row and mends the totals; one replicator round everywhere, and
every replica, read directly on its server, lists every object with the same totals; a
second audit of every node finds nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import lmdb
from probe_helpers import counter, direct, request, run_daemon_once
from proxy_cluster import SECRET, ProxyCluster, ThreeContainerServers
from server_process import ServerProcess

from containerd_.info import decode_totals, encode_totals
from ring.placement import hash_path
from ring.ring import Ring

ONCE_TIMEOUT_S = 300.0
OBJECTS = 20
DAEMON = "container-auditor"


def run_auditor_once(cluster: ProxyCluster, server: ServerProcess) -> str:
    return run_daemon_once(cluster, server, DAEMON)


def listing_state(server: ServerProcess, path: str) -> tuple[int, list[str], str, str]:
    """(listing status, names listed, object count, bytes used) on one container server: the
    listing's own status (a row that does not decode fails the GET, not the HEAD)."""
    status, headers, body = direct(server, "GET", path, "?format=json")
    if status != 200:
        return status, [], "", ""
    names = [row["name"] for row in json.loads(body)]
    return 200, names, headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]


def damage(server: ServerProcess, cid: bytes, name: str) -> None:
    """Beside the running server: the row's bytes no longer decode, the count is off by 7."""
    env = lmdb.open(str(server.devices / "sda" / "containers.lmdb"), max_dbs=16)
    try:
        with env.begin(write=True) as txn:
            objects = env.open_db(b"objects", txn=txn, create=False)
            totals = env.open_db(b"totals", txn=txn, create=False)
            assert txn.get(cid + name.encode(), db=objects) is not None
            txn.put(cid + name.encode(), b"\x01\x00rot", db=objects)
            count, used, stats, stats_sum = decode_totals(txn.get(cid, db=totals))
            txn.put(cid, encode_totals((count + 7, used, stats, stats_sum)), db=totals)
    finally:
        env.close()


def replicate_round(cluster: ThreeContainerServers) -> dict[str, int]:
    totals = {"rows pushed": 0, "full copies": 0, "failures": 0, "errors": 0}
    for server in cluster.container_servers:
        output = run_daemon_once(cluster, server, "container-replicator")
        for name in totals:
            totals[name] += counter(output, "container-replicator", name)
    return totals


def audit_counter(output: str, name: str) -> int:
    found = re.search(rf"{DAEMON} pass completed: [^\n]*?(\d+) {name}\b", output)
    assert found, output
    return int(found.group(1))


def test_auditor_and_replicator_restore_a_rotten_container_replica(tmp_path: Path) -> None:
    with ThreeContainerServers(tmp_path) as cluster:
        token, url = cluster.auth()
        base = urlsplit(url).path
        account = base.rsplit("/", 1)[1]
        assert request(cluster, "PUT", f"{base}/c", token)[0] == 201
        names = sorted(f"obj-{i:03d}" for i in range(OBJECTS))
        for i, name in enumerate(names):
            assert request(cluster, "PUT", f"{base}/c/{name}", token, b"z" * (i + 1))[0] == 201
        ring = Ring.load(cluster.ring_dir / "container.ring", SECRET.encode())
        path = f"/sda/{ring.get_part(account, 'c')}/{account}/c"
        whole = (200, names, str(OBJECTS), str(sum(range(1, OBJECTS + 1))))
        first = replicate_round(cluster)  # every replica now holds a point for every other
        assert first["failures"] == 0 and first["errors"] == 0, first
        for server in cluster.container_servers:
            assert listing_state(server, path) == whole

        rotten = cluster.container_servers[1]
        damage(rotten, hash_path(SECRET.encode(), account, "c"), names[5])
        assert listing_state(rotten, path)[0] == 500  # a listing over the bad row fails
        assert (
            run_auditor_once(cluster, cluster.container_servers[0]).count("failed its audit") == 0
        )

        output = run_auditor_once(cluster, rotten)
        counts = {n: audit_counter(output, n) for n in ("failed", "quarantined", "repaired")}
        assert counts == {"failed": 1, "quarantined": 1, "repaired": 1}, output
        missing = [n for n in names if n != names[5]]
        assert listing_state(rotten, path)[:3] == (200, missing, str(OBJECTS - 1))
        assert list((rotten.devices / "sda" / "quarantined" / "containers").iterdir())

        mended = replicate_round(cluster)
        assert mended["failures"] == 0 and mended["errors"] == 0, mended
        assert mended["full copies"] >= 2, mended  # both peers found no point for the rotten
        for server in cluster.container_servers:
            assert listing_state(server, path) == whole
            output = run_auditor_once(cluster, server)
            assert audit_counter(output, "failed") == 0, output
        print(f"mending round: {mended}")
