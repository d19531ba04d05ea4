"""S3 multipart uploads end to end with boto3 against `torus up` (tests/aio_cluster.py).

Parts are 5 MiB (S3's minimum for every part but the last), so each test moves tens of MiB.
"""

from __future__ import annotations

import base64
import hashlib
import os
from types import SimpleNamespace
from urllib.parse import urlparse

import boto3
import pytest
from aio_cluster import AioCluster
from boto3.s3.transfer import TransferConfig
from botocore import httpchecksum
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


# --- checksums (proxy/s3/multipart_checksums.py) ----------------------------------------------


def b64_checksum(algorithm: str, data: bytes) -> str:
    """botocore's own checksum of ``data`` (what a client computes), base64."""
    checksum = httpchecksum._CHECKSUM_CLS[algorithm.lower()]()
    checksum.update(data)
    return checksum.b64digest()


def composite(algorithm: str, parts: list[bytes]) -> str:
    """AWS's COMPOSITE checksum: the algorithm over the parts' raw digests, then -N."""
    digests = b"".join(base64.b64decode(b64_checksum(algorithm, p)) for p in parts)
    return f"{b64_checksum(algorithm, digests)}-{len(parts)}"


def checksummed_upload(s3, bucket: str, key: str, algorithm: str, parts: list[bytes], **create):
    """An upload created with ``algorithm``, its parts sent with their checksums (boto3
    computes them): (Create's answer, upload id, the Complete list with the checksums)."""
    made = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, **create)
    upload = made["UploadId"]
    listed = []
    for number, body in enumerate(parts, 1):
        done = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=algorithm,
        )
        assert done[f"Checksum{algorithm}"] == b64_checksum(algorithm, body)
        listed.append(
            {
                "PartNumber": number,
                "ETag": done["ETag"],
                f"Checksum{algorithm}": done[f"Checksum{algorithm}"],
            }
        )
    return made, upload, listed


