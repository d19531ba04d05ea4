"""Probe tests 1 and 3: the object replicator settles what a primary missed while it was down.

1. A primary is down during a PUT: the write lands on a handoff.  After the primary restarts
   and ``torus serve object-replicator --once`` runs on every object node, every primary
   holds the object and the handoff copy is gone.
3. A DELETE while a primary is down: after the restart and a replication pass the object
   stays deleted (the tombstone won over the restarted primary's older data), and once the
   tombstone is older than ``reclaim_age_s`` a pass reclaims it everywhere.

Real processes throughout (tests/proxy_cluster.py: four object servers with one device each,
3 replicas, so a PUT with a primary down has a handoff to go to); each node's index is read
directly, beside its running server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lmdb
from proxy_cluster import SECRET, ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

from objectd.metadata import decode

ONCE_TIMEOUT_S = 120.0
BIG_BODY = bytes(range(256)) * 800  # 200 KiB: a data file, not an inline body


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


def stored(server: ServerProcess, name: str) -> list[tuple[str, bool]]:
    """(timestamp, deleted) of every version of ``name`` in the server's indexes."""
    found = []
    for env_path in sorted(server.devices.glob("*/objects.lmdb")):
        env = lmdb.open(str(env_path), readonly=True, max_dbs=8, lock=False)
        try:
            with env.begin() as txn:
                table = env.open_db(b"index", txn=txn, create=False)
                for _key, value in txn.cursor(db=table):
                    meta = decode(value)
                    if meta.name == name:
                        found.append((meta.timestamp.internal, meta.deleted))
        except lmdb.NotFoundError:
            pass
        finally:
            env.close()
    return found


def run_replicator_once(cluster: ProxyCluster, server: ServerProcess, **options: Any) -> str:
    """``torus serve object-replicator --once`` on ``server``'s node; its output."""
    config = server.workdir / "object-replicator.toml"
    table = {
        "devices": str(server.devices),
        "mount_check": False,
        "bind_ip": "127.0.0.1",
        "bind_port": server.port,
        "partitions_per_s": 0,
        **options,
    }
    tables = {"cluster": {"ring_dir": str(cluster.ring_dir)}}
    write_config(config, "object_replicator", table, SECRET, tables)
    argv = [sys.executable, "-m", "tools.cli", "serve", "object-replicator", "--once"]
    done = subprocess.run(
        [*argv, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "object-replicator pass completed" in output, output
    return output


def replicate_everywhere(cluster: ProxyCluster, **options: Any) -> list[str]:
    return [run_replicator_once(cluster, s, **options) for s in cluster.object_servers]


def handoffs(cluster: ProxyCluster, primaries: list[ServerProcess]) -> list[ServerProcess]:
    return [s for s in cluster.object_servers if s not in primaries]


def test_a_write_to_a_handoff_reaches_the_restarted_primary_and_leaves_the_handoff(
    tmp_path: Path,
) -> None:
    with ProxyCluster(tmp_path) as cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[1]
        container = f"{urlsplit(url).path}/probe"
        assert request(cluster, "PUT", container, token)[0] in (201, 202)
        primaries = cluster.object_primaries(account, "probe", "big")
        small = cluster.object_primaries(account, "probe", "small")
        down = primaries[0]
        down.stop()
        assert request(cluster, "PUT", f"{container}/big", token, BIG_BODY)[0] == 201
        down_small = down in small
        assert request(cluster, "PUT", f"{container}/small", token, b"small")[0] == 201
        name = f"/{account}/probe/big"
        on_handoffs = [s for s in handoffs(cluster, primaries) if stored(s, name)]
        assert len(on_handoffs) == 1, cluster.logs()
        down.start()
        assert stored(down, name) == []

        outputs = replicate_everywhere(cluster)
        written = stored(primaries[1], name)
        assert len(written) == 1 and not written[0][1]
        for primary in primaries:
            assert stored(primary, name) == written, "\n".join(outputs)
        for other in handoffs(cluster, primaries):
            assert stored(other, name) == [], "\n".join(outputs)
        small_name = f"/{account}/probe/small"
        for primary in small:
            assert len(stored(primary, small_name)) == 1, (down_small, "\n".join(outputs))
        # The restarted primary serves the pushed body, byte for byte.
        conn = down.connection()
        device = next(p.name for p in down.devices.iterdir() if p.is_dir())
        from ring.ring import Ring

        ring = Ring.load(cluster.ring_dir / "object.ring", SECRET.encode())
        partition, _nodes = ring.get_nodes(account, "probe", "big")
        try:
            conn.request("GET", f"/{device}/{partition}/{account}/probe/big")
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == BIG_BODY
        finally:
            conn.close()
        # Settled: a second round pushes nothing.
        again = replicate_everywhere(cluster)
        assert all(" 0 objects pushed," in out for out in again), "\n".join(again)


def test_a_delete_while_a_primary_was_down_stays_deleted_and_its_tombstone_is_reclaimed(
    tmp_path: Path,
) -> None:
    with ProxyCluster(tmp_path) as cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[1]
        container = f"{urlsplit(url).path}/probe"
        assert request(cluster, "PUT", container, token)[0] in (201, 202)
        path = f"{container}/doomed"
        assert request(cluster, "PUT", path, token, b"old data")[0] == 201
        name = f"/{account}/probe/doomed"
        primaries = cluster.object_primaries(account, "probe", "doomed")
        down = primaries[0]
        down.stop()
        assert request(cluster, "DELETE", path, token)[0] == 204
        down.start()
        assert [deleted for _ts, deleted in stored(down, name)] == [False]  # still the data

        outputs = replicate_everywhere(cluster)
        tombstone = stored(primaries[1], name)
        assert len(tombstone) == 1 and tombstone[0][1], "\n".join(outputs)
        for primary in primaries:
            assert stored(primary, name) == tombstone, "\n".join(outputs)
        for other in handoffs(cluster, primaries):
            assert stored(other, name) == [], "\n".join(outputs)
        assert request(cluster, "GET", path, token)[0] == 404  # no resurrection

        # Past reclaim_age (1 s here), a pass drops the tombstone on every node.
        time.sleep(1.5)
        outputs = replicate_everywhere(cluster, reclaim_age_s=1.0)
        for server in cluster.object_servers:
            assert stored(server, name) == [], "\n".join(outputs)
        assert request(cluster, "GET", path, token)[0] == 404
