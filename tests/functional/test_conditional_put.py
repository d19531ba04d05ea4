"""Conditional PUTs (If-None-Match, If-Match) against `torus up`: S3's rules through boto3, the
Swift API's through raw HTTP, and their atomicity per key: the object servers lease the key
from the check to the commit (objectd/write_leases.py), so a second conditional write meanwhile
is a 409 (S3's ConditionalRequestConflict) and racing writers never both succeed."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from urllib.parse import urlsplit

import pytest
from aio_cluster import AioCluster
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from s3_clients import s3_client, status_and_code
from swiftclient import client as swift_client

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.usefixtures("collect_client_sockets"),
]


def _error(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    return status_and_code(exc_info.value)


@pytest.fixture
def swift_auth(aio_cluster: AioCluster) -> tuple[str, str]:
    conn = swift_client.Connection(
        aio_cluster.auth_url, "test:tester", aio_cluster.users["test:tester"]
    )
    return conn.get_auth()


def test_if_match_writes_only_over_that_etag(s3, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=first)["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch=first)  # stale now
    assert _error(exc) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="k", Body=b"four", IfMatch=second.strip('"'))  # unquoted
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"four"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=first)
    assert _error(exc) == (404, "NoSuchKey")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="absent")


def test_a_large_conditional_put_and_if_none_match(s3, bucket: str) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: the streamed path
    etag = s3.put_object(Bucket=bucket, Key="big", Body=body, IfNoneMatch="*")["ETag"]
    assert etag.strip('"') == hashlib.md5(body).hexdigest()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="big", Body=b"small", IfNoneMatch="*")
    assert _error(exc) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="big", Body=body[::-1], IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body[::-1]


def test_if_match_on_a_multipart_object_uses_its_s3_etag(s3, bucket: str) -> None:
    part = os.urandom(5 << 20)
    s3.upload_fileobj(
        io.BytesIO(part + b"tail"),
        bucket,
        "mpu",
        Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20),
    )
    etag = s3.head_object(Bucket=bucket, Key="mpu")["ETag"]
    assert etag.endswith('-2"')
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="mpu", Body=b"x", IfMatch=hashlib.md5(part).hexdigest())
    assert _error(exc) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="mpu", Body=b"replaced", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="mpu")["Body"].read() == b"replaced"


def _open_put(storage_url: str, token: str, path: str, length: int, **headers: str):
    """A Swift API PUT sent up to its body, once the proxy said ``100 Continue`` (so every
    replica has passed its checks, and holds the key's lease for a conditional PUT)."""
    url = urlsplit(storage_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    lines = [
        f"PUT {url.path}/{path} HTTP/1.1",
        f"Host: {url.netloc}",
        f"X-Auth-Token: {token}",
        f"Content-Length: {length}",
        "Expect: 100-continue",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    interim = sock.recv(4096)
    assert interim.startswith(b"HTTP/1.1 100"), interim
    return sock


def _finish_put(sock: socket.socket, body: bytes) -> bytes:
    sock.sendall(body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    sock.close()
    return answer.split(b"\r\n", 1)[0]


def test_a_conditional_write_in_progress_refuses_another(
    s3, bucket: str, swift_auth: tuple[str, str]
) -> None:
    storage_url, token = swift_auth
    body = b"w" * (1 << 20)
    held = _open_put(storage_url, token, f"{bucket}/raced", len(body), **{"If-None-Match": "*"})
    try:
        with pytest.raises(ClientError) as exc:  # S3, the same key, meanwhile
            s3.put_object(Bucket=bucket, Key="raced", Body=b"other", IfNoneMatch="*")
        assert _error(exc) == (409, "ConditionalRequestConflict")
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key="raced", Body=b"other", IfMatch='"abc"')
        assert _error(exc) == (409, "ConditionalRequestConflict")
        with pytest.raises(swift_client.ClientException) as swift_exc:  # the Swift API's 409
            swift_client.put_object(
                storage_url, token, bucket, "raced", b"other", headers={"If-None-Match": "*"}
            )
        assert swift_exc.value.http_status == 409
        # An unconditional write is not refused (the newest wins, as ever): another key here.
        s3.put_object(Bucket=bucket, Key="free", Body=b"free", IfNoneMatch="*")
    finally:
        status_line = _finish_put(held, body)
    assert b" 201 " in status_line
    assert s3.get_object(Bucket=bucket, Key="raced")["Body"].read() == body
    with pytest.raises(ClientError) as exc:  # the lease is gone, the object is there
        s3.put_object(Bucket=bucket, Key="raced", Body=b"late", IfNoneMatch="*")
    assert _error(exc) == (412, "PreconditionFailed")


def _race(cluster: AioCluster, bucket: str, key: str, bodies: list[bytes]) -> list[object]:
    """Each body put by a thread of its own, all let go at once, with If-None-Match: *; each
    one's outcome ("ok", or its status and code)."""
    outcomes: list[object] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def write(i: int) -> None:
        client = s3_client(cluster)
        start.wait()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=bodies[i], IfNoneMatch="*")
            outcomes[i] = "ok"
        except ClientError as exc:
            outcomes[i] = status_and_code(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_racing_creators_exactly_one_wins(aio_cluster: AioCluster, bucket: str) -> None:
    """Eight writers put different bodies with If-None-Match: * at once, again and again: each
    round exactly one succeeds, every other gets 412 or 409, and the object is the winner's."""
    for round_number in range(5):
        key = f"race-{round_number}"
        bodies = [bytes([i]) * (96 << 10) for i in range(8)]  # past 64 KiB: the streamed path
        outcomes = _race(aio_cluster, bucket, key, bodies)
        winners = [i for i, outcome in enumerate(outcomes) if outcome == "ok"]
        assert len(winners) == 1, outcomes
        losers = {o for o in outcomes if o != "ok"}
        assert losers <= {(412, "PreconditionFailed"), (409, "ConditionalRequestConflict")}
        got = s3_client(aio_cluster).get_object(Bucket=bucket, Key=key)["Body"].read()
        assert got == bodies[winners[0]]


def test_copy_object_conditions_apply_to_the_destination(s3, bucket: str) -> None:
    source = s3.put_object(Bucket=bucket, Key="src", Body=b"source")["ETag"]
    target = s3.put_object(Bucket=bucket, Key="dst", Body=b"target")["ETag"]
    copy_source = {"Bucket": bucket, "Key": "src"}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=copy_source, IfNoneMatch="*")
    assert _error(exc) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:  # the source's ETag is not the destination's
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=copy_source, IfMatch=source)
    assert _error(exc) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"target"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=copy_source, IfMatch=target)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source"
    s3.copy_object(Bucket=bucket, Key="new", CopySource=copy_source, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"source"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="absent", CopySource=copy_source, IfMatch=source)
    assert _error(exc) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as exc:  # and the source's own conditions still hold
        s3.copy_object(
            Bucket=bucket, Key="new2", CopySource=copy_source, CopySourceIfMatch='"0000"'
        )
    assert _error(exc) == (412, "PreconditionFailed")


def test_complete_multipart_upload_conditions(s3, bucket: str) -> None:
    existing = s3.put_object(Bucket=bucket, Key="k", Body=b"there")["ETag"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"p")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload=parts, IfNoneMatch="*"
        )
    assert _error(exc) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload=parts, IfMatch='"00"'
        )
    assert _error(exc) == (412, "PreconditionFailed")
    # Refused, the upload is still there: completed now with the right ETag.
    assert len(s3.list_parts(Bucket=bucket, Key="k", UploadId=upload)["Parts"]) == 1
    s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload, MultipartUpload=parts, IfMatch=existing
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"p"