def test_boto3_upload_file_defaults_give_a_composite_crc32(s3, bucket: str, tmp_path) -> None:
    """s3transfer's defaults: CRC32 named at Create (no type: COMPOSITE), each part's CRC32 in
    a header, each listed on Complete; the object's checksum is theirs, combined."""
    data = os.urandom(2 * PART + 777)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
    s3.upload_file(str(source), bucket, "big", Config=config)
    parts = [data[:PART], data[PART : 2 * PART], data[2 * PART :]]
    head = s3.head_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == composite("CRC32", parts)
    assert head["ChecksumType"] == "COMPOSITE"
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key="big")
    got = s3.get_object(Bucket=bucket, Key="big", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == composite("CRC32", parts)


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_composite_checksum_listed_completed_and_returned(s3, bucket: str, algorithm) -> None:
    parts = [os.urandom(PART), b"the last part"]
    made, upload, listed = checksummed_upload(s3, bucket, "c", algorithm, parts)
    assert (made["ChecksumAlgorithm"], made["ChecksumType"]) == (algorithm, "COMPOSITE")
    page = s3.list_parts(Bucket=bucket, Key="c", UploadId=upload)
    assert (page["ChecksumAlgorithm"], page["ChecksumType"]) == (algorithm, "COMPOSITE")
    assert [p[f"Checksum{algorithm}"] for p in page["Parts"]] == [
        b64_checksum(algorithm, p) for p in parts
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="c", UploadId=upload, MultipartUpload={"Parts": listed}
    )
    expected = composite(algorithm, parts)
    assert (done[f"Checksum{algorithm}"], done["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert (head[f"Checksum{algorithm}"], head["ChecksumType"]) == (expected, "COMPOSITE")


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_is_the_whole_objects_crc(s3, bucket: str, algorithm) -> None:
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    create = {} if algorithm == "CRC64NVME" else {"ChecksumType": "FULL_OBJECT"}
    made, upload, listed = checksummed_upload(s3, bucket, "f", algorithm, parts, **create)
    assert (made["ChecksumAlgorithm"], made["ChecksumType"]) == (algorithm, "FULL_OBJECT")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="f", UploadId=upload, MultipartUpload={"Parts": listed}
    )
    whole = b64_checksum(algorithm, b"".join(parts))
    assert (done[f"Checksum{algorithm}"], done["ChecksumType"]) == (whole, "FULL_OBJECT")
    # botocore checks a full-object checksum against the body it reads.
    got = s3.get_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)
    assert (got[f"Checksum{algorithm}"], got["ChecksumType"]) == (whole, "FULL_OBJECT")


def test_checksum_refusals_as_aws_answers_them(aio_cluster: AioCluster, s3, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(
            Bucket=bucket, Key="r", ChecksumAlgorithm="SHA1", ChecksumType="FULL_OBJECT"
        )
    assert message(exc) == (
        "InvalidRequest",
        "The FULL_OBJECT checksum type cannot be used with the sha1 checksum algorithm.",
    )
    parts = [b"only part"]
    _, upload, listed = checksummed_upload(s3, bucket, "r", "CRC32C", parts)
    # A part without the upload's algorithm, or with another one.
    bare = boto3.client(
        "s3",
        endpoint_url=aio_cluster.endpoint,
        aws_access_key_id="test:tester",
        aws_secret_access_key=aio_cluster.users["test:tester"],
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, request_checksum_calculation="when_required"),
    )
    for client, extra, actual in ((bare, {}, "null"), (s3, {"ChecksumAlgorithm": "SHA1"}, "sha1")):
        with pytest.raises(ClientError) as exc:
            client.upload_part(
                Bucket=bucket, Key="r", UploadId=upload, PartNumber=2, Body=b"x", **extra
            )
        assert message(exc) == (
            "InvalidRequest",
            "Checksum Type mismatch occurred, expected checksum Type: crc32c, "
            f"actual checksum Type: {actual}",
        )
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket, Key="r", UploadId=upload, PartNumber=2, CopySource=f"{bucket}/nothing"
        )
    assert code(exc) == "NotImplemented"
    etag = listed[0]["ETag"]
    wrong = b64_checksum("CRC32C", b"other bytes")
    cases = [
        (
            {"PartNumber": 1, "ETag": etag},
            "InvalidRequest",
            "The upload was created using a crc32c checksum. The complete request must include "
            "the checksum for each part. It was missing for part 1 in the request.",
        ),
        (
            {"PartNumber": 1, "ETag": etag, "ChecksumCRC32C": "4waSgx=="},
            "InvalidArgument",
            "Invalid Base64 or multiple checksums present in request",
        ),
        ({"PartNumber": 1, "ETag": etag, "ChecksumCRC32C": wrong}, "InvalidPart", None),
    ]
    for part, expected_code, expected_message in cases:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="r", UploadId=upload, MultipartUpload={"Parts": [part]}
            )
        assert code(exc) == expected_code, part
        if expected_message is not None:
            assert message(exc)[1] == expected_message
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="r", UploadId=upload, MultipartUpload={"Parts": listed}
    )
    assert done["ChecksumCRC32C"] == composite("CRC32C", parts)


def test_part_checksums_ride_in_the_segments_listing(
    aio_cluster: AioCluster, s3, bucket: str
) -> None:
    """A header checksum is in the part's listing row (its content type's parameter), so
    Complete and ListParts read it without a HEAD of the part."""
    _, upload, _ = checksummed_upload(s3, bucket, "l", "SHA256", [b"row"])
    conn = swift_client.Connection(
        authurl=aio_cluster.auth_url, user="test:tester", key=aio_cluster.users["test:tester"]
    )
    rows = conn.get_container(bucket + "+segments", prefix=f"l/{upload}/")[1]
    digest = base64.b64decode(b64_checksum("SHA256", b"row")).hex()
    assert [r["content_type"] for r in rows] == [
        f"application/octet-stream;s3_checksum_sha256={digest}"
    ]


