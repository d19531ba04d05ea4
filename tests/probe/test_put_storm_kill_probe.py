"""Probe test 8: a whole storage node — its object, container and account servers — killed
with SIGKILL in the middle of a storm of concurrent PUTs (mixed sizes) through the proxy.

Every PUT that was answered 201 must read back intact (MD5) through the proxy right after the
kill, and again once the node is restarted and ``torus serve object-replicator --once``
(until a round moves nothing), ``object-updater --once`` and ``container-updater --once``
have run on every node; the container listing of every container replica, read directly from
each container server, holds every acknowledged object.  The test prints a loss summary
(``{"lost_before_restart": 0, "lost_after_restart": 0, "missing_from_listing": 0, ...}``).

The cluster is tests/proxy_cluster.py's, with the container and account servers split into
four nodes of one device each (ProxyCluster's single container server with three devices
would take every container replica down at once: that is probe 4, not a storage node).
"""

from __future__ import annotations

import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from probe_helpers import (
    counter,
    md5,
    replicate_until_settled,
    request,
    run_daemon_once,
    stored,
)
from proxy_cluster import OBJECT_NODES, SECRET, ProxyCluster
from server_process import ServerProcess

from ring.ring import Ring

CONTAINER = "storm"
PUTS = 300
CLIENTS = 8
KILL_AFTER = PUTS // 3  # PUTs answered before the node dies
SIZES = (0, 1, 700, 4000, 65 << 10, 70 << 10, 300 << 10)
SEED = 8
EMPTY_PUT_TIMEOUT_S = 10.0


class NodeCluster(ProxyCluster):
    """Four storage nodes, each an object, a container and an account server with one device
    (``dN``), behind the proxy."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)  # its single container and account servers are never started
        common = {"shutdown_grace_s": 2.0}
        self.container_servers = [
            ServerProcess("container", root / f"container-{i}", options=common, secret=SECRET)
            for i in range(1, OBJECT_NODES + 1)
        ]
        self.account_servers = [
            ServerProcess("account", root / f"account-{i}", options=common, secret=SECRET)
            for i in range(1, OBJECT_NODES + 1)
        ]
        for name, servers in (
            ("container", self.container_servers),
            ("account", self.account_servers),
        ):
            for i, server in enumerate(servers, 1):
                (server.devices / f"d{i}").mkdir(exist_ok=True)
            self._write_ring(name, [(i, s.port, f"d{i}") for i, s in enumerate(servers, 1)])

    @property
    def servers(self) -> list[ServerProcess]:
        return [*self.object_servers, *self.container_servers, *self.account_servers, self.proxy]

    def node(self, index: int) -> list[ServerProcess]:
        """Storage node ``index``'s servers (0-based)."""
        return [
            s[index] for s in (self.object_servers, self.container_servers, self.account_servers)
        ]


def listing_on(server: ServerProcess, device: str, part: int, path: str) -> set[str]:
    """Every name in one container replica's listing, read straight from its server."""
    names: set[str] = set()
    marker = ""
    while True:
        conn = server.connection()
        try:
            query = f"format=json&limit=1000&marker={quote(marker)}"
            conn.request("GET", f"/{device}/{part}{quote(path)}?{query}")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status in (200, 204), (response.status, body[:200])
        rows = json.loads(body) if response.status == 200 and body else []
        if not rows:
            return names
        names.update(row["name"] for row in rows)
        marker = rows[-1]["name"]


