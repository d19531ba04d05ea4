"""The S3 API end to end with rclone (Debian's 1.60) against `torus up`.

The remote ``torus:`` is defined by environment only (RCLONE_CONFIG_TORUS_TYPE=s3, provider
Other, path-style; tests/s3_clients.py).  rclone keeps a file's modification time in
``x-amz-meta-mtime`` and takes a single-part object's MD5 from its ETag, so `rclone check`
and a sync's change detection depend on the ETag being the MD5.  Uploads above 200 MiB (its
upload_cutoff) are multipart; nothing here is that large until multipart is served.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aio_cluster import AioCluster
from s3_clients import (
    RCLONE_REMOTE,
    Client,
    assert_same_trees,
    md5_hex,
    new_bucket,
    rclone,
    remove_bucket,
    tree_files,
    write_tree,
)

MiB = 1024 * 1024


@pytest.fixture
def rc(aio_cluster: AioCluster, tmp_path: Path) -> Client:
    return rclone(aio_cluster, tmp_path / "home")


@pytest.fixture
def bucket(aio_cluster: AioCluster, rc: Client) -> Iterator[str]:
    name = new_bucket("rclone")
    rc("mkdir", f"{RCLONE_REMOTE}:{name}")
    yield name
    remove_bucket(aio_cluster, name)


def logged(rc: Client, *args: str | os.PathLike[str]) -> str:
    """rclone's log (stderr, where -v writes what it did) of a successful command."""
    return rc.run(*args, "-v").stderr.decode()


def lsjson(rc: Client, remote: str) -> dict[str, dict]:
    """``rclone lsjson -R --hash``: path to entry, files only."""
    entries = json.loads(rc("lsjson", "-R", "--hash", "--files-only", remote))
    return {entry["Path"]: entry for entry in entries}


def test_sync_check_copyto_ls_lsjson_delete_purge(
    aio_cluster: AioCluster, rc: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, sizes=[(i * 5003) % 150_000 for i in range(40)], seed=3)
    files = tree_files(src)
    remote = f"{RCLONE_REMOTE}:{bucket}/tree"

    assert logged(rc, "sync", src, remote).count(": Copied (new)") == 40
    checked = logged(rc, "check", src, remote)
    assert "0 differences found" in checked
    assert "40 matching files" in checked

    entries = lsjson(rc, remote)
    assert sorted(entries) == files
    for name in files:
        local = src / name
        assert entries[name]["Size"] == local.stat().st_size
        assert entries[name]["Hashes"]["md5"] == md5_hex(local)  # the ETag
        mtime = datetime.datetime.fromisoformat(entries[name]["ModTime"])
        assert mtime.timestamp() == pytest.approx(local.stat().st_mtime, abs=2e-6)

    # A same-size rewrite: only the MD5 tells; check finds it, sync sends it.
    changed = src / files[7]
    changed.write_bytes(os.urandom(changed.stat().st_size))
    failed = rc.run("check", src, remote, check=False)
    assert failed.returncode != 0
    assert b"1 differences found" in failed.stderr
    assert "Copied (replaced existing)" in logged(rc, "sync", src, remote)
    assert "0 differences found" in logged(rc, "check", src, remote)

    down = tmp_path / "down"
    rc("copy", remote, down)
    assert_same_trees(src, down)

    # copyto within the bucket is CopyObject (the bytes never leave the cluster).
    copied = logged(rc, "copyto", f"{remote}/{files[3]}", f"{RCLONE_REMOTE}:{bucket}/copies/c ü+")
    assert "Copied (server-side copy)" in copied
    sizes = {
        line.split(maxsplit=1)[1]: int(line.split(maxsplit=1)[0])
        for line in rc("ls", f"{RCLONE_REMOTE}:{bucket}").splitlines()
    }
    assert sizes == {
        **{f"tree/{name}": (src / name).stat().st_size for name in files},
        "copies/c ü+": (src / files[3]).stat().st_size,
    }

    assert "Deleted" in logged(rc, "delete", f"{RCLONE_REMOTE}:{bucket}/copies")
    assert sorted(lsjson(rc, f"{RCLONE_REMOTE}:{bucket}")) == [f"tree/{name}" for name in files]
    assert f'Bucket "{bucket}" deleted' in logged(rc, "purge", f"{RCLONE_REMOTE}:{bucket}")
    assert bucket not in rc("lsd", f"{RCLONE_REMOTE}:")


def test_a_modification_time_change_is_a_copy_of_the_object_onto_itself(
    rc: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a b+ü.txt").write_bytes(b"same bytes")
    remote = f"{RCLONE_REMOTE}:{bucket}/m"
    rc("sync", src, remote)
    old = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC).timestamp()
    os.utime(src / "a b+ü.txt", (old, old))
    # Same size and MD5, another mtime: rclone rewrites x-amz-meta-mtime with a CopyObject
    # of the key onto itself (metadata directive REPLACE), not an upload.
    assert "Updated modification time in destination" in logged(rc, "sync", src, remote)
    entry = lsjson(rc, remote)["a b+ü.txt"]
    assert datetime.datetime.fromisoformat(entry["ModTime"]).timestamp() == old
    assert entry["Hashes"]["md5"] == hashlib.md5(b"same bytes").hexdigest()
    assert rc("cat", f"{remote}/a b+ü.txt") == "same bytes"


def test_server_side_copies_of_a_key_holding_a_percent_escape(
    rc: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pct%20x").write_bytes(b"literal percent")
    remote = f"{RCLONE_REMOTE}:{bucket}/p"
    rc("sync", src, remote)
    # An mtime-only change is a copy of the key onto itself; copyto a copy to another key.
    os.utime(src / "pct%20x", (1_000_000_000, 1_000_000_000))
    assert "Updated modification time in destination" in logged(rc, "sync", src, remote)
    rc("copyto", f"{remote}/pct%20x", f"{remote}/copy")
    assert rc("cat", f"{remote}/copy") == "literal percent"


def test_an_upload_above_the_cutoff_is_multipart(
    aio_cluster: AioCluster, rc: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * MiB))
    remote = f"{RCLONE_REMOTE}:{bucket}/big.bin"
    # rclone's smallest cutoff and chunk (5 MiB) so a 12 MiB file is three parts.
    small_parts = {"RCLONE_S3_UPLOAD_CUTOFF": "5M", "RCLONE_S3_CHUNK_SIZE": "5M"}
    rc("copyto", src, remote, extra_env=small_parts)
    assert f"POST /{bucket}/big.bin?uploads" in aio_cluster.log("proxy")  # "?uploads=" too
    # A multipart ETag is not an MD5: rclone keeps the MD5 in x-amz-meta-md5chksum instead.
    assert lsjson(rc, f"{RCLONE_REMOTE}:{bucket}")["big.bin"]["Hashes"]["md5"] == md5_hex(src)
    rc("copyto", remote, tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()
