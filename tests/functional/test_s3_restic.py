"""restic (Debian's 0.14) backing up to an S3 repository on `torus up`.

restic talks to S3 through minio-go and asks it for multipart only above 200 MiB per object;
its packs are ~16 MiB, so a repository needs no multipart at all.  Every pack is written with
Content-MD5 and read back in ranges, so `check --read-data` and a restore exercise PUT,
ranged GET, listings (v2, url-encoded) and DELETE of a real workload.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from aio_cluster import AioCluster
from s3_clients import (
    Client,
    assert_same_trees,
    new_bucket,
    remove_bucket,
    restic,
    tree_files,
    write_tree,
)

MiB = 1024 * 1024
TREE_BYTES = 200 * MiB
SEED = 6


def tree_sizes(seed: int) -> list[int]:
    """A few hundred files adding up to TREE_BYTES: many small, some medium, ten large."""
    rng = random.Random(seed)
    sizes = [rng.randint(0, 64 * 1024) for _ in range(240)]
    sizes += [rng.randint(64 * 1024, 2 * MiB) for _ in range(50)]
    large, remainder = divmod(TREE_BYTES - sum(sizes), 10)
    return [*sizes, large + remainder, *[large] * 9]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The test's directory, emptied at the end: it holds ~600 MiB of trees."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def bucket(aio_cluster: AioCluster) -> Iterator[str]:
    name = new_bucket("restic")  # `restic init` creates it
    yield name
    remove_bucket(aio_cluster, name)


def restore_and_compare(repo: Client, workdir: Path, target: str, expected: Path) -> None:
    repo("restore", "latest", "--target", workdir / target)
    # A relative path backed up from workdir is restored under its own name.
    assert_same_trees(expected, workdir / target / expected.name)


@pytest.mark.slow
def test_backup_check_restore_forget_prune(
    aio_cluster: AioCluster, workdir: Path, bucket: str
) -> None:
    repo = restic(aio_cluster, workdir / "home", bucket)
    repo.cwd = workdir
    src = workdir / "src"
    sizes = tree_sizes(SEED)
    write_tree(src, sizes, seed=SEED)
    assert sum(sizes) == TREE_BYTES
    assert len(tree_files(src)) == 300

    assert "created restic repository" in repo("init")
    repo("backup", "src")
    assert "no errors were found" in repo("check", "--read-data")
    restore_and_compare(repo, workdir, "restored", src)

    # A second backup of a changed tree: files gone, rewritten and added.
    rng = random.Random(SEED + 1)
    files = tree_files(src)
    for name in files[:20]:
        (src / name).unlink()
    for name in files[100:103]:
        (src / name).write_bytes(rng.randbytes(3 * MiB))
    (src / "added.bin").write_bytes(rng.randbytes(5 * MiB))
    repo("backup", "src")
    assert len(json.loads(repo("snapshots", "--json"))) == 2

    # The first snapshot's packs are dropped or repacked: DELETEs and new PUTs.
    pruned = repo("forget", "--keep-last", "1", "--prune")
    assert "remove 1 snapshots" in pruned
    assert len(json.loads(repo("snapshots", "--json"))) == 1
    assert "no errors were found" in repo("check", "--read-data")
    restore_and_compare(repo, workdir, "restored-after-prune", src)

    # Nothing in the repository needed a multipart upload.
    requests = [line for line in aio_cluster.log("proxy").splitlines() if f"/{bucket}/" in line]
    assert len(requests) > 50
    assert [line for line in requests if "uploads" in line] == []
