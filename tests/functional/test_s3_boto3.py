"""The S3 API end to end with boto3 (default settings: its CRC32 checksums on) against `torus up`.

One all-in-one cluster serves the module (tests/aio_cluster.py); each test works in buckets of
its own.  Credentials are the all-in-one's Swift-s3api-style pairs: access key
``account:user``, secret = the user's key.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import hmac
import http.client
import os
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import botocore.auth
import botocore.crt.auth
import pytest
from aio_cluster import AioCluster
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from s3_clients import REGION, s3_client
from swiftclient import client as swift_client

# botocore's connection pool may drop a socket the server closed (an early error answers
# "Connection: close") without closing it; the ResourceWarning surfaces at a later garbage
# collection, in whichever test runs then.  The client's leak, not the server's: ignored here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.usefixtures("collect_client_sockets"),
]


def error_code(exc_info: pytest.ExceptionInfo[ClientError]) -> str:
    return exc_info.value.response["Error"]["Code"]


def status_of(exc_info: pytest.ExceptionInfo[ClientError]) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


# -- buckets ---------------------------------------------------------------------------------


def test_bucket_lifecycle(s3) -> None:
    name = "life-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_code(exc) == "BucketAlreadyOwnedByYou"
    assert status_of(exc) == 409
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None  # us-east-1
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert error_code(exc) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert status_of(exc) == 404
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=name)
    assert error_code(exc) == "NoSuchBucket"


def test_bucket_names_are_global(aio_cluster: AioCluster, s3) -> None:
    name = "global-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=name)
    other = s3_client(aio_cluster, user="test2:tester2")  # another account
    with pytest.raises(ClientError) as exc:
        other.create_bucket(Bucket=name)
    assert (error_code(exc), status_of(exc)) == ("BucketAlreadyExists", 409)
    with pytest.raises(ClientError) as exc:
        other.head_bucket(Bucket=name)  # its own account has no such bucket
    assert status_of(exc) == 404
    s3.delete_bucket(Bucket=name)
    other.create_bucket(Bucket=name)  # released with the delete
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_code(exc) == "BucketAlreadyExists"
    other.delete_bucket(Bucket=name)
    # The registry is the proxy's own: no user's token reaches its account.
    conn = swift_client.Connection(
        authurl=aio_cluster.auth_url, user="admin:admin", key=aio_cluster.users["admin:admin"]
    )
    url = conn.get_auth()[0].rsplit("/", 1)[0] + "/.s3"
    with pytest.raises(swift_client.ClientException) as denied:
        swift_client.get_account(url, conn.get_auth()[1])
    assert denied.value.http_status in (401, 403)


@pytest.mark.parametrize("name", ["ab", "UPPER", "a..b", "-dash", "192.168.1.1", "x" * 64])
def test_invalid_bucket_names_are_refused(s3, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_code(exc) == "InvalidBucketName"


def test_a_foreign_location_constraint_is_refused(s3) -> None:
    name = "loc-" + uuid.uuid4().hex[:8]
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_code(exc) == "InvalidLocationConstraint"
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_a_bucket_is_a_swift_container_of_the_signers_account(
    aio_cluster: AioCluster, s3, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="dir/seen by swift", Body=b"both APIs", Metadata={"k": "v"})
    conn = swift_client.Connection(
        authurl=aio_cluster.auth_url, user="test:tester", key=aio_cluster.users["test:tester"]
    )
    headers, body = conn.get_object(bucket, "dir/seen by swift")
    assert body == b"both APIs"
    assert headers["x-object-meta-k"] == "v"
    conn.put_object(bucket, "from-swift", b"swift wrote it")
    assert s3.get_object(Bucket=bucket, Key="from-swift")["Body"].read() == b"swift wrote it"


# -- objects ---------------------------------------------------------------------------------


def test_put_get_head_with_metadata_and_content_headers(s3, bucket: str) -> None:
    body = os.urandom(1000)
    put = s3.put_object(
        Bucket=bucket,
        Key="obj",
        Body=body,
        Metadata={"Color": "blue", "n": "1"},
        ContentType="application/x-test",
        ContentDisposition='attachment; filename="x.bin"',
        CacheControl="no-cache",
    )
    md5 = hashlib.md5(body).hexdigest()
    assert put["ETag"] == f'"{md5}"'
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{md5}"'
    assert got["Metadata"] == {"color": "blue", "n": "1"}
    assert got["ContentType"] == "application/x-test"
    assert got["ContentDisposition"] == 'attachment; filename="x.bin"'
    assert got["CacheControl"] == "no-cache"
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == 1000
    assert head["ETag"] == f'"{md5}"'
    assert "x-timestamp" not in head["ResponseMetadata"]["HTTPHeaders"]


def test_large_object_and_ranges(s3, bucket: str) -> None:
    body = os.urandom(9 * 1024 * 1024 + 7)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body
    part = s3.get_object(Bucket=bucket, Key="big", Range="bytes=1048570-1048589")
    assert part["Body"].read() == body[1048570:1048590]
    assert part["ContentRange"] == f"bytes 1048570-1048589/{len(body)}"
    assert s3.get_object(Bucket=bucket, Key="big", Range="bytes=-5")["Body"].read() == body[-5:]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={len(body)}-")
    assert error_code(exc) == "InvalidRange"
    assert s3.get_object(Bucket=bucket, Key="big", PartNumber=1)["ContentLength"] == len(body)


def test_conditional_get_and_put(s3, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status_of(exc) == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123"')
    assert error_code(exc) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert status_of(exc) == 412
    s3.put_object(Bucket=bucket, Key="new", Body=b"n", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v1"


def test_missing_keys_and_buckets(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(exc) == "NoSuchKey"
    assert exc.value.response["Error"]["Key"] == "nope"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="no-such-" + uuid.uuid4().hex[:8], Key="k")
    assert error_code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status_of(exc) == 404
    # Deleting a key that is not there succeeds, as on S3.
    assert s3.delete_object(Bucket=bucket, Key="nope")["ResponseMetadata"]["HTTPStatusCode"] == 204


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksums_are_verified_stored_and_returned(s3, bucket: str, algorithm: str) -> None:
    body = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="sum", Body=body, ChecksumAlgorithm=algorithm)
    value = put[f"Checksum{algorithm}"]
    head = s3.head_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == value
    got = s3.get_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert got["Body"].read() == body  # botocore checks the body against the checksum too
    assert f"Checksum{algorithm}" not in s3.head_object(Bucket=bucket, Key="sum")


def test_a_wrong_checksum_or_md5_stores_nothing(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"abc", ChecksumCRC32="AAAAAA==")
    assert error_code(exc) == "BadDigest"
    wrong_md5 = base64.b64encode(hashlib.md5(b"abd").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"abc", ContentMD5=wrong_md5)
    assert error_code(exc) == "BadDigest"
    big = os.urandom(3 * 1024 * 1024)  # a streamed PUT: cut on every replica
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=big, ChecksumSHA256="A" * 43 + "=")
    assert error_code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="bad")
    assert status_of(exc) == 404


def test_copy_object_copies_or_replaces_metadata(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"source", Metadata={"a": "1"})
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"source").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert (got["Body"].read(), got["Metadata"]) == (b"source", {"a": "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="text/x-new",
    )
    got = s3.get_object(Bucket=bucket, Key="dst2")
    assert (got["Metadata"], got["ContentType"]) == ({"b": "2"}, "text/x-new")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket,
            Key="dst3",
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceIfMatch='"not-it"',
        )
    assert error_code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst3", CopySource={"Bucket": bucket, "Key": "none"})
    assert error_code(exc) == "NoSuchKey"


def test_delete_objects_reports_each_key_and_quiet_reports_none(s3, bucket: str) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    answer = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]}
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a", "b", "missing"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# -- listings --------------------------------------------------------------------------------


def test_listings_page_with_prefix_and_delimiter(s3, bucket: str) -> None:
    keys = [f"dir{d}/file{f:02d}" for d in range(3) for f in range(4)] + ["top", "a b+c&d"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 5}
    ):
        assert page["KeyCount"] <= 5
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert listed == sorted(keys)
    v1 = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 4}
    ):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    assert v1 == sorted(keys)
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["dir0/", "dir1/", "dir2/"]
    assert [o["Key"] for o in top["Contents"]] == ["a b+c&d", "top"]
    inner = s3.list_objects_v2(Bucket=bucket, Prefix="dir1/", StartAfter="dir1/file01")
    assert [o["Key"] for o in inner["Contents"]] == ["dir1/file02", "dir1/file03"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="top")
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions["Versions"]] == [
        ("top", "null", True)
    ]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# -- authentication --------------------------------------------------------------------------


def test_wrong_secret_unknown_key_and_anonymous_are_refused(aio_cluster: AioCluster) -> None:
    with pytest.raises(ClientError) as exc:
        s3_client(aio_cluster, secret="wrong").list_buckets()
    assert error_code(exc) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        s3_client(aio_cluster, user="nobody:none", secret="x").list_buckets()
    assert error_code(exc) == "InvalidAccessKeyId"
    request = urllib.request.Request(aio_cluster.endpoint + "/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(request, timeout=30)
    with http_error.value as answer:
        assert answer.code == 403
        assert b"<Code>AccessDenied</Code>" in answer.read()


def set_client_clock(monkeypatch: pytest.MonkeyPatch, offset: datetime.timedelta) -> None:
    """botocore signs with its clock ``offset`` away from the real one (its own signer's,
    and the awscrt one it uses when awscrt is installed, as it is here)."""

    def now(remove_tzinfo: bool = True) -> datetime.datetime:
        when = datetime.datetime.now(datetime.UTC) + offset
        return when.replace(tzinfo=None) if remove_tzinfo else when

    monkeypatch.setattr(botocore.auth, "get_current_datetime", now)
    monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", now)


def test_a_skewed_client_clock_is_refused(
    aio_cluster: AioCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_client_clock(monkeypatch, -datetime.timedelta(minutes=20))
    with pytest.raises(ClientError) as exc:
        s3_client(aio_cluster).list_buckets()
    assert error_code(exc) == "RequestTimeTooSkewed"


def test_presigned_get_and_put(aio_cluster: AioCluster, s3, bucket: str) -> None:
    v4 = s3_client(aio_cluster, signature_version="s3v4")
    put_url = v4.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300
    )
    request = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    get_url = v4.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "p", "ResponseContentType": "text/x-override"},
        ExpiresIn=7 * 24 * 3600,
    )
    with urllib.request.urlopen(get_url, timeout=30) as response:
        assert response.read() == b"presigned body"
        assert response.headers["Content-Type"] == "text/x-override"
    tampered = get_url.replace("Key=p", "Key=q") if "Key=p" in get_url else get_url + "&x=1"
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(tampered, timeout=30)
    with http_error.value as answer:
        assert answer.code == 403


def test_an_expired_presign_is_refused(
    aio_cluster: AioCluster, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_client_clock(monkeypatch, -datetime.timedelta(hours=1))
    url = s3_client(aio_cluster, signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60
    )
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(url, timeout=30)
    with http_error.value as answer:
        assert answer.code == 403
        body = answer.read()
    assert b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body


def test_signature_v2_presigned_urls_and_clients_work(
    aio_cluster: AioCluster, s3, bucket: str
) -> None:
    """boto3 presigns with Signature V2 by default in us-east-1; s3cmd may sign with it."""
    s3.put_object(Bucket=bucket, Key="v2", Body=b"version two")
    url = s3_client(aio_cluster).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "v2"}, ExpiresIn=60
    )
    assert "AWSAccessKeyId=" in url
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"version two"
    v2 = s3_client(aio_cluster, signature_version="s3")
    v2.put_object(Bucket=bucket, Key="by-v2", Body=b"signed with v2")
    assert v2.get_object(Bucket=bucket, Key="by-v2")["Body"].read() == b"signed with v2"
    assert "by-v2" in [o["Key"] for o in v2.list_objects(Bucket=bucket)["Contents"]]
    with pytest.raises(ClientError) as exc:
        s3_client(aio_cluster, secret="wrong", signature_version="s3").list_buckets()
    assert error_code(exc) == "SignatureDoesNotMatch"


def test_virtual_host_style(aio_cluster: AioCluster, s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="vh/key", Body=b"virtual")
    port = urlsplit(aio_cluster.endpoint).port
    host = f"{bucket}.localhost:{port}"
    request = AWSRequest(method="GET", url=f"http://{host}/vh/key", headers={"Host": host})
    credentials = Credentials("test:tester", aio_cluster.users["test:tester"])
    botocore.auth.S3SigV4Auth(credentials, "s3", REGION).add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/vh/key", headers=dict(request.headers.items()))
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"virtual")
    finally:
        conn.close()


def test_settings_never_set_are_found_absent(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    grants = s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert (status_of(exc), error_code(exc)) == (404, "NoSuchBucketPolicy")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert (status_of(exc), error_code(exc)) == (404, "NoSuchCORSConfiguration")


def test_keys_over_1024_bytes_are_refused(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="é" * 513, Body=b"x")  # 1026 bytes of UTF-8
    assert error_code(exc) == "KeyTooLongError"
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")


def test_a_content_encoded_body_is_stored_as_sent(s3, bucket: str) -> None:
    body = gzip.compress(b"<p>compressible</p>" * 1000)
    s3.put_object(Bucket=bucket, Key="page", Body=body, ContentEncoding="gzip")
    got = s3.get_object(Bucket=bucket, Key="page")
    assert (got["ContentEncoding"], got["Body"].read()) == ("gzip", body)


def test_unsupported_operations_answer_501(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy="{}")
    assert (status_of(exc), error_code(exc)) == (501, "NotImplemented")
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert (status_of(exc), error_code(exc)) == (501, "NotImplemented")


@pytest.mark.parametrize(
    ("extra", "answer"),
    [
        ({"ServerSideEncryption": "AES256"}, (501, "NotImplemented")),
        (
            {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32},
            (501, "NotImplemented"),
        ),
        ({"Tagging": "a=b"}, (501, "NotImplemented")),
        ({"ACL": "public-read"}, (501, "NotImplemented")),
        ({"GrantRead": 'id="someone"'}, (501, "NotImplemented")),
        ({"WebsiteRedirectLocation": "/elsewhere"}, (501, "NotImplemented")),
        ({"ObjectLockLegalHoldStatus": "ON"}, (400, "InvalidRequest")),
        ({"StorageClass": "GLACIER"}, (400, "InvalidStorageClass")),
    ],
)
def test_a_put_asking_for_what_is_not_served_is_refused_and_stores_nothing(
    s3, bucket: str, extra: dict, answer: tuple[int, str]
) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **extra)
    assert (status_of(exc), error_code(exc)) == answer
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert status_of(exc) == 404


def test_what_is_served_of_those_headers_goes_through(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="private", StorageClass="STANDARD")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _streaming_put(cluster: AioCluster, bucket: str, key: str, data: bytes, *, tamper: bool):
    """A PUT with a signed aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), signed here
    as AWS's "sigv4-streaming" page says (botocore has no signer for it: it always puts its
    own payload hash), independently of the server's code; ``tamper`` flips a byte of the
    second chunk after signing.  (status, body) of the answer."""
    port = urlsplit(cluster.endpoint).port
    secret = cluster.users["test:tester"]
    amz_date = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    signed_headers = {
        "host": f"127.0.0.1:{port}",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(len(data)),
    }
    names = ";".join(signed_headers)
    canonical = "\n".join(
        [
            "PUT",
            f"/{bucket}/{key}",
            "",
            *(f"{name}:{value}" for name, value in signed_headers.items()),
            "",
            names,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        ]
    )
    string_to_sign = (
        f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    signing_key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret}".encode(), amz_date[:8]), REGION), "s3"), "aws4_request"
    )
    previous = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential=test:tester/{scope}, SignedHeaders={names}, "
        f"Signature={previous}"
    )
    empty = hashlib.sha256(b"").hexdigest()
    chunk = 64 * 1024
    pieces = []
    for start in [*range(0, len(data), chunk), len(data)]:
        part = data[start : start + chunk]
        to_sign = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{empty}\n"
            f"{hashlib.sha256(part).hexdigest()}"
        )
        previous = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        if tamper and start == chunk:
            part = bytes([part[0] ^ 1]) + part[1:]
        pieces.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(part), previous.encode(), part))
    body = b"".join(pieces)
    headers = {
        **signed_headers,
        "Authorization": authorization,
        "Content-Encoding": "aws-chunked",
        "Content-Length": str(len(body)),
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("PUT", f"/{bucket}/{key}", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_signed_streaming_bodies_and_a_tampered_chunk(
    aio_cluster: AioCluster, s3, bucket: str
) -> None:
    data = os.urandom(200_000)  # four chunks: three of 64 KiB and the rest
    status, body = _streaming_put(aio_cluster, bucket, "chunked", data, tamper=False)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == data
    status, body = _streaming_put(aio_cluster, bucket, "tampered", data, tamper=True)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="tampered")
    assert status_of(exc) == 404  # nothing stored
