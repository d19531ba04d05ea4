"""Probe test 5: a full device.  One primary's device is a small tmpfs, filled to the brim:
its object server answers 507 (ENOSPC), the proxy writes that replica to a handoff and the
client sees 201.  Once the space is freed, ``torus serve object-replicator --once`` on every
object node moves the replica to the primary and drops it from the handoff.

Real processes throughout (tests/proxy_cluster.py); the tmpfs is mounted by the test, so it
needs root (skipped otherwise, with the reason).  Two bodies: one stored as a data file (the
server's fallocate fails) and one small enough to be stored inline in the device's LMDB
index (the index write itself fails).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from probe_helpers import md5, replicate_until_settled, request, stored
from proxy_cluster import ProxyCluster
from server_process import ServerProcess

from ring.ring import Ring

DEVICE_SIZE_BYTES = 32 << 20
FILL_CHUNK_BYTES = 64 << 10
CONTAINER = "probe"
BODIES = {
    "file": bytes(range(256)) * 800,  # 200 KiB: a data file
    "inline": os.urandom(1000),  # an inline body, in the index
}


@contextlib.contextmanager
def small_device(path: Path, size_bytes: int) -> Iterator[None]:
    """A tmpfs of ``size_bytes`` mounted on the device directory ``path``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as a full device needs root")
    argv = ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {path}: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until the filesystem says ENOSPC; the file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    chunk = b"\0" * FILL_CHUNK_BYTES
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]  # the last few pages too
                if not chunk:
                    return filler
    finally:
        os.close(fd)


def backend_put(server: ServerProcess, device: str, partition: int, path: str, body: bytes) -> int:
    """A PUT straight to the object server (as the proxy sends it); the status."""
    conn = server.connection()
    try:
        headers = {
            "X-Timestamp": "0000000001.00000",  # older than anything: never shadows a real PUT
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body)),
        }
        conn.request("PUT", f"/{device}/{partition}{path}", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_a_full_primary_answers_507_the_write_goes_to_a_handoff_and_comes_home(
    tmp_path: Path, kind: str
) -> None:
    cluster = ProxyCluster(tmp_path)
    full = cluster.object_servers[0]
    with small_device(full.devices / "d1", DEVICE_SIZE_BYTES), cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[1]
        base = f"{urlsplit(url).path}/{CONTAINER}"
        assert request(cluster, "PUT", base, token)[0] in (201, 202)
        obj = next(
            f"{kind}-{i}"
            for i in count()
            if full in cluster.object_primaries(account, CONTAINER, f"{kind}-{i}")
        )
        name = f"/{account}/{CONTAINER}/{obj}"
        primaries = cluster.object_primaries(account, CONTAINER, obj)
        handoffs = [s for s in cluster.object_servers if s not in primaries]
        ring = cluster.ring_dir / "object.ring"
        partition, _ = Ring.load(ring, cluster.proxy.secret.encode()).get_nodes(
            account, CONTAINER, obj
        )

        filler = fill(full.devices / "d1")
        assert backend_put(full, "d1", partition, name, BODIES[kind]) == 507, full.log()
        status, _headers, _ = request(cluster, "PUT", f"{base}/{obj}", token, BODIES[kind])
        assert status == 201, cluster.logs()
        assert name not in stored(full)
        holders = [s for s in handoffs if name in stored(s)]
        assert len(holders) == 1, cluster.logs()
        healthy = [s for s in primaries if s is not full]
        assert all(name in stored(s) for s in healthy), cluster.logs()

        os.unlink(filler)
        rounds = replicate_until_settled(cluster, cluster.object_servers)
        versions = {s.port: [row[1:] for row in stored(s).get(name, [])] for s in primaries}
        expected = [row[1:] for row in stored(healthy[0])[name]]
        assert len(expected) == 1 and expected[0][3] == md5(BODIES[kind]), expected
        assert all(v == expected for v in versions.values()), versions
        assert all(name not in stored(s) for s in handoffs), rounds
        status, _headers, body = request(cluster, "GET", f"{base}/{obj}", token)
        lost = 0 if status == 200 and md5(body) == md5(BODIES[kind]) else 1
        print(json.dumps({"probe": "full-device", "kind": kind, "lost": lost, "rounds": rounds}))
        assert lost == 0, status


def test_an_inline_put_to_a_full_device_answers_507(tmp_path: Path) -> None:
    server = ServerProcess("object", tmp_path / "object", secret="full-device-secret")
    (server.devices / "d1").mkdir()
    with small_device(server.devices / "d1", DEVICE_SIZE_BYTES):
        server.start()
        try:
            fill(server.devices / "d1")
            status = backend_put(server, "d1", 0, "/AUTH_test/c/inline", BODIES["inline"])
        finally:
            server.stop()
        assert status == 507, server.log()
