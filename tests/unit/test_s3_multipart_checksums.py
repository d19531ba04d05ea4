"""proxy/s3/multipart_checksums.py and the checksum parts of multipart_xml.py: the requests a
real botocore client sends (taken at its send hook, nothing faked but the network), our answers
parsed by that client, and the composite values Swift's s3api tests recorded against AWS."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from botocore import httpchecksum
from botocore.config import Config
from botocore_answers import canned_response, sent_request
from multidict import CIMultiDict

from containerd_.http_headers import split_swift_bytes
from proxy.s3 import multipart_checksums as mpc
from proxy.s3 import multipart_xml as xml
from proxy.s3.checksums import ALGORITHMS, MultipartChecksum, RequestedChecksum
from proxy.s3.errors import S3Error
from proxy.s3.listing_xml import Owner
from proxy.s3.swift import CHECKSUM_SYSMETA

SESSION = boto3.session.Session(
    aws_access_key_id="test:tester", aws_secret_access_key="testing", region_name="us-east-1"
)
# "123456789", one part: its checksum, and the COMPOSITE checksum of an upload of that one
# part, as Swift's s3api tests (test/s3api/test_object_checksums.py) recorded them at AWS.
CHECK = b"123456789"
PART_B64 = {
    "CRC32": "y/Q5Jg==",
    "CRC32C": "4waSgw==",
    "CRC64NVME": "rosUhgp5mIg=",
    "SHA1": "98O8HYCOBHMq32eZZczDTKeuNEE=",
    "SHA256": "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
}
COMPOSITE_1 = {
    "CRC32": "7kxlUA==",
    "CRC32C": "pzJFoA==",
    "SHA1": "zGcEPHvP9e6lVmvZsfPHT9mlz10=",
    "SHA256": "KSsNAHVmgy25S/rmic1w0at3KBH9RLn0nYVQ7p6mpJQ=",
}


def exchange(operation: str, answer_headers=None, answer_body=b"", **params):
    """``(headers, body)`` botocore sends for ``operation``, and what it makes of our answer
    (``answer_headers``, ``answer_body``, status 200)."""
    client = SESSION.client(
        "s3", endpoint_url="http://s3.test", config=Config(s3={"addressing_style": "path"})
    )
    sent = {}

    def send(request, **_):
        sent["request"] = sent_request(request)
        return canned_response(request.url, 200, answer_headers or {}, answer_body)

    client.meta.events.register(f"before-send.s3.{operation}", send)
    name = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
    parsed = getattr(client, name)(Bucket="bucket", Key="key", **params)
    return sent["request"], parsed


def b64(algorithm: str, data: bytes) -> str:
    checksum = httpchecksum._CHECKSUM_CLS[algorithm.lower()]()
    checksum.update(data)
    return checksum.b64digest()


@contextmanager
def raises(code: str, message: str | None = None, **extra: str) -> Iterator[None]:
    with pytest.raises(S3Error) as caught:
        yield
    assert caught.value.code == code
    if message is not None:
        assert caught.value.message == message
    for name, value in extra.items():
        assert caught.value.extra[name] == value


# --- the upload -------------------------------------------------------------------------------


def test_the_marker_remembers_the_upload_and_create_answers_it():
    upload = MultipartChecksum("CRC32C", "FULL_OBJECT")
    stored = CIMultiDict(mpc.marker_sysmeta(upload))
    assert mpc.upload_of_marker(stored) == upload
    assert mpc.marker_sysmeta(None) == {} and mpc.upload_of_marker(CIMultiDict()) is None
    # A type the algorithm does not allow is not an upload with a checksum.
    assert (
        mpc.upload_of_marker(mpc.marker_sysmeta(MultipartChecksum("SHA1", "FULL_OBJECT"))) is None
    )
    initiate = xml.initiate_result("bucket", "key", "u" * 32)
    _, parsed = exchange(
        "CreateMultipartUpload",
        mpc.answer_headers(upload),
        initiate,
        ChecksumAlgorithm="CRC32C",
        ChecksumType="FULL_OBJECT",
    )
    assert (parsed["ChecksumAlgorithm"], parsed["ChecksumType"]) == ("CRC32C", "FULL_OBJECT")


def test_a_part_must_carry_the_uploads_algorithm():
    upload = MultipartChecksum("CRC32", "COMPOSITE")
    mpc.check_part(upload, RequestedChecksum("CRC32", "y/Q5Jg==", False))
    mpc.check_part(upload, RequestedChecksum("CRC32", None, True))  # a trailer's, to come
    mpc.check_part(None, None)
    mpc.check_part(None, RequestedChecksum("SHA1", PART_B64["SHA1"], False))
    expected = (
        "Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: "
    )
    with raises("InvalidRequest", expected + "null"):
        mpc.check_part(upload, None)
    with raises("InvalidRequest", expected + "crc32c"):
        mpc.check_part(upload, RequestedChecksum("CRC32C", "4waSgw==", False))


# --- where a part's checksum is kept ----------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_header_checksum_survives_the_container_listing(algorithm):
    """The content type as the container server lists it (its parameters re-joined) still
    gives the part's digest."""
    content_type = mpc.part_content_type(RequestedChecksum(algorithm, PART_B64[algorithm], False))
    listed, _ = split_swift_bytes(content_type)
    found = mpc.part_checksum_of_row(listed)
    assert found is not None
    assert (found.algorithm, found.b64()) == (algorithm, PART_B64[algorithm])