def message(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error["Message"]


def test_whole_object_checksum_sent_on_complete_is_checked(s3, bucket: str, tmp_path) -> None:
    """A full-object checksum the client knows (s3transfer sends it on Complete, the upload
    created FULL_OBJECT), and a composite one with or without its -N; a wrong one refused."""
    data = os.urandom(PART + 4321)
    source = tmp_path / "known.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
    whole = b64_checksum("CRC32", data)
    s3.upload_file(str(source), bucket, "known", ExtraArgs={"ChecksumCRC32": whole}, Config=config)
    head = s3.head_object(Bucket=bucket, Key="known", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (whole, "FULL_OBJECT")

    parts = [b"one small part"]
    expected = composite("SHA256", parts)
    for sent, expected_error in (
        (expected.replace("-1", "-2"), "BadDigest"),
        (b64_checksum("SHA256", b"not it"), "BadDigest"),
        (expected + "x", "InvalidRequest"),
        (expected.split("-")[0], None),
    ):
        _, upload, listed = checksummed_upload(s3, bucket, "c", "SHA256", parts)
        complete = {"MultipartUpload": {"Parts": listed}, "ChecksumSHA256": sent}
        if expected_error is None:
            done = s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=upload, **complete)
            assert done["ChecksumSHA256"] == expected
            continue
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(Bucket=bucket, Key="c", UploadId=upload, **complete)
        assert code(exc) == expected_error, sent
        s3.abort_multipart_upload(Bucket=bucket, Key="c", UploadId=upload)


def test_part_number_with_checksum_mode_gives_the_parts_checksum(s3, bucket: str) -> None:
    parts = [os.urandom(PART), b"second part"]
    _, upload, listed = checksummed_upload(s3, bucket, "p", "CRC32", parts)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="p", UploadId=upload, MultipartUpload={"Parts": listed}
    )
    for number, body in enumerate(parts, 1):
        # botocore checks the part's checksum against the part's bytes.
        got = s3.get_object(Bucket=bucket, Key="p", PartNumber=number, ChecksumMode="ENABLED")
        assert got["Body"].read() == body
        assert got["ChecksumCRC32"] == b64_checksum("CRC32", body)
    head = s3.head_object(Bucket=bucket, Key="p", PartNumber=2, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == b64_checksum("CRC32", parts[1])


def test_trailer_part_checksums_are_read_from_the_parts(
    aio_cluster: AioCluster, s3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over https botocore sends a part's checksum as a trailer, known only after the body:
    not in the listing row; ListParts and Complete read it with a HEAD of the part."""

    def as_https(url: str):  # type: ignore[no-untyped-def]
        parsed = urlparse(url)
        return SimpleNamespace(**{**parsed._asdict(), "scheme": "https"})

    monkeypatch.setattr(httpchecksum, "urlparse", as_https)
    trailers: list[str] = []

    def note(request, **_):  # type: ignore[no-untyped-def]
        trailer = request.headers.get("x-amz-trailer", b"")
        trailers.append(trailer.decode() if isinstance(trailer, bytes) else trailer)

    s3.meta.events.register("before-send.s3.UploadPart", note)
    parts = [os.urandom(PART), b"tail"]
    _, upload, listed = checksummed_upload(s3, bucket, "t", "CRC32C", parts)
    assert trailers == ["x-amz-checksum-crc32c"] * 2
    page = s3.list_parts(Bucket=bucket, Key="t", UploadId=upload)
    assert [p["ChecksumCRC32C"] for p in page["Parts"]] == [p["ChecksumCRC32C"] for p in listed]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="t", UploadId=upload, MultipartUpload={"Parts": listed}
    )
    assert done["ChecksumCRC32C"] == composite("CRC32C", parts)
