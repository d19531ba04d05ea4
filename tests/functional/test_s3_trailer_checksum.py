"""An S3 checksum sent as an aws-chunked trailer is stored with the object (late sysmeta in
the checksum footer, proxy/streaming.py LATE_SYSMETA) and returned with ChecksumMode.

botocore sends trailers only over HTTPS; its scheme test is made to say "https" here, so
the all-in-one's plain-HTTP proxy gets the same STREAMING-UNSIGNED-PAYLOAD-TRAILER body."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace
from urllib.parse import urlparse

import boto3
import botocore.httpchecksum
import pytest
from aio_cluster import AioCluster
from botocore.config import Config

# botocore's connection pool may drop a socket the server closed (an early error answers
# "Connection: close") without closing it; the ResourceWarning surfaces at a later garbage
# collection, in whichever test runs then.  The client's leak, not the server's: ignored here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.usefixtures("collect_client_sockets"),
]


@pytest.fixture
def s3_trailers(aio_cluster: AioCluster, monkeypatch: pytest.MonkeyPatch):
    seen: list[str] = []

    def as_https(url: str):  # type: ignore[no-untyped-def]
        parsed = urlparse(url)
        return SimpleNamespace(**{**parsed._asdict(), "scheme": "https"})

    monkeypatch.setattr(botocore.httpchecksum, "urlparse", as_https)
    client = boto3.client(
        "s3",
        endpoint_url=aio_cluster.endpoint,
        aws_access_key_id="test:tester",
        aws_secret_access_key=aio_cluster.users["test:tester"],
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )

    def note(request, **_):  # type: ignore[no-untyped-def]
        trailer = request.headers.get("x-amz-trailer", b"")
        seen.append(trailer.decode() if isinstance(trailer, bytes) else trailer)

    client.meta.events.register("before-send.s3.PutObject", note)
    client.seen = seen  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024], ids=["small", "streamed"])
@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME", "SHA256"])
def test_a_trailer_checksum_is_stored(s3_trailers, size: int, algorithm: str) -> None:
    s3 = s3_trailers
    bucket = "t-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, ChecksumAlgorithm=algorithm)
    assert s3.seen[-1] == f"x-amz-checksum-{algorithm.lower()}"  # it went as a trailer
    value = put[f"Checksum{algorithm}"]
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == value
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == value
    assert got["Body"].read() == body
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
