"""A completed multipart upload overwritten by PutObject or CopyObject: its parts go from
``<bucket>+segments`` (as with DeleteObject and a second Complete), against `torus up`."""

from __future__ import annotations

import pytest
from swiftclient import client as swift_client

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.usefixtures("collect_client_sockets"),
]


def _complete_upload(s3, bucket: str, key: str, body: bytes) -> str:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=body)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag["ETag"]}]},
    )
    return upload


def _parts_of(swift: swift_client.Connection, bucket: str, upload: str) -> list[str]:
    rows = swift.get_container(bucket + "+segments", full_listing=True)[1]
    return [row["name"] for row in rows if f"/{upload}/" in row["name"]]


def test_put_object_over_a_completed_upload_deletes_its_parts(s3, swift, bucket: str) -> None:
    upload = _complete_upload(s3, bucket, "k", b"multipart")
    kept = _complete_upload(s3, bucket, "other", b"stays")
    assert len(_parts_of(swift, bucket, upload)) == 1
    s3.put_object(Bucket=bucket, Key="k", Body=b"plain")
    assert _parts_of(swift, bucket, upload) == []
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"plain"
    assert len(_parts_of(swift, bucket, kept)) == 1  # another key's upload is not touched
    assert s3.get_object(Bucket=bucket, Key="other")["Body"].read() == b"stays"


def test_a_refused_conditional_put_keeps_the_parts(s3, swift, bucket: str) -> None:
    upload = _complete_upload(s3, bucket, "k", b"multipart")
    with pytest.raises(s3.exceptions.ClientError):
        s3.put_object(Bucket=bucket, Key="k", Body=b"plain", IfNoneMatch="*")
    assert len(_parts_of(swift, bucket, upload)) == 1
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"multipart"


def test_copy_over_a_completed_upload_deletes_its_parts(s3, swift, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    upload = _complete_upload(s3, bucket, "k", b"multipart")
    s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "src"})
    assert _parts_of(swift, bucket, upload) == []
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"source"


def test_an_upload_copied_onto_itself_is_a_plain_object(s3, swift, bucket: str) -> None:
    upload = _complete_upload(s3, bucket, "k", b"multipart")
    s3.copy_object(
        Bucket=bucket,
        Key="k",
        CopySource={"Bucket": bucket, "Key": "k"},
        MetadataDirective="REPLACE",
        Metadata={"new": "meta"},
    )
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Body"].read(), got["Metadata"]) == (b"multipart", {"new": "meta"})
    assert _parts_of(swift, bucket, upload) == []  # the copy holds the bytes itself
