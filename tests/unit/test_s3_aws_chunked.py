"""proxy/s3/aws_chunked.py: bodies from boto3 itself, AWS's published chunked example, and
signed bodies from the encoder below (checked against that example first)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import zlib
from collections.abc import Iterable

import boto3
import pytest
from botocore_answers import canned_response
from hypothesis import given
from hypothesis import strategies as st

from proxy.s3 import sigv4
from proxy.s3.aws_chunked import (
    MAX_CHUNK_BYTES,
    AwsChunkedDecoder,
    declared_trailers,
    decoded_length,
)
from proxy.s3.errors import S3Error

# AWS's example ("sigv4-streaming", Example: PUT Object): 66560 bytes of 'a' in 64 KiB chunks.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_DATE = "20130524T000000Z"
AWS_SCOPE = "20130524/us-east-1/s3/aws4_request"
AWS_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
AWS_CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
AWS_KEY = sigv4.signing_key(AWS_SECRET, "20130524", "us-east-1", "s3")
CRC = "x-amz-checksum-crc32"


def _sign(to_sign: str, key: bytes = AWS_KEY) -> str:
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def encode_signed(
    data: bytes, chunk_size: int, *, trailers: dict[str, str] | None = None, seed: str = AWS_SEED
) -> bytes:
    """An aws-chunked body with chunk signatures (and, given trailers, a trailer signature),
    as AWS's "sigv4-streaming" and "sigv4-streaming-trailers" pages describe it."""
    out = []
    previous = seed
    for start in [*range(0, len(data), chunk_size), len(data)]:
        chunk = data[start : start + chunk_size]
        previous = _sign(
            f"AWS4-HMAC-SHA256-PAYLOAD\n{AWS_DATE}\n{AWS_SCOPE}\n{previous}\n"
            f"{sigv4.EMPTY_SHA256}\n{hashlib.sha256(chunk).hexdigest()}"
        )
        out.append(b"%x;chunk-signature=%s\r\n" % (len(chunk), previous.encode()))
        if chunk or trailers is None:
            out.append(chunk + b"\r\n")
    if trailers is not None:
        lines = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
        signature = _sign(
            f"AWS4-HMAC-SHA256-TRAILER\n{AWS_DATE}\n{AWS_SCOPE}\n{previous}\n"
            f"{hashlib.sha256(lines.encode()).hexdigest()}"
        )
        out += [f"{n}:{v}\r\n".encode() for n, v in trailers.items()]
        out.append(f"x-amz-trailer-signature:{signature}\r\n\r\n".encode())
    return b"".join(out)


def _decoder(pieces: Iterable[bytes], payload: str, **kwargs) -> AwsChunkedDecoder:
    it = iter(pieces)

    async def next_piece() -> bytes:
        return next(it, b"")

    if payload != sigv4.STREAMING_UNSIGNED_TRAILER:
        kwargs = {
            "signing_key": AWS_KEY,
            "seed_signature": AWS_SEED,
            "amz_date": AWS_DATE,
            "scope": AWS_SCOPE,
        } | kwargs
    return AwsChunkedDecoder(next_piece, payload=payload, **kwargs)


async def _drain(decoder: AwsChunkedDecoder, got: list[bytes] | None = None) -> bytes:
    got = [] if got is None else got
    while piece := await decoder.read_piece():
        assert piece
        got.append(piece)
    assert await decoder.read_piece() == b""  # and it stays ended
    return b"".join(got)


def decode(pieces: Iterable[bytes], payload: str, **kwargs) -> tuple[bytes, dict[str, str]]:
    decoder = _decoder(pieces, payload, **kwargs)
    data = asyncio.run(_drain(decoder))
    return data, decoder.trailers


def decode_error(pieces: Iterable[bytes], payload: str, **kwargs) -> tuple[S3Error, bytes]:
    """The error, and the data handed on before it."""
    got: list[bytes] = []
    with pytest.raises(S3Error) as info:
        asyncio.run(_drain(_decoder(pieces, payload, **kwargs), got))
    return info.value, b"".join(got)


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --- AWS's example ----------------------------------------------------------------------------


def test_aws_example_signatures_and_length() -> None:
    body = encode_signed(b"a" * 66560, 65536)
    assert len(body) == 66824  # the example's Content-Length
    for signature in AWS_CHUNK_SIGNATURES:
        assert f"chunk-signature={signature}\r\n".encode() in body
    data, trailers = decode([body], sigv4.STREAMING_SIGNED, decoded_length=66560)
    assert (data, trailers) == (b"a" * 66560, {})


