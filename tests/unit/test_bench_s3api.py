"""bench/s3api: the load generator's SigV4 signing and request heads against boto3's own.

boto3 is the reference: a real client (its before-send hook takes the request it would send,
and answers it, so no server is needed) signs PutObject and GetObject; the bench's signer,
given the same headers and X-Amz-Date, must produce the same Authorization, and s3raw's
request heads must carry exactly the headers boto3 signs.  Plus the signing-key example of
AWS's SigV4 documentation.

Lives beside the code it tests because its owner may only add files under bench/s3api/; it is
written to run from tests/unit/ unchanged (both are two levels under the repository).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
import zlib
from pathlib import Path
from typing import Any

import boto3
import botocore.awsrequest
import pytest
from botocore.config import Config
from botocore_answers import canned_response

REPO = Path(__file__).resolve().parents[2]
for directory in (REPO / "bench" / "swiftapi", REPO / "bench" / "s3api"):
    if str(directory) not in sys.path:
        sys.path.append(str(directory))

import s3raw  # noqa: E402
import signer  # noqa: E402
from api import Body  # noqa: E402
from measure import Meter  # noqa: E402

ENDPOINT = "http://127.0.0.1:8080"


def boto3_sends(call: str, **params: Any) -> dict[str, str]:
    """The headers (lower-case names) of the request boto3 would send for ``call``, and the
    path as ``:path``."""
    seen: dict[str, str] = {}

    def capture(request: Any, **kwargs: Any) -> botocore.awsrequest.AWSResponse:
        for name, value in request.headers.items():
            seen[name.lower()] = value.decode() if isinstance(value, bytes) else str(value)
        seen[":path"] = request.url.removeprefix(ENDPOINT)
        return canned_response(request.url, 200, {"ETag": '"x"'})

    client = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id="test:tester",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.meta.events.register("before-send", capture)
    getattr(client, call)(**params)
    return seen


def signed_names(authorization: str) -> list[str]:
    return authorization.split("SignedHeaders=")[1].split(",")[0].split(";")


@pytest.mark.parametrize("key", ["obj-000001", "put-18c/000000042", "a b/ü~x+y=z"])
def test_put_signature_is_botocores(key: str) -> None:
    body = Body(4096)
    sent = boto3_sends("put_object", Bucket="s3bench-put-4k", Key=key, Body=bytes(body.pieces[0]))
    payload = s3raw.Payload.of(body)
    # What boto3 sends over http for PutObject: a signed payload and a CRC32 header.
    assert sent["x-amz-content-sha256"] == payload.sha256_hex
    assert sent["x-amz-checksum-crc32"] == payload.crc32_b64
    assert sent["x-amz-sdk-checksum-algorithm"] == "CRC32"
    assert sent[":path"] == s3raw.target("s3bench-put-4k", key)
    names = signed_names(sent["authorization"])
    ours = signer.Signer("test:tester", "testing").authorization(
        "PUT", sent[":path"], {n: sent[n] for n in names}, payload.sha256_hex, sent["x-amz-date"]
    )
    assert ours == sent["authorization"]


def test_get_signature_is_botocores() -> None:
    sent = boto3_sends("get_object", Bucket="s3bench-get-4k", Key="obj-000007")
    assert sent["x-amz-checksum-mode"] == "ENABLED"
    assert sent["x-amz-content-sha256"] == signer.EMPTY_SHA256
    names = signed_names(sent["authorization"])
    ours = signer.Signer("test:tester", "testing").authorization(
        "GET", sent[":path"], {n: sent[n] for n in names}, signer.EMPTY_SHA256, sent["x-amz-date"]
    )
    assert ours == sent["authorization"]


def raw_head(call: str, *args: Any, amz_date: str) -> str:
    """The request head s3raw's ``call`` sends, captured from its pool."""
    sign = signer.Signer("test:tester", "testing")
    sign.amz_date = lambda now_s=None: amz_date  # type: ignore[method-assign]
    api = s3raw.RawS3API(ENDPOINT, sign, Meter())
    heads: list[bytes] = []

    class Answer:
        status, body_bytes = 200, 0

    async def request(head: bytes, body: Any = ()) -> Answer:
        heads.append(head)
        return Answer()

    api.pool.request = request  # type: ignore[method-assign]
    asyncio.run(getattr(api, call)(*args))
    return heads[0].decode()


@pytest.mark.parametrize("call", ["put_object", "get_object"])
def test_raw_heads_match_boto3(call: str) -> None:
    """s3raw's head has boto3's request line, signed headers and Authorization."""
    body = Body(4096)
    bucket, key = "s3bench-x", "k/1"
    if call == "put_object":
        sent = boto3_sends(call, Bucket=bucket, Key=key, Body=bytes(body.pieces[0]))
        args: tuple[Any, ...] = (bucket, key, body, s3raw.Payload.of(body))
    else:
        sent = boto3_sends(call, Bucket=bucket, Key=key)
        args = (bucket, key)
    head = raw_head(call, *args, amz_date=sent["x-amz-date"])
    lines = head.split("\r\n")
    assert lines[0] == f"{'PUT' if call == 'put_object' else 'GET'} /{bucket}/{key} HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    for name in signed_names(sent["authorization"]):
        assert headers[name] == sent[name]
    assert headers["Authorization"] == sent["authorization"]
    assert head.endswith("\r\n\r\n")
    if call == "put_object":
        assert headers["Content-Length"] == "4096"
        assert headers["Expect"] == sent["expect"] == "100-continue"


def test_signing_key_of_aws_docs() -> None:
    """The derived-key example of AWS's "Examples of how to derive a signing key for
    Signature Version 4" (IAM user guide)."""
    key = signer.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
    )
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_amz_date_is_formatted_once_a_second() -> None:
    sign = signer.Signer("a", "b")
    assert sign.amz_date(0) == "19700101T000000Z"
    assert sign.amz_date(86_400.9) == "19700102T000000Z"
    assert sign.amz_date(86_401.0) == "19700102T000001Z"


def test_payload_of_a_multi_piece_body() -> None:
    """A 64 MiB body is streamed as 64 slices of one buffer: its hash covers all of them."""
    body = Body(3 * Body.CHUNK_BYTES + 5)
    whole = b"".join(bytes(p) for p in body.pieces)
    payload = s3raw.Payload.of(body)
    assert payload.sha256_hex == hashlib.sha256(whole).hexdigest()
    assert base64.b64decode(payload.crc32_b64) == zlib.crc32(whole).to_bytes(4, "big")


def test_statuses_are_counted_and_a_refusal_raises() -> None:
    """Every answer's status is counted, so a run reports its non-2xx answers by code."""
    api = s3raw.RawS3API(ENDPOINT, signer.Signer("a", "b"), Meter())
    answers = iter([200, 403, 200])

    class Answer:
        body_bytes = 0

        def __init__(self) -> None:
            self.status = next(answers)

    async def request(head: bytes, body: Any = ()) -> Answer:
        return Answer()

    async def three_gets() -> None:
        await api.get_object("b", "k")
        with pytest.raises(s3raw.StatusError, match="403"):
            await api.get_object("b", "k")
        await api.get_object("b", "k")

    api.pool.request = request  # type: ignore[method-assign]
    asyncio.run(three_gets())
    assert api.statuses == {200: 2, 403: 1}
    assert api.signed == 3
