"""S3 multipart uploads end to end with boto3 against `torus up` (tests/aio_cluster.py).

Parts are 5 MiB (S3's minimum for every part but the last), so each test moves tens of MiB.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator

import boto3
import pytest
from aio_cluster import AioCluster
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from swiftclient import client as swift_client

# botocore's connection pool may drop a socket the server closed (an early error answers
# "Connection: close") without closing it; the ResourceWarning surfaces at a later garbage
# collection, in whichever test runs then.  The client's leak, not the server's: ignored here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.usefixtures("collect_client_sockets"),
]

MIB = 1 << 20
PART = 5 * MIB


@pytest.fixture
def s3(aio_cluster: AioCluster):
    return boto3.client(
        "s3",
        endpoint_url=aio_cluster.endpoint,
        aws_access_key_id="test:tester",
        aws_secret_access_key=aio_cluster.users["test:tester"],
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def bucket(s3) -> Iterator[str]:
    name = "mpu-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    yield name
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def s3_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def test_upload_file_in_parts_reads_back_whole_and_in_ranges(s3, bucket: str, tmp_path) -> None:
    data = os.urandom(2 * PART + 12345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
    s3.upload_file(str(source), bucket, "big", Config=config)  # boto3's own parallel parts
    expected_etag = s3_etag([data[:PART], data[PART : 2 * PART], data[2 * PART :]])
    head = s3.head_object(Bucket=bucket, Key="big")
    assert (head["ContentLength"], head["ETag"]) == (len(data), expected_etag)
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data
    for first, last in [(0, 9), (PART - 5, PART + 4), (2 * PART - 1, len(data) - 1)]:
        got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={first}-{last}")
        assert got["Body"].read() == data[first : last + 1]
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("big", len(data), expected_etag)]
    # Conditionals compare with the object's ETag, not the list's.
    assert s3.get_object(Bucket=bucket, Key="big", IfMatch=expected_etag)["ContentLength"] == len(
        data
    )
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="big", IfNoneMatch=expected_etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    download = tmp_path / "back.bin"
    s3.download_file(bucket, "big", str(download), Config=config)
    assert download.read_bytes() == data


def test_create_parts_list_complete_with_metadata(s3, bucket: str) -> None:
    one, two = os.urandom(PART), b"tail bytes"
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="m", ContentType="text/x-mpu", Metadata={"k": "v"}
    )["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    e1 = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=1, Body=one)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=2, Body=two)["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="m", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, e1, PART),
        (2, e2, len(two)),
    ]
    page = s3.list_parts(Bucket=bucket, Key="m", UploadId=upload, MaxParts=1)
    assert page["IsTruncated"] and [p["PartNumber"] for p in page["Parts"]] == [1]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    assert done["ETag"] == s3_etag([one, two])
    got = s3.get_object(Bucket=bucket, Key="m")
    assert got["Body"].read() == one + two
    assert (got["ContentType"], got["Metadata"]) == ("text/x-mpu", {"k": "v"})
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="m", UploadId=upload)
    assert code(exc) == "NoSuchUpload"


def test_complete_refuses_bad_part_lists(s3, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="bad", UploadId=upload, PartNumber=1, Body=b"x")
    last = s3.upload_part(Bucket=bucket, Key="bad", UploadId=upload, PartNumber=2, Body=b"y")
    parts = [{"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]
    cases = [
        (list(reversed(parts)), "InvalidPartOrder"),
        ([{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}], "InvalidPart"),
        ([{"PartNumber": 3, "ETag": last["ETag"]}], "InvalidPart"),
        (parts, "EntityTooSmall"),  # part 1 is under 5 MiB and not the last
    ]
    for given, expected in cases:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="bad", UploadId=upload, MultipartUpload={"Parts": given}
            )
        assert code(exc) == expected, given
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="bad")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # One small part alone is a whole object.
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="bad", UploadId=upload, MultipartUpload={"Parts": parts[1:]}
    )
    assert s3.get_object(Bucket=bucket, Key="bad")["Body"].read() == b"y"
    assert done["ETag"] == s3_etag([b"y"])


def test_abort_and_unknown_uploads(s3, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload, PartNumber=1, Body=b"abc")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload)
    for call in (
        lambda: s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload),
        lambda: s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload, PartNumber=1, Body=b""),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId="f" * 32),
        lambda: s3.list_parts(Bucket=bucket, Key="gone", UploadId="not-an-id"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "NoSuchUpload"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_upload_part_copy_with_ranges_and_copy_of_a_multipart_object(s3, bucket: str) -> None:
    data = os.urandom(PART + 1000)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes=0-{PART - 1}",
    )["CopyPartResult"]["ETag"]
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes={PART}-{PART + 999}",
    )["CopyPartResult"]["ETag"]
    assert first == f'"{hashlib.md5(data[:PART]).hexdigest()}"'
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data
    s3.copy_object(Bucket=bucket, Key="flat", CopySource={"Bucket": bucket, "Key": "dst"})
    flat = s3.get_object(Bucket=bucket, Key="flat")
    assert flat["Body"].read() == data
    assert flat["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # a plain object now
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="r",
            UploadId=s3.create_multipart_upload(Bucket=bucket, Key="r")["UploadId"],
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=f"bytes={len(data)}-{len(data) + 5}",
        )
    assert code(exc) == "InvalidRange"


def test_parts_are_invisible_to_listings_and_removed_with_the_object(
    aio_cluster: AioCluster, s3, bucket: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="obj")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload, PartNumber=1, Body=b"1")[
        "ETag"
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="obj",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["obj"]
    assert not [b for b in s3.list_buckets()["Buckets"] if "+" in b["Name"]]
    conn = swift_client.Connection(
        authurl=aio_cluster.auth_url, user="test:tester", key=aio_cluster.users["test:tester"]
    )
    assert [o["name"] for o in conn.get_container(bucket)[1]] == ["obj"]  # Swift sees the object
    segments = bucket + "+segments"
    assert len(conn.get_container(segments)[1]) == 1  # its one part
    # Completing another upload over it replaces the old parts; deleting it removes them.
    again = s3.create_multipart_upload(Bucket=bucket, Key="obj")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="obj", UploadId=again, PartNumber=1, Body=b"2")["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="obj",
        UploadId=again,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert [o["name"].split("/")[1] for o in conn.get_container(segments)[1]] == [again]
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"2"
    s3.delete_object(Bucket=bucket, Key="obj")
    assert conn.get_container(segments)[1] == []


def test_part_number_reads_one_part(s3, bucket: str) -> None:
    one, two = os.urandom(PART), os.urandom(1000)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="p")["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key="p", UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, one), (2, two))
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="p",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    second = s3.get_object(Bucket=bucket, Key="p", PartNumber=2)
    assert second["Body"].read() == two
    assert second["PartsCount"] == 2
    assert second["ContentRange"] == f"bytes {PART}-{PART + 999}/{PART + 1000}"
    head = s3.head_object(Bucket=bucket, Key="p", PartNumber=1)
    assert (head["ContentLength"], head["PartsCount"]) == (PART, 2)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="p", PartNumber=3)
    assert code(exc) == "InvalidPartNumber"
    s3.put_object(Bucket=bucket, Key="plain", Body=b"one part")
    assert s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)["Body"].read() == b"one part"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="plain", PartNumber=2)
    assert code(exc) == "InvalidPartNumber"
