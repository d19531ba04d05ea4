"""proxy/s3/checksums.py: S3's checksums against known vectors, against botocore's own checksum
classes, and against the requests a real botocore client sends (captured at its send hook,
nothing is faked but the network); the errors as S3 answers them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import re
import zlib

import boto3
import pytest
from botocore import httpchecksum
from botocore.config import Config
from botocore_answers import canned_response, sent_request
from multidict import CIMultiDict

from proxy.s3 import checksums
from proxy.s3.checksums import (
    ALGORITHMS,
    ChecksumTap,
    RequestedChecksum,
    composite_b64,
    content_md5_hex,
    full_object_b64,
    multipart_checksum,
    new_checksum,
    requested_checksum,
)
from proxy.s3.errors import S3Error

# "123456789": the CRC catalogue's check input; the base64 values are what Swift's s3api
# tests (run against AWS too) send for it.
CHECK = b"123456789"
CHECK_B64 = {
    "CRC32": "y/Q5Jg==",  # 0xcbf43926
    "CRC32C": "4waSgw==",  # 0xe3069283
    "CRC64NVME": "rosUhgp5mIg=",  # 0xae8b14860a799888
    "SHA1": "98O8HYCOBHMq32eZZczDTKeuNEE=",
    "SHA256": "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
}
# Decodes, but not canonically (padding bits set): AWS calls it invalid, not a mismatch.
NOT_CANONICAL = {
    "CRC32": "y/Q5Jh==",
    "CRC32C": "4waSgx==",
    "CRC64NVME": "rosUhgp5mIh=",
    "SHA1": "98O8HYCOBHMq32eZZczDTKeuNEF=",
    "SHA256": "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiV=",
}
# Well-formed, wrong: a mismatch (BadDigest).
WRONG = {
    "CRC32": "z/Q5Jg==",
    "CRC32C": "5waSgw==",
    "CRC64NVME": "sosUhgp5mIg=",
    "SHA1": "+8O8HYCOBHMq32eZZczDTKeuNEE=",
    "SHA256": "GeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
}


def raises(code: str, message: str):
    """pytest.raises for an S3Error with exactly this code and message."""
    return pytest.raises(S3Error, match=f"^{code}: {re.escape(message)}$")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_check_vectors(algorithm):
    checksum = new_checksum(algorithm)
    checksum.update(CHECK[:4])
    checksum.update(memoryview(CHECK)[4:])
    assert checksum.b64() == CHECK_B64[algorithm]
    assert len(checksum.digest()) == checksums.DIGEST_BYTES[algorithm]


def test_crc_values_as_the_catalogue_and_zlib_give_them():
    assert new_checksum("CRC32").digest().hex() == "00000000"  # nothing yet
    for algorithm, value in (
        ("CRC32", 0xCBF43926),
        ("CRC32C", 0xE3069283),
        ("CRC64NVME", 0xAE8B14860A799888),
    ):
        checksum = new_checksum(algorithm)
        checksum.update(CHECK)
        assert int.from_bytes(checksum.digest(), "big") == value
    body = random.Random(1).randbytes(100_000)
    crc32 = new_checksum("CRC32")
    crc32.update(body)
    assert int.from_bytes(crc32.digest(), "big") == zlib.crc32(body)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_random_bodies_agree_with_botocore(algorithm):
    rng = random.Random(f"botocore-{algorithm}")
    botocore_class = httpchecksum._CHECKSUM_CLS[algorithm.lower()]
    for _ in range(20):
        body = rng.randbytes(rng.choice([0, 1, 7, 4096, 65_537, 300_000]))
        ours = new_checksum(algorithm)
        at = 0
        while at < len(body):  # pieces of random sizes, as the body arrives
            step = rng.randint(1, 70_000)
            ours.update(body[at : at + step])
            at += step
        theirs = botocore_class()
        theirs.update(body)
        assert ours.b64() == theirs.b64digest()


def test_header_names():
    assert checksums.header_name("CRC64NVME") == "x-amz-checksum-crc64nvme"
    assert checksums.algorithm_of_header("X-Amz-Checksum-SHA256") == "SHA256"
    assert checksums.algorithm_of_header("x-amz-checksum-md5") is None
    assert set(checksums.HEADER_NAMES.values()) == set(ALGORITHMS)


# --- requests from a real client ----------------------------------------------------------


# One session for every client: the s3 model is then loaded once, not per test.
SESSION = boto3.session.Session(
    aws_access_key_id="test:tester", aws_secret_access_key="testing", region_name="us-east-1"
)


def client_requests(endpoint: str, operation: str, **params) -> tuple[CIMultiDict, bytes]:
    """The headers and body botocore sends for ``operation`` (signed, checksummed, with its
    defaults), taken at its send hook; the answer it gets is an empty 200."""
    client = SESSION.client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
    )
    sent = {}

    def send(request, **_):
        sent["request"] = sent_request(request)
        xml = b""
        if operation == "CreateMultipartUpload":
            xml = (
                b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                b"<UploadId>u</UploadId></InitiateMultipartUploadResult>"
            )
        return canned_response(request.url, 200, {"ETag": '"x"'}, xml)

    client.meta.events.register(f"before-send.s3.{operation}", send)
    method = getattr(client, _snake(operation))
    method(Bucket="bucket", Key="key", **params)
    return sent["request"]


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def aws_chunked(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The pieces and trailers of an unsigned aws-chunked body (what the lead's decoder will
    hand the tap), parsed plainly: this test does not test the decoder."""
    pieces, trailers, at = [], {}, 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end].split(b";")[0], 16)
        at = end + 2
        if size == 0:
            break
        pieces.append(body[at : at + size])
        at += size + 2
    for line in body[at:].split(b"\r\n"):
        if line:
            name, _, value = line.decode().partition(":")
            trailers[name.strip().lower()] = value.strip()
    return pieces, trailers