def test_parts_without_a_header_checksum():
    assert mpc.part_content_type(None) == "application/octet-stream"
    assert mpc.part_content_type(RequestedChecksum("CRC32", None, True)) == (
        "application/octet-stream"
    )
    for content_type in (
        None,
        "application/octet-stream",
        "application/octet-stream;s3_checksum_crc32=cbf439",  # too short
        "application/octet-stream;s3_checksum_md5=00",
    ):
        assert mpc.part_checksum_of_row(content_type) is None, content_type
    # A trailer's value is in the part's sysmeta.
    found = mpc.part_checksum_of_sysmeta("CRC32", "y/Q5Jg==")
    assert found == mpc.PartChecksum("CRC32", bytes.fromhex("cbf43926"))
    assert mpc.part_checksum_of_sysmeta("CRC32", None) is None


def test_a_part_number_get_answers_the_parts_checksum():
    part = CIMultiDict({CHECKSUM_SYSMETA + "sha256": PART_B64["SHA256"], "Etag": "x"})
    assert mpc.part_answer_headers(part) == {
        "x-amz-checksum-sha256": PART_B64["SHA256"],
        "x-amz-checksum-type": "FULL_OBJECT",
    }
    assert mpc.part_answer_headers(CIMultiDict({"Etag": "x"})) == {}
    assert mpc.part_answer_headers(CIMultiDict({CHECKSUM_SYSMETA + "md5": "x"})) == {}


# --- CompleteMultipartUpload ------------------------------------------------------------------


def complete_request(parts, **params) -> tuple[CIMultiDict, list[xml.RequestedPart]]:
    (headers, body), _ = exchange(
        "CompleteMultipartUpload",
        answer_body=xml.complete_result("/bucket/key", "bucket", "key", "e-1"),
        UploadId="u" * 32,
        MultipartUpload={"Parts": parts},
        **params,
    )
    return headers, xml.parse_complete(body)


def test_complete_lists_each_parts_checksum_as_botocore_sends_it():
    parts = [
        {"PartNumber": 1, "ETag": '"aa"', "ChecksumCRC32": "y/Q5Jg=="},
        {"PartNumber": 2, "ETag": '"bb"', "ChecksumCRC32": "AAAAAA=="},
    ]
    _, requested = complete_request(parts)
    assert [p.checksums for p in requested] == [(("CRC32", "y/Q5Jg=="),), (("CRC32", "AAAAAA=="),)]
    upload = MultipartChecksum("CRC32", "COMPOSITE")
    digests = [mpc.listed_part_digest(upload, p.number, p.checksums) for p in requested]
    assert digests == [bytes.fromhex("cbf43926"), bytes(4)]


def test_complete_part_checksum_refusals_as_aws_answers_them():
    upload = MultipartChecksum("CRC32", "COMPOSITE")
    with raises(
        "InvalidRequest",
        "The upload was created using a crc32 checksum. The complete request must include the "
        "checksum for each part. It was missing for part 3 in the request.",
    ):
        mpc.listed_part_digest(upload, 3, ())
    with raises("InvalidRequest"):  # another algorithm's is not the upload's
        mpc.listed_part_digest(upload, 1, (("SHA1", PART_B64["SHA1"]),))
    with raises(
        "InvalidArgument",
        "Invalid Base64 or multiple checksums present in request",
        ArgumentName="Checksum",
        ArgumentValue="CRC32:y/Q5Jh==;",
    ):
        mpc.listed_part_digest(upload, 1, (("CRC32", "y/Q5Jh=="),))
    with raises("InvalidArgument", ArgumentValue="CRC32:y/Q5Jg==;CRC32C:4waSgw==;"):
        mpc.listed_part_digest(upload, 1, (("CRC32", "y/Q5Jg=="), ("CRC32C", "4waSgw==")))


