"""Probe test 2: bit rot.  A byte flipped in one replica's stored body is never served, the
object auditor quarantines that replica, and REPLICATE then shows the replicas differ.

Real processes throughout (tests/proxy_cluster.py): four object servers, a container and an
account server, the proxy; the auditor runs as a process on the damaged node's devices while
its object server keeps running, as ``torus serve object-auditor --once`` will run it.

- ``rot-get``: a byte in the second block of one replica's data file.  GETs through the proxy
  always return the right bytes: a read from the damaged replica fails at that block (the
  object server quarantines the body and cuts its answer) and the proxy resumes from another
  replica; a read from another replica never sees it.
- ``rot-audit`` (a data file) and ``rot-inline`` (a body in the LMDB ``bodies`` table): damaged
  on the same node and never read; one auditor pass on that node quarantines both — moved
  aside on disk, gone from the index (a HEAD is 404) and the partition's REPLICATE hashes
  changed — while the other replicas are untouched and GETs still return the right bytes.

- Replication restores it: ``torus serve object-replicator --once`` on every object node puts
  the three quarantined replicas back from the others — the same bytes, ETag and timestamps
  on the damaged node's disk — and the REPLICATE hashes of every partition's primaries agree.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import lmdb
from probe_helpers import replicate_until_settled, stored
from proxy_cluster import SECRET, ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

from ring.placement import hash_path
from ring.ring import Ring

ONCE_TIMEOUT_S = 120.0
GETS = 24  # primaries are read in random order: 24 reads all miss one replica with p < 1e-4
CONTAINER = "probe"
BLOCK = 1 << 20  # the object server's default checksum block
# `torus serve object-auditor --once`, until tools/serve.py names the daemon (DAEMONS): the
# same loader and process runner, with the line that wiring will add.
_SERVE_AUDITOR = (
    "import sys; from tools import serve; "
    "serve.DAEMONS.setdefault('object-auditor', 'replicator.object_auditor:open_object_auditor'); "
    "sys.exit(serve.run('object-auditor', sys.argv[1], once=True))"
)


@dataclass
class Replica:
    server: ServerProcess
    device: str
    partition: int
    digest: bytes

    @property
    def hash_dir(self) -> Path:
        suffix = f"{int.from_bytes(self.digest[-2:], 'big') & 0xFFF:03x}"
        return (
            self.server.devices
            / self.device
            / "objects"
            / str(self.partition)
            / suffix
            / self.digest.hex()
        )

    def data_files(self) -> list[Path]:
        return sorted(self.hash_dir.glob("*.data"))

    def quarantined_files(self) -> list[Path]:
        where = self.server.devices / self.device / "quarantined" / "objects" / self.digest.hex()
        return sorted(where.glob("*.data"))


def request(
    cluster: ProxyCluster, method: str, path: str, token: str, body: bytes | None = None
) -> tuple[int, bytes]:
    conn = cluster.connection()
    try:
        conn.request(method, quote(path), body=body, headers={"X-Auth-Token": token})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def backend(
    replica: Replica, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = replica.server.connection()
    try:
        conn.request(method, f"/{replica.device}/{replica.partition}{path}", headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise AssertionError(f"{method} {path} on {replica.server.address}: {exc!r}") from exc
    finally:
        conn.close()


def replicate(replica: Replica) -> dict[str, str]:
    status, body = backend(replica, "POST", "", {"X-HTTP-Method-Override": "REPLICATE"})
    assert status == 200, status
    return json.loads(body)


def replicas(cluster: ProxyCluster, account: str, obj: str) -> list[Replica]:
    ring = Ring.load(cluster.ring_dir / "object.ring", SECRET.encode())
    partition, nodes = ring.get_nodes(account, CONTAINER, obj)
    digest = hash_path(SECRET.encode(), account, CONTAINER, obj)
    return [
        Replica(cluster.object_server_for(node.port), node.device, partition, digest)
        for node in nodes
    ]


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def flip_inline_body(replica: Replica, body: bytes) -> None:
    """Damage the inline body beside the running object server (LMDB takes its write lock
    across processes)."""
    env_path = replica.server.devices / replica.device / "objects.lmdb"
    env = lmdb.open(str(env_path), max_dbs=8, map_size=1 << 40)
    try:
        with env.begin(write=True) as txn:
            table = env.open_db(b"bodies", txn=txn)
            found = [key for key, value in txn.cursor(db=table) if value == body]
            assert len(found) == 1
            txn.put(found[0], bytes([body[0] ^ 0xFF]) + body[1:], db=table)
    finally:
        env.close()


def run_auditor_once(server: ServerProcess) -> str:
    config = server.workdir / "object-auditor.toml"
    options = {"devices": str(server.devices), "mount_check": False, "bytes_per_s": 0}
    write_config(config, "object_auditor", {**options, "objects_per_s": 0}, SECRET)
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_AUDITOR, str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def counter(output: str, name: str) -> int:
    found = re.search(rf"object-auditor pass completed: .* (\d+) {name}\b", output)
    assert found, output
    return int(found.group(1))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_a_rotten_replica_is_never_served_and_the_auditor_quarantines_it(tmp_path: Path) -> None:
    with ProxyCluster(tmp_path) as cluster:
        token, url = cluster.auth()
        account = urlsplit(url).path.rsplit("/", 1)[1]
        base = f"{urlsplit(url).path}/{CONTAINER}"
        assert request(cluster, "PUT", base, token)[0] in (201, 202)
        bodies = {
            "rot-get": os.urandom(3 * BLOCK),
            "rot-audit": os.urandom(3 * BLOCK + 123),
            "rot-inline": os.urandom(1000),
        }
        for name, body in bodies.items():
            assert request(cluster, "PUT", f"{base}/{name}", token, body)[0] == 201

        # -- a GET never returns the damaged bytes --------------------------------------------
        got = replicas(cluster, account, "rot-get")
        (data_file,) = got[0].data_files()
        flip_byte(data_file, BLOCK + 4321)
        for _ in range(GETS):
            status, body = request(cluster, "GET", f"{base}/rot-get", token)
            assert status == 200, cluster.logs()
            assert md5(body) == md5(bodies["rot-get"])
        # Some GET surely read the damaged replica (the chance that none did is below 1e-4)
        # and its object server quarantined the body on the spot.
        assert got[0].data_files() == [] and len(got[0].quarantined_files()) == 1
        assert all(len(r.data_files()) == 1 for r in got[1:])

        # -- the auditor finds what nobody read -----------------------------------------------
        audited = replicas(cluster, account, "rot-audit")
        inline = replicas(cluster, account, "rot-inline")
        node = next(r.server for r in audited if r.server in {i.server for i in inline})
        damaged = next(r for r in audited if r.server is node)
        damaged_inline = next(r for r in inline if r.server is node)
        others = [r for r in (*audited, *inline) if r.server is not node]
        hashes_before = {id(r): replicate(r) for r in (*audited, *inline)}
        files_before = {id(r): [p.read_bytes() for p in r.data_files()] for r in others}

        (data_file,) = damaged.data_files()
        flip_byte(data_file, 2 * BLOCK + 7)  # the third block
        flip_inline_body(damaged_inline, bodies["rot-inline"])
        assert replicate(damaged) == hashes_before[id(damaged)]  # nothing noticed it yet

        output = run_auditor_once(node)
        # rot-get's replica may be on this node too, but the GET quarantined it already.
        assert counter(output, "quarantined") == 2, output
        assert counter(output, "errors") == 0, output

        for name, replica in (("rot-audit", damaged), ("rot-inline", damaged_inline)):
            assert backend(replica, "HEAD", f"/{account}/{CONTAINER}/{name}")[0] == 404
            assert replicate(replica) != hashes_before[id(replica)]
        assert damaged.data_files() == [] and len(damaged.quarantined_files()) == 1
        assert damaged.quarantined_files()[0].name == data_file.name
        for replica in others:
            assert replicate(replica) == hashes_before[id(replica)]
            assert [p.read_bytes() for p in replica.data_files()] == files_before[id(replica)]

        for name in ("rot-audit", "rot-inline", "rot-get"):
            status, body = request(cluster, "GET", f"{base}/{name}", token)
            assert status == 200 and md5(body) == md5(bodies[name]), name

        # -- replication restores every quarantined replica -----------------------------------
        rounds = replicate_until_settled(cluster, cluster.object_servers)
        assert rounds[0]["objects pushed"] >= 3, rounds  # rot-get, rot-audit and rot-inline
        for name, rotten in (
            ("rot-get", got[0]),
            ("rot-audit", damaged),
            ("rot-inline", damaged_inline),
        ):
            everyone = replicas(cluster, account, name)
            full_name = f"/{account}/{CONTAINER}/{name}"
            versions = [[row[1:] for row in stored(r.server)[full_name]] for r in everyone]
            assert versions[0][0][3] == md5(bodies[name]), versions  # the ETag
            assert all(v == versions[0] for v in versions), (name, versions)
            assert all(replicate(r) == replicate(everyone[0]) for r in everyone), name
            for replica in everyone:
                status, body = backend(replica, "GET", full_name)
                assert status == 200 and md5(body) == md5(bodies[name]), (name, status)
            if name != "rot-inline":
                (restored,) = rotten.data_files()
                other = next(r for r in everyone if r.server is not rotten.server)
                (healthy,) = other.data_files()
                assert restored.name == healthy.name  # the data timestamp
                assert restored.read_bytes() == healthy.read_bytes()