@pytest.mark.timeout(600)  # a few hundred objects and several daemon passes on busy cores
def test_a_storage_node_killed_during_a_put_storm_loses_no_acknowledged_object(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    bodies = {f"storm-{i:04d}": os.urandom(rng.choice(SIZES)) for i in range(PUTS)}
    cluster = NodeCluster(tmp_path)
    with cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[1]
        base = f"{urlsplit(url).path}/{CONTAINER}"
        assert request(cluster, "PUT", base, token)[0] in (201, 202)

        victim = cluster.node(1)
        answered = 0
        lock = threading.Lock()
        killed = threading.Event()

        def put(name: str) -> tuple[str, int | str]:
            nonlocal answered
            try:
                status: int | str = request(cluster, "PUT", f"{base}/{name}", token, bodies[name])[
                    0
                ]
            except OSError as exc:  # not acknowledged, so nothing is owed
                status = repr(exc)
            with lock:
                answered += 1
                if answered == KILL_AFTER and not killed.is_set():
                    for server in victim:
                        server.kill()  # SIGKILL to each process group: nothing flushed
                    killed.set()
            return name, status

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = dict(pool.map(put, bodies))
        assert killed.is_set()
        acked = sorted(name for name, status in results.items() if status == 201)

        def get(name: str) -> tuple[str, bool]:
            status, _headers, body = request(cluster, "GET", f"{base}/{name}", token)
            return name, status == 200 and md5(body) == md5(bodies[name])

        def lost() -> list[str]:
            with ThreadPoolExecutor(CLIENTS) as pool:
                return [name for name, ok in pool.map(get, acked) if not ok]

        lost_before = lost()

        # -- the node comes back; the daemons settle the cluster -----------------------------
        for server in victim:
            server.start()
        rounds = replicate_until_settled(cluster, cluster.object_servers, max_rounds=8)
        replayed = 0
        for server in cluster.object_servers:
            output = run_daemon_once(cluster, server, "object-updater")
            replayed += counter(output, "object-updater", "successes")
            assert counter(output, "object-updater", "failures") == 0, output
        # A row whose object server and container server died together (the same node) has
        # no async_pending anywhere: container replication brings it from the other replicas.
        for server in cluster.container_servers:
            output = run_daemon_once(cluster, server, "container-replicator")
            assert counter(output, "container-replicator", "failures") == 0, output
        for server in cluster.container_servers:
            output = run_daemon_once(cluster, server, "container-updater")
            assert counter(output, "container-updater", "report failures") == 0, output
        lost_after = lost()

        # Every node directly: each acknowledged object on its three primaries, at one
        # version with its MD5 as the ETag, and on no other node.
        object_ring = Ring.load(cluster.ring_dir / "object.ring", SECRET.encode())
        on_node = {server.port: stored(server) for server in cluster.object_servers}
        misplaced = []
        for name in acked:
            full_name = f"/{account}/{CONTAINER}/{name}"
            _, nodes = object_ring.get_nodes(account, CONTAINER, name)
            primaries = {node.port for node in nodes}
            versions = {port: held.get(full_name, []) for port, held in on_node.items()}
            etags = {row[4] for port in primaries for row in versions[port]}
            if any(len(versions[port]) != 1 for port in primaries) or etags != {md5(bodies[name])}:
                misplaced.append((name, versions))
            elif any(versions[port] for port in versions if port not in primaries):
                misplaced.append((name, "left on a handoff"))

        ring = Ring.load(cluster.ring_dir / "container.ring", SECRET.encode())
        part, nodes = ring.get_nodes(account, CONTAINER)
        missing: dict[str, int] = {}
        for node in nodes:
            server = next(s for s in cluster.container_servers if s.port == node.port)
            held = listing_on(server, node.device, part, f"/{account}/{CONTAINER}")
            missing[node.device] = len(set(acked) - held)
        summary = {
            "probe": "put-storm-kill",
            "puts": PUTS,
            "acknowledged": len(acked),
            "not_acknowledged": PUTS - len(acked),
            "lost_before_restart": len(lost_before),
            "lost_after_restart": len(lost_after),
            "missing_from_listing": max(missing.values()),
            "missing_by_container_replica": missing,
            "misplaced": len(misplaced),
            "async_pendings_replayed": replayed,
            "replication_rounds": rounds,
        }
        print(json.dumps(summary))
        assert lost_before == [] and lost_after == [], (lost_before[:5], lost_after[:5])
        assert set(missing.values()) == {0}, summary
        assert misplaced == [], misplaced[:5]
        assert len(acked) > KILL_AFTER // 2, summary  # the storm went on after the kill


def test_empty_puts_through_the_proxy_all_answer_201(tmp_path: Path) -> None:
    """A proxy worker once hung for good on its second 0-byte PUT (a busy loop on aiohttp's
    shared empty body); four go through here, so that every worker gets two or more."""
    with ProxyCluster(tmp_path) as cluster:
        token, url = cluster.auth()
        base = f"{urlsplit(url).path}/{CONTAINER}"
        assert request(cluster, "PUT", base, token)[0] in (201, 202)
        statuses = []
        names = [f"empty-{n}" for n in range(4)]
        for name in names:
            conn = cluster.connection(timeout_s=EMPTY_PUT_TIMEOUT_S)
            try:
                conn.request("PUT", f"{base}/{name}", body=b"", headers={"X-Auth-Token": token})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            except TimeoutError:
                statuses.append("timed out")
            finally:
                conn.close()
        assert statuses == [201] * len(names)
        for name in names:
            status, headers, body = request(cluster, "GET", f"{base}/{name}", token)
            assert (status, body) == (200, b"")
            etag = {key.lower(): value for key, value in headers.items()}["etag"]
            assert etag.strip('"') == md5(b"")