def test_seed_from_verify() -> None:
    """The decoder takes what sigv4.verify returns: the key, and the request's signature."""
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": AWS_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": sigv4.STREAMING_SIGNED,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": "66824",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
        "s3/aws4_request,SignedHeaders=content-encoding;content-length;host;"
        "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
        f"Signature={AWS_SEED}",
    }
    path = "/examplebucket/chunkObject.txt"
    signed = sigv4.parse("PUT", path, "", headers)
    key = sigv4.verify(signed, AWS_SECRET, "PUT", path, "", headers)
    data, _ = decode(
        [encode_signed(b"a" * 66560, 65536)],
        sigv4.STREAMING_SIGNED,
        decoded_length=66560,
        signing_key=key,
        seed_signature=signed.signature,
        amz_date=signed.amz_date,
        scope=signed.scope,
    )
    assert len(data) == 66560


# --- boto3's own bodies -------------------------------------------------------------------------


def _boto3_put(body: bytes, algorithm: str | None = None):
    """What boto3's default PutObject sends over https: STREAMING-UNSIGNED-PAYLOAD-TRAILER,
    botocore's AwsChunkedWrapper, a checksum trailer.  Returns (headers, raw body)."""
    client = boto3.client(
        "s3",
        endpoint_url="https://s3.example.com",
        region_name="us-east-1",
        aws_access_key_id="test:tester",
        aws_secret_access_key="testing",
    )
    sent = []

    def capture(request, **_):
        sent.append(request)
        return canned_response(request.url, 200, {}, b"<R/>")

    client.meta.events.register("before-send", capture)
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    client.put_object(Bucket="bkt", Key="k", Body=body, **extra)
    (request,) = sent
    headers = {k.lower(): v.decode() for k, v in request.headers.items() if isinstance(v, bytes)}
    return headers, request.body.read()


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [
        (None, _crc32),
        ("SHA256", lambda d: base64.b64encode(hashlib.sha256(d).digest()).decode()),
        ("SHA1", lambda d: base64.b64encode(hashlib.sha1(d).digest()).decode()),
        ("CRC32C", None),
        ("CRC64NVME", None),
    ],
)
@pytest.mark.parametrize("size", [0, 1, 8191, (1 << 20) + 1])
def test_boto3_bodies(algorithm, digest, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    headers, body = _boto3_put(data, algorithm)
    assert headers["x-amz-content-sha256"] == sigv4.STREAMING_UNSIGNED_TRAILER
    names = declared_trailers(headers["x-amz-trailer"])
    decoded, trailers = decode(
        [body[i : i + 65536] for i in range(0, len(body), 65536)],
        headers["x-amz-content-sha256"],
        decoded_length=int(headers["x-amz-decoded-content-length"]),
        trailer_names=names,
    )
    assert decoded == data
    assert list(trailers) == list(names) == [f"x-amz-checksum-{(algorithm or 'crc32').lower()}"]
    if digest is not None:
        assert trailers[names[0]] == digest(data)


# --- awkward splits -------------------------------------------------------------------------

SIGNED_DATA = bytes(range(256)) * 40 + b"tail"  # one 8 KiB chunk, one short one
SIGNED_TRAILERS = {CRC: _crc32(SIGNED_DATA)}
SIGNED_BODY = encode_signed(SIGNED_DATA, 8192, trailers=SIGNED_TRAILERS)
UNSIGNED_BODY = (
    b"2000\r\n" + SIGNED_DATA[:8192] + b"\r\n"
    b"%x\r\n" % (len(SIGNED_DATA) - 8192) + SIGNED_DATA[8192:] + b"\r\n"
    b"0\r\n" + f"{CRC}:{_crc32(SIGNED_DATA)}\r\n\r\n".encode()
)
CASES = {
    "signed-trailer": (SIGNED_BODY, sigv4.STREAMING_SIGNED_TRAILER, (CRC,)),
    "signed": (encode_signed(SIGNED_DATA, 8192), sigv4.STREAMING_SIGNED, ()),
    "unsigned-trailer": (UNSIGNED_BODY, sigv4.STREAMING_UNSIGNED_TRAILER, (CRC,)),
}


def _framing_offsets(body: bytes) -> list[int]:
    """Every offset outside the chunk data, plus each data edge: where a split is awkward."""
    offsets = set(range(len(body) + 1))
    start = 0
    while (line_end := body.find(b"\r\n", start)) >= 0:
        if b":" in body[start:line_end]:
            break
        size = int(body[start:line_end].partition(b";")[0], 16)
        data_start = line_end + 2
        if size == 0:
            break
        offsets -= set(range(data_start + 2, data_start + size - 1))
        start = data_start + size + 2
    return sorted(offsets)


@pytest.mark.parametrize("case", CASES)
def test_every_awkward_split(case: str) -> None:
    body, payload, names = CASES[case]
    offsets = _framing_offsets(body)
    assert len(offsets) < 500  # the data itself is skipped, its edges kept

    async def all_splits() -> None:
        for cut in offsets:
            for pieces in (
                [body[:cut], body[cut:]],
                [body[:cut], body[cut : cut + 3], body[cut + 3 :]],
            ):
                decoder = _decoder(
                    [p for p in pieces if p],
                    payload,
                    decoded_length=len(SIGNED_DATA),
                    trailer_names=names,
                )
                assert await _drain(decoder) == SIGNED_DATA, cut
                assert decoder.trailers == ({CRC: _crc32(SIGNED_DATA)} if names else {})

    asyncio.run(all_splits())


@pytest.mark.parametrize("case", CASES)
def test_one_byte_pieces(case: str) -> None:
    body, payload, names = CASES[case]
    pieces = [body[i : i + 1] for i in range(len(body))]
    data, _ = decode(pieces, payload, decoded_length=len(SIGNED_DATA), trailer_names=names)
    assert data == SIGNED_DATA


@given(case=st.sampled_from(sorted(CASES)), cuts=st.lists(st.integers(0, len(SIGNED_BODY))))
def test_random_splits(case: str, cuts: list[int]) -> None:
    body, payload, names = CASES[case]
    bounds = [0, *sorted(c for c in cuts if c <= len(body)), len(body)]
    pieces = [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    data, _ = decode(pieces, payload, decoded_length=len(SIGNED_DATA), trailer_names=names)
    assert data == SIGNED_DATA


# --- negative -----------------------------------------------------------------------------


def _signed(body: bytes, **kwargs) -> tuple[S3Error, bytes]:
    kwargs.setdefault("decoded_length", len(SIGNED_DATA))
    kwargs.setdefault("trailer_names", (CRC,))
    return decode_error([body], sigv4.STREAMING_SIGNED_TRAILER, **kwargs)


def test_tampered_data_is_never_handed_on() -> None:
    body = bytearray(SIGNED_BODY)
    body[body.index(b"tail")] ^= 1  # in the second chunk
    error, before = _signed(bytes(body))
    assert error.code == "SignatureDoesNotMatch"
    assert before == SIGNED_DATA[:8192]  # the first chunk, checked; none of the second
    body = bytearray(SIGNED_BODY)
    body[200] ^= 1  # in the first chunk
    error, before = _signed(bytes(body))
    assert (error.code, before) == ("SignatureDoesNotMatch", b"")


def test_tampered_chunk_signature() -> None:
    i = SIGNED_BODY.index(b"chunk-signature=") + len("chunk-signature=")
    body = (
        SIGNED_BODY[:i] + (b"0" if SIGNED_BODY[i : i + 1] != b"0" else b"1") + SIGNED_BODY[i + 1 :]
    )
    error, before = _signed(body)
    assert (error.code, before) == ("SignatureDoesNotMatch", b"")


def test_reordered_chunks() -> None:
    data = bytes(9000) + bytes([1]) * 9000 + b"end"
    body = encode_signed(data, 9000)
    first = body.index(b"\r\n", body.index(b"\r\n") + 2) + 2  # end of chunk 1
    second = body.index(b"\r\n", body.index(b"\r\n", first) + 2) + 2  # end of chunk 2
    swapped = body[first:second] + body[:first] + body[second:]
    error, _ = decode_error([swapped], sigv4.STREAMING_SIGNED, decoded_length=len(data))
    assert error.code == "SignatureDoesNotMatch"


def test_tampered_or_missing_trailer() -> None:
    body = SIGNED_BODY.replace(SIGNED_TRAILERS[CRC].encode(), b"AAAAAA==")
    assert _signed(body)[0].code == "SignatureDoesNotMatch"
    start = SIGNED_BODY.index(b"x-amz-trailer-signature:")
    no_signature = SIGNED_BODY[:start] + b"\r\n"
    assert _signed(no_signature)[0].code == "IncompleteBody"
    undeclared = _signed(SIGNED_BODY, trailer_names=("x-amz-checksum-sha256",))[0]
    assert undeclared.code in ("MalformedTrailerError", "InvalidRequest")
    crc_line = SIGNED_BODY.index(CRC.encode())
    missing = SIGNED_BODY[:crc_line] + SIGNED_BODY[SIGNED_BODY.index(b"x-amz-trailer-sig") :]
    assert _signed(missing)[0].code in ("MalformedTrailerError", "InvalidRequest")


def test_unsigned_trailer_checks() -> None:
    ok = {"decoded_length": len(SIGNED_DATA), "trailer_names": (CRC,)}
    signature_line = UNSIGNED_BODY[:-2] + b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n"
    for body in (signature_line, UNSIGNED_BODY.replace(CRC.encode(), b"x-amz-checksum-sha1")):
        error, _ = decode_error([body], sigv4.STREAMING_UNSIGNED_TRAILER, **ok)
        assert error.code in ("MalformedTrailerError", "InvalidRequest")
    bad_crlf = UNSIGNED_BODY.replace(SIGNED_DATA[:8192] + b"\r\n", SIGNED_DATA[:8192] + b"\n\n")
    error, _ = decode_error([bad_crlf], sigv4.STREAMING_UNSIGNED_TRAILER, **ok)
    assert error.code == "IncompleteBody"


@pytest.mark.parametrize("case", CASES)
def test_truncated(case: str) -> None:
    body, payload, names = CASES[case]
    for cut in sorted({1, 5, 60, 8300, len(body) - 30, len(body) - 3}):
        error, _ = decode_error(
            [body[:cut]], payload, decoded_length=len(SIGNED_DATA), trailer_names=names
        )
        assert (error.code, error.status) == ("IncompleteBody", 400), cut


def test_a_clean_end_may_omit_the_final_crlf() -> None:
    """Swift's s3api accepts the end of the body in place of the last empty line."""
    for body, payload, names in CASES.values():
        data, _ = decode([body[:-2]], payload, decoded_length=len(SIGNED_DATA), trailer_names=names)
        assert data == SIGNED_DATA


@pytest.mark.parametrize("case", CASES)
def test_extra_bytes(case: str) -> None:
    body, payload, names = CASES[case]
    error, _ = decode_error(
        [body, b"more"], payload, decoded_length=len(SIGNED_DATA), trailer_names=names
    )
    assert error.code in ("InvalidRequest", "IncompleteBody")


@pytest.mark.parametrize("case", CASES)
def test_wrong_decoded_length(case: str) -> None:
    body, payload, names = CASES[case]
    for declared in (len(SIGNED_DATA) + 1, len(SIGNED_DATA) - 1, 100):
        error, _ = decode_error([body], payload, decoded_length=declared, trailer_names=names)
        assert error.code == "IncompleteBody"
        assert error.extra["NumberBytesExpected"] == str(declared)


def test_chunk_sizes() -> None:
    small_first = encode_signed(bytes(20000), 4096)
    error, _ = decode_error([small_first], sigv4.STREAMING_SIGNED, decoded_length=20000)
    assert error.code in ("InvalidChunkSizeError", "InvalidRequest")
    assert error.extra == {"Chunk": "1", "BadChunkSize": "4096"}
    huge = b"%x;chunk-signature=%s\r\n" % (MAX_CHUNK_BYTES + 1, b"0" * 64)
    error, _ = decode_error([huge], sigv4.STREAMING_SIGNED, decoded_length=None)
    assert error.code == "InvalidRequest"


@pytest.mark.parametrize(
    "header",
    [b"zz;chunk-signature=" + b"0" * 64, b"0x10;chunk-signature=" + b"0" * 64, b"10", b" 10"],
)
def test_bad_chunk_headers(header: bytes) -> None:
    error, _ = decode_error([header + b"\r\n"], sigv4.STREAMING_SIGNED, decoded_length=16)
    assert error.code in ("IncompleteBody", "SignatureDoesNotMatch")


def test_header_line_and_trailers_are_bounded() -> None:
    error, _ = decode_error([b"1" * 5000], sigv4.STREAMING_SIGNED, decoded_length=None)
    assert error.code == "IncompleteBody"
    many = b"0\r\n" + b"".join(b"x-amz-meta-%d:b\r\n" % i for i in range(2000)) + b"\r\n"
    error, _ = decode_error([many], sigv4.STREAMING_UNSIGNED_TRAILER, decoded_length=0)
    assert error.code in ("MalformedTrailerError", "InvalidRequest")
    assert "more than 16384 bytes" in error.message


def test_junk_after_the_end_is_not_read_on() -> None:
    """Refused at the first piece past the end, not gathered up to the end of the stream."""
    body, payload, names = CASES["signed-trailer"]
    pieces = iter([body, b"junk", b"never read"])
    error, _ = decode_error(pieces, payload, decoded_length=len(SIGNED_DATA), trailer_names=names)
    assert error.code == "InvalidRequest"
    assert next(pieces) == b"never read"


def test_declared_trailers() -> None:
    assert declared_trailers(None) == ()
    assert declared_trailers("X-Amz-Checksum-CRC32, ") == ("x-amz-checksum-crc32",)


def test_decoded_length_header() -> None:
    assert decoded_length("66560") == 66560
    with pytest.raises(S3Error) as info:
        decoded_length(None)
    assert info.value.code == "MissingContentLength"
    for bad in ("-1", "1e3", "²", ""):
        with pytest.raises(S3Error) as info:
            decoded_length(bad)
        assert info.value.code == "InvalidArgument"


def test_trailer_declared_for_a_payload_without_trailers() -> None:
    with pytest.raises(S3Error) as info:
        _decoder([], sigv4.STREAMING_SIGNED, decoded_length=0, trailer_names=(CRC,))
    assert info.value.code == "InvalidRequest"
