"""Probe test 6: a rebalance.  A cluster holding a few hundred objects (inline bodies, data
files over 64 KiB, and tombstones) gets a fifth object node: a device added to the object
ring, a rebalance, the ring written while every server runs.  The object servers do not read
the object ring at all (the proxy sends them device and partition; the replicator and the
updaters re-read the ring file), and the proxy reloads a changed ring file within its
``ring_check_interval_s`` (proxy/context.py; 0.5 s here), so no server is restarted: the test
waits for the proxy's "reloaded" log line.  Then ``torus serve object-replicator --once`` runs
on every node, round after round, until a round moves nothing, and every node is checked
directly: each partition's new primaries hold each of its objects and tombstones at the same
version, every other node holds none, and every object reads back through the proxy with its
MD5.  The summary printed: {"lost": 0, "moved": N, ...}.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from probe_helpers import md5, replicate_until_settled, request, stored
from proxy_cluster import PART_POWER, REPLICAS, SECRET, ProxyCluster
from server_process import ServerProcess

from ring import ringfile
from ring.builder import RingBuilder
from ring.ring import Ring

CONTAINER = "probe"
OBJECTS = 240
DELETED = 40  # of which this many are deleted again: tombstones to move
BIG_BYTES = (65 << 10, 200 << 10)  # data files
SMALL_BYTES = (1, 4000)  # inline bodies
RELOAD_TIMEOUT_S = 30.0
CLIENTS = 6
SEED = 6


def object_builder(servers: list[ServerProcess]) -> RingBuilder:
    """The builder ProxyCluster's object ring came from (same devices, same seed)."""
    builder = RingBuilder(PART_POWER, REPLICAS, 0)
    for zone, server in enumerate(servers, 1):
        builder.add_dev(
            region=1, zone=zone, ip="127.0.0.1", port=server.port, device=f"d{zone}", weight=1.0
        )
    builder.rebalance(seed=1)
    return builder


def primaries_by_partition(ring: Ring) -> dict[int, frozenset[int]]:
    return {
        part: frozenset(dev.port for dev in ring.get_part_nodes(part))
        for part in range(ring.partition_count)
    }


def wait_for_reload(proxy: ServerProcess, before: int) -> None:
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while proxy.log().count("object.ring (version") <= before:
        assert time.monotonic() < deadline, proxy.log()
        time.sleep(0.2)


def backend_get(server: ServerProcess, device: str, part: int, path: str) -> tuple[int, str]:
    """GET straight from one object server: (status, MD5 of the body, "" unless 200)."""
    conn = server.connection()
    try:
        conn.request("GET", f"/{device}/{part}{quote(path)}")
        response = conn.getresponse()
        body = response.read()
        return response.status, md5(body) if response.status == 200 else ""
    finally:
        conn.close()


@pytest.mark.timeout(600)  # a few hundred objects and several daemon passes on busy cores
def test_a_new_node_takes_its_partitions_and_nothing_is_lost(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cluster = ProxyCluster(tmp_path, proxy_options={"ring_check_interval_s": 0.5})
    with cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[1]
        base = f"{urlsplit(url).path}/{CONTAINER}"
        assert request(cluster, "PUT", base, token)[0] in (201, 202)
        bodies = {
            f"obj-{i:04d}": os.urandom(rng.randint(*(BIG_BYTES if i % 4 == 0 else SMALL_BYTES)))
            for i in range(OBJECTS)
        }
        deleted = sorted(rng.sample(sorted(bodies), DELETED))

        def put(name: str) -> int:
            return request(cluster, "PUT", f"{base}/{name}", token, bodies[name])[0]

        def delete(name: str) -> int:
            return request(cluster, "DELETE", f"{base}/{name}", token)[0]

        with ThreadPoolExecutor(CLIENTS) as pool:
            assert set(pool.map(put, bodies)) == {201}
            assert set(pool.map(delete, deleted)) == {204}
        live = {name: body for name, body in bodies.items() if name not in deleted}

        # -- a fifth node joins the object ring while everything runs ------------------------
        old_ring = Ring.load(cluster.ring_dir / "object.ring", SECRET.encode())
        builder = object_builder(cluster.object_servers)
        rebuilt = Ring(builder.get_ring(), SECRET.encode())
        assert primaries_by_partition(rebuilt) == primaries_by_partition(old_ring)
        new = ServerProcess(
            "object", tmp_path / "object-5", options={"shutdown_grace_s": 2.0}, secret=SECRET
        )
        (new.devices / "d5").mkdir()
        cluster.object_servers.append(new)  # stopped with the rest
        new.start()
        builder.add_dev(region=1, zone=5, ip="127.0.0.1", port=new.port, device="d5", weight=1.0)
        result = builder.rebalance(seed=2)
        reloads = cluster.proxy.log().count("object.ring (version")
        ringfile.write(cluster.ring_dir / "object.ring", builder.get_ring())
        wait_for_reload(cluster.proxy, reloads)
        new_ring = Ring.load(cluster.ring_dir / "object.ring", SECRET.encode())
        old, now = primaries_by_partition(old_ring), primaries_by_partition(new_ring)
        parts_moved = sum(1 for part in old if old[part] != now[part])
        assert parts_moved > 0 and any(new.port in ports for ports in now.values())

        rounds = replicate_until_settled(cluster, cluster.object_servers, max_rounds=8)

        # -- every node, directly ------------------------------------------------------------
        on_node = {server.port: stored(server) for server in cluster.object_servers}
        lost, misplaced, stale = [], [], []
        moved = 0
        for name in bodies:
            full_name = f"/{account}/{CONTAINER}/{name}"
            part = new_ring.get_part(account, CONTAINER, name)
            versions = {port: held.get(full_name, []) for port, held in on_node.items()}
            wanted = {row[1:] for port in now[part] for row in versions[port]}
            if len(wanted) != 1 or any(len(versions[port]) != 1 for port in now[part]):
                misplaced.append((name, versions))
            elif next(iter(wanted))[2] != (name in deleted):
                stale.append((name, versions))
            if any(versions[port] for port in versions if port not in now[part]):
                misplaced.append((name, "left on a node that is no longer a primary"))
            moved += len(now[part] - old[part])
            if new.port in now[part]:  # the new node serves what it got, bodies included
                status, digest = backend_get(new, "d5", part, full_name)
                if (status, digest) != ((404, "") if name in deleted else (200, md5(bodies[name]))):
                    lost.append((name, f"new node: {status}"))

        def get(name: str) -> tuple[str, int, str]:
            status, _headers, body = request(cluster, "GET", f"{base}/{name}", token)
            return name, status, md5(body)

        with ThreadPoolExecutor(CLIENTS) as pool:
            for name, status, digest in pool.map(get, bodies):
                want = (404, md5(b"")) if name in deleted else (200, md5(bodies[name]))
                if (status, digest if status == 200 else md5(b"")) != want:
                    lost.append((name, status))
        summary = {
            "lost": len(lost),
            "moved": moved,  # object or tombstone replicas whose partition got a new primary
            "objects": len(live),
            "tombstones": len(deleted),
            "partitions_moved": parts_moved,
            "builder_parts_moved": result.parts_moved,
            "misplaced": len(misplaced),
            "stale": len(stale),
            "rounds": rounds,
        }
        print(json.dumps(summary))
        assert lost == [] and misplaced == [] and stale == [], (lost, misplaced[:5], stale[:5])
        assert sum(r["objects pushed"] for r in rounds) >= moved, summary
