"""The S3 API end to end with s3cmd (pip's, 2.x) against `torus up`.

s3cmd reads a config file (tests/s3_clients.py writes one in the test's tmp dir): host_base
and host_bucket the endpoint, plain HTTP, SigV4, its default MD5 checks.  It switches to
multipart uploads above its 15 MB chunk, so files here stay below that until multipart is
served.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aio_cluster import AioCluster
from s3_clients import (
    Client,
    assert_same_trees,
    aws_cli,
    md5_hex,
    new_bucket,
    remove_bucket,
    s3cmd,
    tree_files,
    write_tree,
)

MB = 1000 * 1000


@pytest.fixture
def s3c(aio_cluster: AioCluster, tmp_path: Path) -> Client:
    return s3cmd(aio_cluster, tmp_path / "home")


@pytest.fixture
def bucket(aio_cluster: AioCluster, s3c: Client) -> Iterator[str]:
    name = new_bucket("s3cmd")
    assert s3c("mb", f"s3://{name}").strip() == f"Bucket 's3://{name}/' created"
    yield name
    remove_bucket(aio_cluster, name)


def listed(ls_output: str) -> dict[str, int]:
    """``s3cmd ls``'s objects (``DATE TIME SIZE s3://bucket/key``): URL to size."""
    objects = {}
    for line in ls_output.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4 and fields[2] != "DIR":
            objects[fields[3]] = int(fields[2])
    return objects


def test_put_get_ls_info_copy_move_del(
    aio_cluster: AioCluster, s3c: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2 * MB + 17))
    url = f"s3://{bucket}/dir/src.bin"
    # s3cmd checks the ETag of its PUT against the file's MD5 itself.
    s3c("put", src, url, "--mime-type", "application/x-test", "--add-header", "x-amz-meta-k:v")
    s3c("get", url, tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()

    assert f"s3://{bucket}" in s3c("ls").split()
    assert listed(s3c("ls", "--recursive", f"s3://{bucket}")) == {url: src.stat().st_size}
    assert s3c("ls", f"s3://{bucket}").split() == ["DIR", f"s3://{bucket}/dir/"]

    info = s3c("info", url)
    assert f"MD5 sum:   {md5_hex(src)}" in info
    assert "MIME type: application/x-test" in info
    aws = aws_cli(aio_cluster, tmp_path / "aws")  # to see the headers s3cmd does not print
    stat = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "dir/src.bin"))
    assert stat["Metadata"]["k"] == "v"  # beside s3cmd's own s3cmd-attrs

    # get --continue asks for the rest of a partial download (Range: bytes=N-).
    (tmp_path / "partial.bin").write_bytes(src.read_bytes()[:100_000])
    s3c("get", "--continue", url, tmp_path / "partial.bin")
    assert (tmp_path / "partial.bin").read_bytes() == src.read_bytes()
    assert f"GET /{bucket}/dir/src.bin 206 " in aio_cluster.log("proxy")
    # modify is a copy of the object onto itself with new headers (directive REPLACE).
    s3c("modify", "--add-header", "Cache-Control:no-cache", url)
    stat = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "dir/src.bin"))
    assert (stat["CacheControl"], stat["ETag"]) == ("no-cache", f'"{md5_hex(src)}"')

    # cp and mv are server-side copies (CopyObject); mv then deletes the source.
    s3c("cp", url, f"s3://{bucket}/copy ü+.bin")
    s3c("mv", f"s3://{bucket}/copy ü+.bin", f"s3://{bucket}/moved.bin")
    assert listed(s3c("ls", "--recursive", f"s3://{bucket}")) == {
        url: src.stat().st_size,
        f"s3://{bucket}/moved.bin": src.stat().st_size,
    }
    s3c("get", f"s3://{bucket}/moved.bin", tmp_path / "moved.bin")
    assert (tmp_path / "moved.bin").read_bytes() == src.read_bytes()

    s3c("del", url, f"s3://{bucket}/moved.bin")
    assert s3c("ls", "--recursive", f"s3://{bucket}") == ""
    assert s3c("rb", f"s3://{bucket}").strip() == f"Bucket 's3://{bucket}/' removed"


def test_sync_up_and_down_with_delete_removed(s3c: Client, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_tree(src, sizes=[(i * 6007) % 90_000 for i in range(40)], seed=2)
    remote = f"s3://{bucket}/tree/"

    out = s3c("sync", f"{src}/", remote)
    assert out.count("upload: ") == 40
    assert sorted(listed(s3c("ls", "--recursive", remote))) == [
        f"{remote}{name}" for name in tree_files(src)
    ]

    # s3cmd compares MD5s with the listing's ETags: a rewrite of the same size is seen.
    files = tree_files(src)
    for name in files[5:8]:
        size = (src / name).stat().st_size
        (src / name).write_bytes(os.urandom(size))
    for name in files[30:33]:
        (src / name).unlink()
    (src / "added").write_bytes(b"new")
    out = s3c("sync", "--delete-removed", f"{src}/", remote)
    assert out.count("upload: ") == 4
    assert out.count("delete: ") == 3
    assert sorted(listed(s3c("ls", "--recursive", remote))) == [
        f"{remote}{name}" for name in tree_files(src)
    ]

    down = tmp_path / "down"
    out = s3c("sync", remote, f"{down}/")
    assert out.count("download: ") == len(tree_files(src))
    assert_same_trees(src, down)
    assert s3c("sync", remote, f"{down}/").count("download: ") == 0


def test_put_of_20_mb_is_a_multipart_upload(
    aio_cluster: AioCluster, s3c: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MB))
    # Above multipart_chunk_size_mb (15): two parts; s3cmd checks each part's ETag.
    s3c("put", src, f"s3://{bucket}/big")
    log = aio_cluster.log("proxy")
    assert f"POST /{bucket}/big?uploads" in log
    assert f"PUT /{bucket}/big?partNumber=2&uploadId=" in log
    s3c("get", f"s3://{bucket}/big", tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()