def run_tap(pieces: list[bytes], algorithms) -> ChecksumTap:
    queue = [*pieces, b""]

    async def next_piece() -> bytes:
        return queue.pop(0)

    async def drain() -> ChecksumTap:
        tap = ChecksumTap(next_piece, algorithms)
        while await tap.next_piece():
            pass
        return tap

    return asyncio.run(drain())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_client_header_checksum_verifies(algorithm):
    body = random.Random(algorithm).randbytes(200_000)
    headers, sent = client_requests(
        "http://s3.test", "PutObject", Body=body, ChecksumAlgorithm=algorithm
    )
    requested = requested_checksum(headers)
    assert requested == RequestedChecksum(algorithm, headers[f"x-amz-checksum-{algorithm}"], False)
    tap = run_tap([sent[:1000], sent[1000:]], [algorithm, "CRC64NVME"])
    tap.verify(requested)
    assert tap.size_bytes == len(body)
    assert tap.b64(algorithm) == requested.expected_b64
    with raises(
        "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
    ):
        run_tap([sent[:-1], b"\x00"], [algorithm]).verify(requested)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_client_trailer_checksum_verifies(algorithm):
    body = random.Random(algorithm).randbytes(100_000)
    # Over https botocore streams the body aws-chunked and sends the checksum as a trailer.
    headers, sent = client_requests(
        "https://s3.test", "PutObject", Body=body, ChecksumAlgorithm=algorithm
    )
    assert headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    requested = requested_checksum(headers)
    assert requested == RequestedChecksum(algorithm, None, True)
    pieces, trailers = aws_chunked(sent)
    assert b"".join(pieces) == body
    tap = run_tap(pieces, [algorithm])
    tap.verify(requested, trailers[checksums.header_name(algorithm)])
    with raises(
        "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
    ):
        tap.verify(requested, WRONG[algorithm])
    name = checksums.header_name(algorithm)
    for bad in (None, "", NOT_CANONICAL[algorithm], "shrt"):
        with raises("InvalidRequest", f"Value for {name} trailing header is invalid."):
            tap.verify(requested, bad)


def test_client_default_checksum_is_crc32():
    """boto3 with no checksum setting still sends one (CRC32): the proxy must take it."""
    headers, _ = client_requests("http://s3.test", "PutObject", Body=CHECK)
    assert requested_checksum(headers) == RequestedChecksum("CRC32", CHECK_B64["CRC32"], False)
    headers, _ = client_requests("https://s3.test", "PutObject", Body=CHECK)
    assert requested_checksum(headers) == RequestedChecksum("CRC32", None, True)


def test_client_value_given_without_algorithm():
    headers, _ = client_requests(
        "http://s3.test", "PutObject", Body=CHECK, ChecksumSHA1=CHECK_B64["SHA1"]
    )
    assert requested_checksum(headers) == RequestedChecksum("SHA1", CHECK_B64["SHA1"], False)