@pytest.mark.parametrize("algorithm", sorted(COMPOSITE_1))
def test_composite_checksum_as_aws_computed_it(algorithm):
    digest = base64.b64decode(PART_B64[algorithm])
    upload = MultipartChecksum(algorithm, "COMPOSITE")
    assert mpc.object_checksum(upload, [(digest, len(CHECK))]) == COMPOSITE_1[algorithm] + "-1"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_is_botocores_whole_object_crc(algorithm):
    rng = random.Random(algorithm)
    parts = [rng.randbytes(n) for n in (5 << 20, 100_000, 1)]
    given = [(base64.b64decode(b64(algorithm, p)), len(p)) for p in parts]
    upload = MultipartChecksum(algorithm, "FULL_OBJECT")
    assert mpc.object_checksum(upload, given) == b64(algorithm, b"".join(parts))


def test_a_whole_object_checksum_sent_on_complete():
    composite = MultipartChecksum("CRC32", "COMPOSITE")
    computed = COMPOSITE_1["CRC32"] + "-1"
    part = [{"PartNumber": 1, "ETag": '"aa"', "ChecksumCRC32": "y/Q5Jg=="}]
    for sent in (COMPOSITE_1["CRC32"], computed):  # AWS takes it with and without -N
        headers, _ = complete_request(part, ChecksumCRC32=sent)
        mpc.check_object_checksum(composite, headers, computed)
    headers, _ = complete_request(part)
    mpc.check_object_checksum(composite, headers, computed)  # none sent
    mpc.check_object_checksum(None, headers, None)
    mismatch = "The crc32 you specified did not match the calculated checksum."
    for sent in (COMPOSITE_1["CRC32"] + "-2", "AAAAAA==", "AAAAAA==-1"):
        with raises("BadDigest", mismatch):
            mpc.check_object_checksum(composite, {"x-amz-checksum-crc32": sent}, computed)
    invalid = "Value for x-amz-checksum-crc32 header is invalid."
    for sent in (
        computed + "x",
        COMPOSITE_1["CRC32"] + "-a",
        "7kxlUB==",
        COMPOSITE_1["CRC32"] + "-",
    ):
        with raises("InvalidRequest", invalid):
            mpc.check_object_checksum(composite, {"x-amz-checksum-crc32": sent}, computed)
    full = MultipartChecksum("CRC32", "FULL_OBJECT")
    with raises("InvalidRequest", invalid):  # a full-object value has no -N
        mpc.check_object_checksum(full, {"x-amz-checksum-crc32": "y/Q5Jg==-1"}, "y/Q5Jg==")
    headers, _ = complete_request(part, ChecksumCRC32="y/Q5Jg==", ChecksumType="FULL_OBJECT")
    mpc.check_object_checksum(full, headers, "y/Q5Jg==")
    with raises(
        "InvalidRequest",
        "The upload was created using the COMPOSITE checksum mode. The complete request must "
        "use the same checksum mode.",
    ):
        mpc.check_object_checksum(composite, headers, computed)
    with raises(
        "InvalidRequest",
        "Checksum Type mismatch occurred, expected checksum Type: "
        "crc32, actual checksum Type: sha1",
    ):
        mpc.check_object_checksum(composite, {"x-amz-checksum-sha1": PART_B64["SHA1"]}, computed)
    with raises("InvalidRequest"):  # the upload has no algorithm to check it with
        mpc.check_object_checksum(None, {"x-amz-checksum-crc32": "y/Q5Jg=="}, None)


# --- the answers, as botocore reads them ------------------------------------------------------


def test_complete_and_list_parts_answers_parse_in_botocore():
    body = xml.complete_result(
        "/bucket/key", "bucket", "key", "e-2", ("CRC64NVME", "rosUhgp5mIg=", "FULL_OBJECT")
    )
    _, parsed = exchange(
        "CompleteMultipartUpload",
        answer_body=body,
        UploadId="u" * 32,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"aa"'}]},
    )
    assert (parsed["ChecksumCRC64NVME"], parsed["ChecksumType"]) == ("rosUhgp5mIg=", "FULL_OBJECT")
    assert (
        "ChecksumType"
        not in exchange(
            "CompleteMultipartUpload",
            answer_body=xml.complete_result("/bucket/key", "bucket", "key", "e-2"),
            UploadId="u" * 32,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"aa"'}]},
        )[1]
    )
    parts = [
        xml.Part(1, "aa", 5, "2026-01-01T00:00:00.000000", ("SHA1", PART_B64["SHA1"])),
        xml.Part(2, "bb", 9, "2026-01-01T00:00:00.000000"),
    ]
    listing = xml.list_parts_result(
        "bucket", "key", "u" * 32, Owner("a:b", "a:b"), 0, 1000, parts, False, ("SHA1", "COMPOSITE")
    )
    _, parsed = exchange("ListParts", answer_body=listing, UploadId="u" * 32)
    assert (parsed["ChecksumAlgorithm"], parsed["ChecksumType"]) == ("SHA1", "COMPOSITE")
    assert [p.get("ChecksumSHA1") for p in parsed["Parts"]] == [PART_B64["SHA1"], None]
