"""The S3 API end to end with the AWS CLI (v1, pip's awscli) against `torus up`.

The CLI is configured as a user would: keys and region in the environment, ``--endpoint-url``
on the command line, its default checksums and signing (tests/s3_clients.py).  Its high-level
``aws s3`` commands switch to multipart uploads at 8 MiB, so files here stay below that until
multipart is served; downloads above it are ranged GETs, which are served.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aio_cluster import AioCluster
from s3_clients import (
    Client,
    assert_same_trees,
    aws_cli,
    aws_config,
    md5_hex,
    new_bucket,
    remove_bucket,
    tree_files,
    write_tree,
)

MiB = 1024 * 1024


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def aws(aio_cluster: AioCluster, home: Path) -> Client:
    return aws_cli(aio_cluster, home)


@pytest.fixture
def bucket(aio_cluster: AioCluster, aws: Client) -> Iterator[str]:
    name = new_bucket("awscli")
    assert aws("s3", "mb", f"s3://{name}").strip() == f"make_bucket: {name}"
    yield name
    remove_bucket(aio_cluster, name)


def listed_keys(ls_output: str) -> list[str]:
    """The keys of ``aws s3 ls --recursive`` (``DATE TIME SIZE KEY``, the key may hold spaces)."""
    return [line.split(maxsplit=3)[3] for line in ls_output.splitlines() if line.strip()]


def upload_keys(aws: Client, tmp_path: Path, url: str, keys: list[str]) -> None:
    """Objects named ``keys`` (their own names as bodies), in one `aws s3 cp --recursive`."""
    tree = tmp_path / "keys"
    for key in keys:
        (tree / key).parent.mkdir(parents=True, exist_ok=True)
        (tree / key).write_text(key)
    aws("s3", "cp", "--recursive", tree, url, "--no-progress")
    shutil.rmtree(tree)


def head(aws: Client, bucket: str, key: str) -> dict:
    return json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", key))


# -- aws s3 ----------------------------------------------------------------------------------


def test_cp_up_down_stdin_stdout_copy_and_move(aws: Client, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * MiB))
    url = f"s3://{bucket}/dir/src.bin"
    aws(
        "s3", "cp", src, url, "--no-progress",
        "--metadata", "color=blue", "--content-type", "application/x-test",
    )  # fmt: skip
    stat = head(aws, bucket, "dir/src.bin")
    assert stat["ContentLength"] == 3 * MiB
    assert stat["ETag"] == f'"{md5_hex(src)}"'
    assert stat["Metadata"] == {"color": "blue"}
    assert stat["ContentType"] == "application/x-test"

    aws("s3", "cp", url, tmp_path / "down.bin", "--no-progress")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()

    piped = os.urandom(100_000)
    aws("s3", "cp", "-", f"s3://{bucket}/piped", stdin=piped)
    assert aws.run("s3", "cp", f"s3://{bucket}/piped", "-").stdout == piped

    # s3 -> s3 is a CopyObject: the metadata goes with the bytes; mv deletes the source.
    aws("s3", "cp", url, f"s3://{bucket}/copy/of src+ü.bin")
    copy = head(aws, bucket, "copy/of src+ü.bin")
    assert (copy["ETag"], copy["Metadata"]) == (stat["ETag"], {"color": "blue"})
    aws("s3", "mv", f"s3://{bucket}/piped", f"s3://{bucket}/moved")
    gone = aws.run("s3api", "head-object", "--bucket", bucket, "--key", "piped", check=False)
    assert gone.returncode != 0
    assert b"404" in gone.stderr
    assert aws.run("s3", "cp", f"s3://{bucket}/moved", "-").stdout == piped


def test_cp_down_of_an_object_above_the_multipart_threshold_uses_ranged_gets(
    aio_cluster: AioCluster, aws: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MiB))
    # One PutObject (s3api never splits); `aws s3 cp` then fetches it in 8 MiB ranges.
    aws("s3api", "put-object", "--bucket", bucket, "--key", "big", "--body", src)
    aws("s3", "cp", f"s3://{bucket}/big", tmp_path / "down.bin", "--no-progress")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()
    assert f"GET /{bucket}/big 206 " in aio_cluster.log("proxy")
    for path in (src, tmp_path / "down.bin"):
        path.unlink()  # pytest keeps the last runs' tmp dirs: 40 MiB each is not worth it


def test_sync_both_ways_with_changes_and_deletes(aws: Client, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_tree(src, sizes=[(i * 7919) % 120_000 for i in range(50)], seed=1)
    files = tree_files(src)
    assert len(files) == 50
    remote = f"s3://{bucket}/tree"

    out = aws("s3", "sync", src, remote, "--no-progress")
    assert out.count("upload: ") == 50
    assert listed_keys(aws("s3", "ls", "--recursive", f"{remote}/")) == [
        f"tree/{name}" for name in files
    ]
    assert aws("s3", "sync", src, remote, "--no-progress") == ""  # nothing changed

    # Changes: five files rewritten (a new size, so the CLI's size check sees them), four
    # deleted, three added.
    for name in files[10:15]:
        (src / name).write_bytes(os.urandom(1000 + len(name)))
    for name in files[20:24]:
        (src / name).unlink()
    (src / "new").mkdir()
    for i in range(3):
        (src / "new" / f"n{i}").write_bytes(os.urandom(500 * i))
    out = aws("s3", "sync", src, remote, "--delete", "--no-progress")
    assert out.count("upload: ") == 8
    assert out.count("delete: ") == 4
    assert listed_keys(aws("s3", "ls", "--recursive", f"{remote}/")) == [
        f"tree/{name}" for name in tree_files(src)
    ]

    down = tmp_path / "down"
    out = aws("s3", "sync", remote, down, "--no-progress")
    assert out.count("download: ") == 49
    assert_same_trees(src, down)

    # And back: a key removed and one added on the S3 side reach the local copy.
    aws("s3", "rm", f"{remote}/{files[0]}")
    aws("s3", "cp", "-", f"{remote}/new/from-s3", stdin=b"made remotely")
    out = aws("s3", "sync", remote, down, "--delete", "--no-progress")
    assert out.count("download: ") == 1
    assert out.count("delete: ") == 1
    assert not (down / files[0]).exists()
    assert (down / "new" / "from-s3").read_bytes() == b"made remotely"


def test_ls_buckets_prefixes_and_recursive_pages(aws: Client, bucket: str, tmp_path: Path) -> None:
    upload_keys(aws, tmp_path, f"s3://{bucket}", ["a/1", "a/2", "b/c/3", "top"])
    assert bucket in [line.split()[-1] for line in aws("s3", "ls").splitlines()]
    top = aws("s3", "ls", f"s3://{bucket}").splitlines()
    assert [line.split() for line in top if "PRE" in line] == [["PRE", "a/"], ["PRE", "b/"]]
    assert [line.split()[-1] for line in top if "PRE" not in line] == ["top"]
    assert [line.split()[-1] for line in aws("s3", "ls", f"s3://{bucket}/a/").splitlines()] == [
        "1",
        "2",
    ]
    assert aws("s3", "ls", f"s3://{bucket}/b/").split() == ["PRE", "c/"]
    # --page-size 2: the CLI follows ListObjectsV2's continuation tokens.
    everything = aws("s3", "ls", "--recursive", "--page-size", "2", f"s3://{bucket}")
    assert listed_keys(everything) == ["a/1", "a/2", "b/c/3", "top"]


def test_rm_recursive_then_rb(aio_cluster: AioCluster, aws: Client, tmp_path: Path) -> None:
    name = new_bucket("awscli-rm")
    aws("s3", "mb", f"s3://{name}")
    try:
        upload_keys(aws, tmp_path, f"s3://{name}", ["keep/1", "gone/1", "gone/2", "gone/deeper/3"])
        out = aws("s3", "rm", "--recursive", f"s3://{name}/gone/")
        assert out.count("delete: ") == 3
        assert listed_keys(aws("s3", "ls", "--recursive", f"s3://{name}")) == ["keep/1"]
        failed = aws.run("s3", "rb", f"s3://{name}", check=False)
        assert failed.returncode != 0
        assert b"BucketNotEmpty" in failed.stderr
        aws("s3", "rm", "--recursive", f"s3://{name}")
        assert aws("s3", "rb", f"s3://{name}").strip() == f"remove_bucket: {name}"
        assert name not in aws("s3", "ls")
    finally:
        remove_bucket(aio_cluster, name)


# -- bugs the CLI found (fixed: Content-Encoding bodies, %XX in copy sources) ---------------


def test_cp_with_content_encoding_stores_the_bytes_as_sent(
    aws: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "page.html.gz"
    src.write_bytes(gzip.compress(b"<p>compressible</p>" * 1000))
    url = f"s3://{bucket}/page.html"
    aws("s3", "cp", src, url, "--content-encoding", "gzip", "--no-progress")
    stat = head(aws, bucket, "page.html")
    assert (stat["ContentEncoding"], stat["ContentLength"]) == ("gzip", src.stat().st_size)
    aws("s3", "cp", url, tmp_path / "down", "--no-progress")
    assert (tmp_path / "down").read_bytes() == src.read_bytes()


def test_copy_of_a_key_holding_a_percent_escape(aws: Client, bucket: str) -> None:
    aws("s3", "cp", "-", f"s3://{bucket}/100%41 sure", stdin=b"literal percent")
    aws("s3", "cp", f"s3://{bucket}/100%41 sure", f"s3://{bucket}/copy")
    assert aws.run("s3", "cp", f"s3://{bucket}/copy", "-").stdout == b"literal percent"


# -- aws s3api -------------------------------------------------------------------------------


def test_s3api_put_get_head_copy_list_and_delete_objects(
    aws: Client, bucket: str, tmp_path: Path
) -> None:
    body = os.urandom(300_000)
    src = tmp_path / "body"
    src.write_bytes(body)
    md5 = hashlib.md5(body)
    put = json.loads(
        aws(
            "s3api", "put-object", "--bucket", bucket, "--key", "dir/obj", "--body", src,
            "--metadata", "k=v", "--content-md5", base64.b64encode(md5.digest()).decode(),
        )
    )  # fmt: skip
    assert put["ETag"] == f'"{md5.hexdigest()}"'

    got = json.loads(
        aws("s3api", "get-object", "--bucket", bucket, "--key", "dir/obj", tmp_path / "out")
    )
    assert (tmp_path / "out").read_bytes() == body
    assert got["Metadata"] == {"k": "v"}
    ranged = json.loads(
        aws(
            "s3api", "get-object", "--bucket", bucket, "--key", "dir/obj",
            "--range", "bytes=10-19", tmp_path / "range",
        )
    )  # fmt: skip
    assert ranged["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert (tmp_path / "range").read_bytes() == body[10:20]
    assert head(aws, bucket, "dir/obj")["ContentLength"] == len(body)

    copied = json.loads(
        aws(
            "s3api", "copy-object", "--bucket", bucket, "--key", "dir/copy",
            "--copy-source", f"{bucket}/dir/obj",
            "--metadata-directive", "REPLACE", "--metadata", "k=w",
        )
    )  # fmt: skip
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert head(aws, bucket, "dir/copy")["Metadata"] == {"k": "w"}

    upload_keys(aws, tmp_path, f"s3://{bucket}", ["dir/sub/a", "dir/sub/b", "other"])
    listing = json.loads(
        aws(
            "s3api", "list-objects-v2", "--bucket", bucket,
            "--prefix", "dir/", "--delimiter", "/",
        )
    )  # fmt: skip
    assert [item["Key"] for item in listing["Contents"]] == ["dir/copy", "dir/obj"]
    assert listing["CommonPrefixes"] == [{"Prefix": "dir/sub/"}]
    # --page-size 2: the CLI pages through continuation tokens and joins the pages.
    paged = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--page-size", "2"))
    keys = [item["Key"] for item in paged["Contents"]]
    assert keys == ["dir/copy", "dir/obj", "dir/sub/a", "dir/sub/b", "other"]

    deleted = json.loads(
        aws(
            "s3api", "delete-objects", "--bucket", bucket,
            "--delete", json.dumps({"Objects": [{"Key": key} for key in [*keys, "never-was"]]}),
        )
    )  # fmt: skip
    assert sorted(item["Key"] for item in deleted["Deleted"]) == sorted([*keys, "never-was"])
    assert "Errors" not in deleted
    empty = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--no-paginate"))
    assert empty["KeyCount"] == 0


def test_presigned_get_with_the_clis_sigv4_setting(aws: Client, home: Path, bucket: str) -> None:
    # CLI v1 presigns with SigV2 unless its config asks for s3v4 (both are served; this is
    # the V4 one; tests/functional/test_s3_boto3.py covers boto3's default V2 presign).
    aws_config(home, "[default]\ns3 =\n    signature_version = s3v4\n")
    aws("s3", "cp", "-", f"s3://{bucket}/shared", stdin=b"presigned")
    url = aws("s3", "presign", f"s3://{bucket}/shared", "--expires-in", "60").strip()
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"presigned"


# -- multipart -------------------------------------------------------------------------------


def test_cp_of_a_20_mib_file_is_a_multipart_upload(
    aws: Client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MiB))
    aws("s3", "cp", src, f"s3://{bucket}/big", "--no-progress")
    # 8 MiB parts (the CLI's multipart_chunksize): 8 + 8 + 4 MiB; S3's multipart ETag is the
    # MD5 of the parts' MD5s and their count.
    chunks = [src.read_bytes()[i : i + 8 * MiB] for i in range(0, 20 * MiB, 8 * MiB)]
    digests = b"".join(hashlib.md5(chunk).digest() for chunk in chunks)
    assert head(aws, bucket, "big")["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    aws("s3", "cp", f"s3://{bucket}/big", tmp_path / "down.bin", "--no-progress")
    assert (tmp_path / "down.bin").read_bytes() == src.read_bytes()