def test_client_upload_part_and_content_md5():
    headers, _ = client_requests(
        "http://s3.test",
        "UploadPart",
        Body=CHECK,
        UploadId="u",
        PartNumber=1,
        ContentMD5=base64.b64encode(hashlib.md5(CHECK).digest()).decode(),
        ChecksumAlgorithm="CRC32C",
    )
    assert requested_checksum(headers) == RequestedChecksum("CRC32C", CHECK_B64["CRC32C"], False)
    assert content_md5_hex(headers["Content-MD5"]) == hashlib.md5(CHECK).hexdigest()


def test_no_checksum():
    assert requested_checksum(CIMultiDict()) is None
    # The names that are not checksum values do not count as one.
    assert (
        requested_checksum(
            CIMultiDict(
                {
                    "x-amz-checksum-algorithm": "CRC32",
                    "x-amz-checksum-type": "COMPOSITE",
                    "x-amz-checksum-mode": "ENABLED",
                }
            )
        )
        is None
    )
    run_tap([CHECK], []).verify(None)


# --- errors, as AWS answers them ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_invalid_header_values(algorithm):
    name = checksums.header_name(algorithm)
    for value in (
        NOT_CANONICAL[algorithm],
        "",
        "short===",
        "shrt",
        "toolong=",
        "^^^^^^==",
        "y^/^Q5^J^g==",
        CHECK_B64[algorithm] + "AA==",
    ):
        with raises("InvalidRequest", f"Value for {name} header is invalid."):
            requested_checksum(CIMultiDict({name: value}))


def test_crc32_invalid_values_from_swift_tests():
    for value in ("short===", "shrt", "toolong=", "^^^^^^==", "y^/^Q5^J^g=="):
        with raises("InvalidRequest", "Value for x-amz-checksum-crc32 header is invalid."):
            requested_checksum(CIMultiDict({"x-amz-checksum-crc32": value}))


def test_two_checksums():
    single = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
    with raises("InvalidRequest", single):
        requested_checksum(
            CIMultiDict(
                {
                    "x-amz-checksum-crc32": CHECK_B64["CRC32"],
                    "x-amz-checksum-sha1": CHECK_B64["SHA1"],
                }
            )
        )
    with raises("InvalidRequest", single):
        requested_checksum(
            CIMultiDict({"x-amz-trailer": "x-amz-checksum-crc32, x-amz-checksum-sha1"})
        )
    with raises("InvalidRequest", "Expecting a single x-amz-checksum- header"):
        requested_checksum(
            CIMultiDict(
                {"x-amz-checksum-crc32": CHECK_B64["CRC32"], "x-amz-trailer": "x-amz-checksum-sha1"}
            )
        )


def test_unknown_algorithms():
    with raises(
        "InvalidRequest", "The algorithm type you specified in x-amz-checksum- header is invalid."
    ):
        requested_checksum(CIMultiDict({"x-amz-checksum-md5": "AAAA"}))
    with raises(
        "InvalidRequest", "The value specified in the x-amz-trailer header is not supported"
    ):
        requested_checksum(CIMultiDict({"x-amz-trailer": "x-amz-checksum-sha3"}))
    with raises(
        "InvalidRequest", "The value specified in the x-amz-trailer header is not supported"
    ):
        requested_checksum(CIMultiDict({"x-amz-trailer": "content-md5"}))


def test_sdk_checksum_algorithm_must_agree():
    """What Swift's s3api tests record from AWS for ChecksumCRC32 with ChecksumAlgorithm=SHA1."""
    headers, _ = client_requests(
        "http://s3.test",
        "PutObject",
        Body=CHECK,
        ChecksumCRC32=CHECK_B64["CRC32"],
        ChecksumAlgorithm="SHA1",
    )
    with raises("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid."):
        requested_checksum(headers)
    with raises(
        "InvalidRequest",
        "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or "
        "x-amz-trailer headers were found.",
    ):
        requested_checksum(CIMultiDict({"x-amz-sdk-checksum-algorithm": "CRC32"}))
    # Case does not matter to S3.
    assert requested_checksum(
        CIMultiDict(
            {"x-amz-sdk-checksum-algorithm": "crc32", "x-amz-checksum-crc32": CHECK_B64["CRC32"]}
        )
    ) == RequestedChecksum("CRC32", CHECK_B64["CRC32"], False)


