"""Probe test: the container replicator reclaims old tombstone rows and deleted containers.

Real processes (as test_container_replication_probe.py: three container servers, one
replica each).  Objects are PUT and some DELETEd through the proxy; one round of
``torus serve container-replicator --once`` on each container node with ``reclaim_age_s =
0`` (every tombstone is past it) reclaims each replica's tombstones, and every replica,
read directly, lists the same objects with the same totals; the next round reclaims and
pushes nothing (no replica sent a reclaimed row back).  Then the rest is DELETEd, and the
container: a round drops each replica's database, and the next round finds none.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from probe_helpers import counter, replica_state, request, run_daemon_once
from proxy_cluster import SECRET, ThreeContainerServers

from ring.ring import Ring

DAEMON = "container-replicator"
COUNTERS = ("databases", "rows pushed", "rows reclaimed", "databases reclaimed", "errors")


def reclaim_round(cluster: ThreeContainerServers) -> dict[str, int]:
    """One ``--once`` pass on each container node with reclaim_age_s = 0; summed counters."""
    totals = dict.fromkeys(COUNTERS, 0)
    for server in cluster.container_servers:
        output = run_daemon_once(cluster, server, DAEMON, reclaim_age_s=0)
        for name in COUNTERS:
            totals[name] += counter(output, DAEMON, name)
        assert counter(output, DAEMON, "failures") == 0, output
    return totals


def test_replicators_reclaim_tombstones_then_the_deleted_container(tmp_path: Path) -> None:
    with ThreeContainerServers(tmp_path) as cluster:
        token, url = cluster.auth()
        base = urlsplit(url).path
        account = base.rsplit("/", 1)[1]
        assert request(cluster, "PUT", f"{base}/c", token)[0] == 201
        names = [f"obj-{i}" for i in range(6)]
        for i, name in enumerate(names):
            assert request(cluster, "PUT", f"{base}/c/{name}", token, b"z" * (i + 1))[0] == 201
        for name in names[:3]:
            assert request(cluster, "DELETE", f"{base}/c/{name}", token)[0] == 204
        ring = Ring.load(cluster.ring_dir / "container.ring", SECRET.encode())
        path = f"/sda/{ring.get_part(account, 'c')}/{account}/c"
        kept = (204, names[3:], "3", str(4 + 5 + 6))
        for server in cluster.container_servers:
            assert replica_state(server, path) == kept

        first = reclaim_round(cluster)
        assert first["rows reclaimed"] == 9 and first["errors"] == 0, first  # 3 per replica
        for server in cluster.container_servers:
            assert replica_state(server, path) == kept  # totals as before
        second = reclaim_round(cluster)
        assert second["rows reclaimed"] == 0 and second["rows pushed"] == 0, second

        for name in names[3:]:
            assert request(cluster, "DELETE", f"{base}/c/{name}", token)[0] == 204
        assert request(cluster, "DELETE", f"{base}/c", token)[0] == 204
        third = reclaim_round(cluster)
        assert third["databases reclaimed"] == 3 and third["rows reclaimed"] == 9, third
        fourth = reclaim_round(cluster)
        assert fourth["databases"] == 0 and fourth["errors"] == 0, fourth  # none came back
        for server in cluster.container_servers:
            assert replica_state(server, path)[0] == 404
        print(f"rounds: {first}; {second}; {third}; {fourth}")
