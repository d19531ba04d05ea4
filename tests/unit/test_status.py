"""`torus status` (tools/status*.py) on a data directory made by hand: the figures it reads
from LMDB, the quarantine and the rings, and the problems that make its exit status 1.

The LMDB environments are written here with the object server's table names and key layout
(objectd/device.py, objectd/layout.py); the live cluster is tests/functional/test_status.py's.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import lmdb
import pytest

from replicator import recon
from ring.ring import Ring
from tools import aio_config, aio_rings, status, status_render
from tools.aio_layout import DataDir, storage_port
from tools.status_cluster import command_env

SECRET_KEY = ("cluster", "hash_path_secret")


def make_data_dir(root: Path) -> DataDir:
    data = DataDir.at(root)
    data.make()
    aio_config.ensure_config(data, proxy_port=8080, identity_port=5000, users={})
    aio_rings.ensure_rings(data.rings, storage_port)
    for node in range(1, 5):
        (data.node(node) / f"d{node}").mkdir(parents=True)
    return data


def object_ring(data: DataDir) -> Ring:
    secret = aio_config.read_config(data)["cluster"]["hash_path_secret"].encode()
    return Ring.load(data.rings / "object.ring", secret)


def index_key(partition: int, n: int) -> bytes:
    return struct.pack(">IH16sQQ", partition, n, bytes([n]) * 16, n, 0)


def fill_device(
    device: Path, partitions: list[int], pendings: int, inline_quarantined: int
) -> None:
    env = lmdb.open(str(device / "objects.lmdb"), max_dbs=8)
    index, pending = env.open_db(b"index"), env.open_db(b"async_pending")
    quarantine = env.open_db(b"quarantine")
    with env.begin(write=True) as txn:
        for n, partition in enumerate(partitions):
            txn.put(index_key(partition, n), b"meta", db=index)
            txn.put(index_key(partition, n + 100), b"meta", db=index)  # two names, one partition
        for n in range(pendings):
            txn.put(f"1700000000.00000_{n:016x}-0".encode(), b"\x01{}", db=pending)
        for n in range(inline_quarantined):
            txn.put(index_key(0, n), b"body", db=quarantine)
    env.close()


def test_device_figures_no_cluster_and_a_failed_daemon_pass(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data")
    ring = object_ring(data)
    d1 = next(dev for dev in ring.devices if dev is not None and dev.device == "d1")
    primary = next(p for p in range(ring.partition_count) if d1 in ring.get_part_nodes(p))
    handoffs = [p for p in range(ring.partition_count) if d1 not in ring.get_part_nodes(p)][:2]
    device = data.node(1) / "d1"
    fill_device(device, [primary, *handoffs], pendings=3, inline_quarantined=1)
    (device / "quarantined" / "objects" / "ab").mkdir(parents=True)
    (device / "quarantined" / "objects" / "ab" / "1.data").write_bytes(b"x" * 5000)
    failed = recon.PassRecord("object-updater", str(data.node(2)), "h", 7, 1e9, 0.5, False, "boom")
    recon.write(recon.recon_path(data.node(2), "object-updater"), failed)

    report = status.collect(data, now=1e9 + 10)

    assert not report["ok"] and not report["cluster_running"]
    d1_status = report["nodes"]["1"]["devices"]["d1"]
    assert d1_status["async_pendings"] == 3
    assert d1_status["container_async_pendings"] is None  # no containers.lmdb
    assert d1_status["quarantined"] == 2  # one data file, one inline body
    assert (d1_status["partitions"], d1_status["handoff_partitions"]) == (3, 2)
    assert d1_status["used_bytes"] > 5000 and d1_status["fs_size_bytes"] > 0
    d2_status = report["nodes"]["2"]["devices"]["d2"]
    assert d2_status["async_pendings"] is None and d2_status["partitions"] is None
    problems = report["problems"]
    assert f"no cluster runs on {data.root} (no {data.cluster_file})" in problems
    assert not [p for p in problems if " is down " in p]  # "no cluster runs" says it all
    assert not report["nodes"]["1"]["servers"]["object-1"]["up"]
    assert "object-updater-2: last pass failed: boom" in problems
    last = report["nodes"]["2"]["daemons"]["object-updater-2"]["last_pass"]
    assert last["age_s"] == pytest.approx(9.5) and last["ok"] is False
    never = report["nodes"]["1"]["daemons"]["object-updater-1"]
    assert never["running"] is False and never["last_pass"] is None
    assert all(info["agree"] for info in report["rings"].values())
    json.dumps(report)  # the --json document
    text = status_render.render(report)
    assert "object-updater-2" in text and "FAILED" in text and "problem(s)" in text


def test_rings_that_differ_between_nodes_are_a_problem(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data")
    other = tmp_path / "other-rings"
    aio_rings.ensure_rings(other, lambda service, node: storage_port(service, node) + 1000)
    servers = {
        f"object-{node}": {
            "service": "object",
            "port": storage_port("object", node),
            "pid": 1,
            "command": (f"TORUS_CLUSTER_RING_DIR={other} " if node == 3 else "")
            + f"TORUS_OBJECT_DEVICES={data.node(node)} torus serve object --config x",
        }
        for node in range(1, 5)
    }
    data.cluster_file.write_text(json.dumps({"servers": servers, "daemons": {}}))

    report = status.collect(data)

    rings = report["rings"]["object"]
    assert not rings["agree"] and rings["md5"] is None
    assert rings["by_reader"]["1"] == rings["by_reader"]["2"] != rings["by_reader"]["3"]
    assert "object ring: md5 disagrees between readers (2 md5s)" in report["problems"]
    assert "NO" in status_render.render(report)


def test_a_missing_data_directory_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert status.run(tmp_path / "nothing", as_json=True) == status.EXIT_PROBLEM
    assert "no cluster in" in capsys.readouterr().err


def test_command_env_reads_the_leading_assignments_only() -> None:
    line = "TORUS_A=1 TORUS_B='two words' torus serve x --config FOO=bar"
    assert command_env(line) == {"TORUS_A": "1", "TORUS_B": "two words"}