def test_content_md5():
    good = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    assert content_md5_hex(good) == hashlib.md5(b"x").hexdigest()
    assert content_md5_hex(f"  {good} ") == hashlib.md5(b"x").hexdigest()
    assert content_md5_hex(None) is None
    assert content_md5_hex("  ") is None  # S3 takes a blank header for none
    for bad in ("notbase64!", "AAAA", base64.b64encode(b"x" * 17).decode(), "====", good[:-2]):
        with pytest.raises(S3Error) as caught:
            content_md5_hex(bad)
        assert caught.value.code == "InvalidDigest"
        assert caught.value.extra == {"Content-MD5": bad.strip()}
    error = checksums.content_md5_mismatch(good, hashlib.md5(b"y").hexdigest())
    assert (error.code, error.status) == ("BadDigest", 400)
    assert error.extra["CalculatedDigest"] == base64.b64encode(hashlib.md5(b"y").digest()).decode()


def test_verify_only_at_the_end():
    tap = ChecksumTap(lambda: asyncio.sleep(0, b"x"), ["CRC32"])
    with pytest.raises(RuntimeError):
        tap.verify(RequestedChecksum("CRC32", CHECK_B64["CRC32"], False))


# --- multipart --------------------------------------------------------------------------------


def test_multipart_checksum_headers_from_client():
    for algorithm, kind, expected in (
        ("CRC32", None, ("CRC32", "COMPOSITE")),
        ("CRC64NVME", None, ("CRC64NVME", "FULL_OBJECT")),
        ("CRC32C", "FULL_OBJECT", ("CRC32C", "FULL_OBJECT")),
        ("SHA256", "COMPOSITE", ("SHA256", "COMPOSITE")),
    ):
        params = {"ChecksumAlgorithm": algorithm}
        if kind:
            params["ChecksumType"] = kind
        headers, _ = client_requests("http://s3.test", "CreateMultipartUpload", **params)
        assert multipart_checksum(headers) == expected
    headers, _ = client_requests("http://s3.test", "CreateMultipartUpload")
    assert multipart_checksum(headers) is None


def test_multipart_checksum_refusals():
    def ask(**headers):
        return multipart_checksum(CIMultiDict(headers))

    with raises(
        "InvalidRequest",
        "Checksum algorithm provided is unsupported. Please try again with any of the valid "
        "types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
    ):
        ask(**{"x-amz-checksum-algorithm": "MD5"})
    with raises(
        "InvalidRequest",
        "The FULL_OBJECT checksum type cannot be used with the sha1 checksum algorithm.",
    ):
        ask(**{"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-type": "FULL_OBJECT"})
    with raises(
        "InvalidRequest",
        "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.",
    ):
        ask(**{"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"})
    with raises("InvalidRequest", "Value for x-amz-checksum-type header is invalid."):
        ask(**{"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "PARTIAL"})
    with raises(
        "InvalidRequest",
        "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
    ):
        ask(**{"x-amz-checksum-type": "COMPOSITE"})


def test_composite_as_swift_tests_record_aws():
    """Swift's s3api test (run against AWS): two 5 MiB zero parts, CRC32 composite =
    crc32 of the two raw part digests, then ``-2``."""
    part = b"\x00" * 5 * 1024 * 1024
    crc = new_checksum("CRC32")
    crc.update(part)
    expected = base64.b64encode(zlib.crc32(crc.digest() * 2).to_bytes(4, "big")).decode() + "-2"
    assert composite_b64("CRC32", [crc.digest(), crc.digest()]) == expected
    sha = hashlib.sha256(part).digest()
    assert composite_b64("SHA256", [sha]) == (
        base64.b64encode(hashlib.sha256(sha).digest()).decode() + "-1"
    )


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_combines_to_the_whole_crc(algorithm):
    rng = random.Random(algorithm)
    parts = [rng.randbytes(n) for n in (5 * 1024 * 1024, 1, 0, 777_777)]
    digests = []
    whole = new_checksum(algorithm)
    for part in parts:
        one = new_checksum(algorithm)
        one.update(part)
        digests.append((one.digest(), len(part)))
        whole.update(part)
    assert full_object_b64(algorithm, digests) == whole.b64()
    theirs = httpchecksum._CHECKSUM_CLS[algorithm.lower()]()
    theirs.update(b"".join(parts))
    assert full_object_b64(algorithm, digests) == theirs.b64digest()
    assert full_object_b64(algorithm, digests[:1]) == base64.b64encode(digests[0][0]).decode()
    with pytest.raises(KeyError):
        full_object_b64("SHA256", [])
