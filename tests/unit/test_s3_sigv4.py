"""proxy/s3/sigv4.py: requests signed by botocore's real signer, and AWS's published vectors.

botocore is driven as a real client: a boto3 S3 client whose ``before-send`` hook captures the
prepared request (what would go on the wire) and answers it, so nothing leaves the process.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.s3 import sigv4
from proxy.s3.errors import S3Error

ACCESS_KEY = "test:tester"
SECRET = "testing"
REGION = "us-east-1"
ODD_KEYS = [
    "plain.txt",
    "with space",
    "a+b",
    "100%",
    "p%2Fq",  # a literal %2F: botocore sends %252F
    "ünïcødé/☃/\U0001f600",
    "tilde~x",
    "eq=ual&amp",
    "dir/sub//o/",
    "!$'()*,;:@[]",
]


class _Body:
    """A minimal XML answer: every operation's parser accepts it."""

    def stream(self, **_: object):
        yield b"<R/>"


def _client(endpoint: str = "http://localhost:8080", style: str = "path", **config):
    """A boto3 client whose requests are captured in ``client.sent`` instead of sent."""
    s3 = config.pop("s3", {})
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": style, **s3}, retries={"max_attempts": 1}, **config),
    )
    client.sent = []

    def capture(request, **_):
        client.sent.append(request)
        return AWSResponse(request.url, 200, {}, _Body())

    client.meta.events.register("before-send", capture)
    return client


def _wire(request) -> tuple[str, str, str, CIMultiDict]:
    """(method, raw path, raw query, headers) as the proxy would receive the request."""
    url = urlsplit(request.url)
    headers = CIMultiDict()
    for name, value in request.headers.items():
        headers.add(name, value.decode() if isinstance(value, bytes) else value)
    if "Host" not in headers:  # as http.client adds it
        headers["Host"] = url.netloc
    return request.method, url.path, url.query, headers


def _check(method: str, path: str, query: str, headers, secret: str = SECRET, now=None):
    signed = sigv4.parse(method, path, query, headers)
    assert signed is not None
    sigv4.check_time(signed, time.time() if now is None else now)
    key = sigv4.verify(signed, secret, method, path, query, headers)
    cred = signed.credential
    assert key == sigv4.signing_key(secret, cred.date, cred.region, cred.service)
    return signed


def _only(client) -> tuple[str, str, str, CIMultiDict]:
    (request,) = client.sent
    client.sent.clear()
    return _wire(request)


def _error(call, *args, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as info:
        call(*args, **kwargs)
    return info.value


# --- AWS's published examples (S3 API reference, "sig-v4-header-based-auth") --------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_CREDENTIAL = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
AWS_NOW = 1369353600.0  # 2013-05-24T00:00:00Z


def test_aws_example_get_object() -> None:
    headers = CIMultiDict(
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": sigv4.EMPTY_SHA256,
            "x-amz-date": "20130524T000000Z",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={AWS_CREDENTIAL},"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        }
    )
    signed = _check("GET", "/test.txt", "", headers, AWS_SECRET, AWS_NOW)
    assert signed.scope == "20130524/us-east-1/s3/aws4_request"
    assert not signed.presigned


def test_aws_example_presigned_get() -> None:
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
        + quote(AWS_CREDENTIAL, safe="")
        + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    headers = {"Host": "examplebucket.s3.amazonaws.com"}
    signed = _check("GET", "/test.txt", query, headers, AWS_SECRET, AWS_NOW + 86400)
    assert (signed.presigned, signed.expires_s, signed.payload) == (True, 86400, "UNSIGNED-PAYLOAD")
    error = _error(sigv4.check_time, signed, AWS_NOW + 86401)
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    assert error.extra == {
        "X-Amz-Expires": "86400",
        "Expires": "2013-05-25T00:00:00Z",
        "ServerTime": "2013-05-25T00:00:01Z",
    }


def test_aws_example_chunked_seed_signature() -> None:
    """The seed of AWS's 66560-byte aws-chunked example (its chunks: test_s3_aws_chunked)."""
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": sigv4.STREAMING_SIGNED,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": "66824",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={AWS_CREDENTIAL},SignedHeaders="
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class,"
        "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    }
    signed = _check("PUT", "/examplebucket/chunkObject.txt", "", headers, AWS_SECRET, AWS_NOW)
    assert signed.payload == sigv4.STREAMING_SIGNED


# --- botocore as the client -----------------------------------------------------------------


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("key", ODD_KEYS)
def test_object_requests(style: str, key: str) -> None:
    client = _client(style=style)
    client.put_object(Bucket="bkt", Key=key, Body=b"hello", Metadata={"m": "x  y"})
    put = _check(*_only(client))
    assert put.payload == hashlib.sha256(b"hello").hexdigest()
    assert "x-amz-meta-m" in put.signed_headers
    for call in (client.get_object, client.head_object, client.delete_object):
        call(Bucket="bkt", Key=key)
        assert _check(*_only(client)).payload == sigv4.EMPTY_SHA256


def test_virtual_host_signs_the_path_without_the_bucket() -> None:
    client = _client(style="virtual")
    client.get_object(Bucket="bkt", Key="o")
    method, path, query, headers = _only(client)
    assert (path, headers["Host"]) == ("/o", "bkt.localhost:8080")
    _check(method, path, query, headers)
    rewritten = _error(sigv4.verify, sigv4.parse(method, "/bkt/o", query, headers), SECRET,
                       method, "/bkt/o", query, headers)  # fmt: skip
    assert rewritten.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("call", "params"),
    [
        ("list_objects_v2", {"Prefix": "a b+c/=~%&x", "Delimiter": "/", "MaxKeys": 7}),
        ("list_objects", {"Prefix": "ü", "Marker": "m+n"}),
        ("list_object_versions", {"Prefix": "p"}),
        ("create_multipart_upload", {"Key": "big file"}),
        ("upload_part", {"Key": "k", "PartNumber": 3, "UploadId": "x/y+z==", "Body": b"d"}),
        ("list_parts", {"Key": "k", "UploadId": "x/y+z=="}),
        ("list_multipart_uploads", {"Prefix": "p"}),
        ("get_bucket_location", {}),
        ("get_bucket_versioning", {}),
        ("delete_objects", {"Delete": {"Objects": [{"Key": "a"}, {"Key": "b c"}]}}),
    ],
)
def test_query_parameters(call: str, params: dict) -> None:
    client = _client()
    getattr(client, call)(Bucket="bkt", **params)
    method, path, query, headers = _only(client)
    assert query or call in ("get_bucket_versioning",)
    _check(method, path, query, headers)


def test_list_buckets() -> None:
    client = _client()
    client.list_buckets()
    _check(*_only(client))


def test_unsigned_payload() -> None:
    client = _client(s3={"payload_signing_enabled": False})
    client.put_object(Bucket="bkt", Key="k", Body=b"body")
    method, path, query, headers = _only(client)
    assert _check(method, path, query, headers).payload == sigv4.UNSIGNED_PAYLOAD


def test_streaming_unsigned_trailer() -> None:
    """boto3's default PutObject over https: aws-chunked with a CRC32 trailer."""
    client = _client("https://s3.example.com", style="virtual")
    client.put_object(Bucket="bkt", Key="k", Body=bytes(70000))
    method, path, query, headers = _only(client)
    signed = _check(method, path, query, headers)
    assert signed.payload == sigv4.STREAMING_UNSIGNED_TRAILER
    assert headers["x-amz-trailer"] == "x-amz-checksum-crc32"


def test_date_header_instead_of_x_amz_date() -> None:
    """botocore signs with Date when the request carries one (SigV4 allows either)."""
    request = AWSRequest("GET", "http://localhost:8080/bkt/o", headers={"Date": "x"})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    method, path, query, headers = _wire(request.prepare())
    assert "X-Amz-Date" not in headers
    signed = _check(method, path, query, headers)
    assert signed.amz_date[:8] == signed.credential.date


def test_repeated_and_spaced_headers() -> None:
    """Repeated headers joined with ',' and runs of spaces collapsed, as botocore signs."""
    request = AWSRequest("PUT", "http://localhost:8080/bkt/o", data=b"")
    request.headers["X-Amz-Meta-A"] = "one  two"
    request.headers["X-Amz-Meta-A"] = " three "  # HTTPHeaders appends: a second header
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    method, path, query, headers = _wire(request)  # prepare() would merge the two
    assert headers.getall("X-Amz-Meta-A") == ["one  two", " three "]
    _check(method, path, query, headers)
    del headers["X-Amz-Meta-A"]
    headers.add("X-Amz-Meta-A", "one two")
    assert _error(_check, method, path, query, headers).code == "SignatureDoesNotMatch"


@given(
    key=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
    prefix=st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
)
def test_any_key_and_query(key: str, prefix: str) -> None:
    """Whatever the key and parameter, a botocore-signed request verifies: built here the way
    botocore's serializer builds it (key quoted with '/~' safe, parameters percent-encoded)."""
    url = f"http://localhost:8080/bkt/{quote(key.encode(), safe='/~')}"
    url += f"?prefix={quote(prefix.encode(), safe='-_.~')}&uploads"
    request = AWSRequest("GET", url)
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    _check(*_wire(request.prepare()))


def test_sent_form_is_accepted_when_it_differs() -> None:
    """A client that signs the path and query exactly as it sent them (lower-case hex, a '+'
    left raw) still verifies: botocore's signer signs the URL it is given, untouched."""
    request = AWSRequest("GET", "http://localhost:8080/bkt/%c3%bc+x?prefix=a+b&z=%7e")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    _check(*_wire(request.prepare()))


def test_plus_in_the_query_is_a_space_and_in_the_path_a_plus() -> None:
    """As aiohttp reads them: so a '+' for a space verifies against '%20', and a signed '%2B'
    (a plus) cannot be swapped for a '+' (a space) on the way."""
    request = AWSRequest("GET", "http://localhost:8080/bkt/a%2Bb?prefix=x%20y")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    method, _, _, headers = _wire(request.prepare())
    _check(method, "/bkt/a+b", "prefix=x+y", headers)
    request = AWSRequest("GET", "http://localhost:8080/bkt/o?prefix=x%2By")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    method, path, _, headers = _wire(request.prepare())
    assert _error(_check, method, path, "prefix=x+y", headers).code == "SignatureDoesNotMatch"
    request = AWSRequest("GET", "http://localhost:8080/bkt/a%20b")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    method, _, query, headers = _wire(request.prepare())
    assert _error(_check, method, "/bkt/a+b", query, headers).code == "SignatureDoesNotMatch"


def test_raw_unicode_path_and_undecodable_bytes() -> None:
    """A client that sends a key unencoded signs its encoded form (the spec's); raw bytes that
    are no UTF-8 (aiohttp hands them on surrogate-escaped) are a mismatch, never a crash."""
    request = AWSRequest("GET", "http://localhost:8080/bkt/%C3%BC%20x")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    method, _, query, headers = _wire(request.prepare())
    _check(method, "/bkt/ü x", query, headers)
    error = _error(_check, method, "/bkt/\udcff", "a=\udcfe", headers)
    assert error.code == "SignatureDoesNotMatch"


# --- presigned URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("key", ["plain", "with space+plus", "ü/☃", "eq=ual~"])
def test_presigned_get_and_put(style: str, key: str) -> None:
    client = _client(style=style, signature_version="s3v4")
    for op in ("get_object", "put_object"):
        url = urlsplit(
            client.generate_presigned_url(op, Params={"Bucket": "bkt", "Key": key}, ExpiresIn=600)
        )
        method = "GET" if op == "get_object" else "PUT"
        signed = _check(method, url.path, url.query, {"Host": url.netloc})
        assert (signed.presigned, signed.expires_s) == (True, 600)
        assert signed.payload == sigv4.UNSIGNED_PAYLOAD
        tampered = url.query.replace("X-Amz-Expires=600", "X-Amz-Expires=601")
        error = _error(_check, method, url.path, tampered, {"Host": url.netloc})
        assert error.code == "SignatureDoesNotMatch"
        assert "X-Amz-Expires=601" in error.extra["CanonicalRequest"]


def test_presigned_expiry_and_future_dates() -> None:
    client = _client(signature_version="s3v4")
    url = urlsplit(client.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}, 60))
    signed = sigv4.parse("GET", url.path, url.query, {"Host": url.netloc})
    start = time.mktime(time.strptime(signed.amz_date, sigv4.AMZ_DATE_FORMAT)) - time.timezone
    sigv4.check_time(signed, start + 60)
    assert _error(sigv4.check_time, signed, start + 61).message == "Request has expired"
    sigv4.check_time(signed, start - sigv4.MAX_SKEW_S)  # a client clock a little ahead
    error = _error(sigv4.check_time, signed, start - sigv4.MAX_SKEW_S - 1)
    assert (error.code, error.message) == ("AccessDenied", "Request is not valid yet")


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (604801, "X-Amz-Expires must be less than a week"),
        (0, "X-Amz-Expires must be at least 1 second"),
    ],
)
def test_presign_expires_range(expires: int, message: str) -> None:
    """604801 as botocore signs it; 0, which botocore's CRT signer refuses, edited in."""
    client = _client(signature_version="s3v4")
    url = urlsplit(client.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}))
    if expires != 604801:
        url = url._replace(
            query=url.query.replace("X-Amz-Expires=3600", f"X-Amz-Expires={expires}")
        )
    else:
        url = urlsplit(
            client.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}, expires)
        )
    error = _error(sigv4.parse, "GET", url.path, url.query, {"Host": url.netloc})
    assert error.code == "AuthorizationQueryParametersError"
    assert error.message.startswith(message)


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "X-Amz-Expires must be non-negative"), ("1h", "X-Amz-Expires should be a number")],
)
def test_presign_expires_garbage(value: str, message: str) -> None:
    client = _client(signature_version="s3v4")
    url = urlsplit(client.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}))
    query = url.query.replace("X-Amz-Expires=3600", f"X-Amz-Expires={value}")
    error = _error(sigv4.parse, "GET", url.path, query, {"Host": url.netloc})
    assert (error.code, error.message) == ("AuthorizationQueryParametersError", message)


def test_presign_missing_parameter() -> None:
    client = _client(signature_version="s3v4")
    url = urlsplit(client.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}))
    query = "&".join(p for p in url.query.split("&") if not p.startswith("X-Amz-Date="))
    error = _error(sigv4.parse, "GET", url.path, query, {"Host": url.netloc})
    assert error.code == "AuthorizationQueryParametersError"


def test_unsigned_amz_headers_are_refused_on_presigned_urls() -> None:
    client = _client(signature_version="s3v4")
    url = urlsplit(client.generate_presigned_url("put_object", {"Bucket": "b", "Key": "k"}))
    headers = {"Host": url.netloc, "x-amz-meta-evil": "1", "X-Amz-Acl": "public-read"}
    error = _error(sigv4.parse, "PUT", url.path, url.query, headers)
    assert error.code == "AccessDenied"
    assert error.extra == {"HeadersNotSigned": "x-amz-acl, x-amz-meta-evil"}


# --- negative: header auth ------------------------------------------------------------------


def _signed_get(**config) -> tuple[str, str, str, CIMultiDict]:
    client = _client(**config)
    client.get_object(Bucket="bkt", Key="k", Range="bytes=0-9")
    return _only(client)


def test_wrong_secret() -> None:
    error = _error(_check, *_signed_get(), secret="not-testing")
    assert error.code == "SignatureDoesNotMatch" and error.status == 403
    assert error.extra["AWSAccessKeyId"] == ACCESS_KEY
    assert error.extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert error.extra["CanonicalRequest"].startswith("GET\n/bkt/k\n\n")
    assert error.extra["CanonicalRequestBytes"].startswith("47 45 54 0a")


@pytest.mark.parametrize("part", ["header", "path", "query", "method", "missing-header"])
def test_tampered(part: str) -> None:
    method, path, query, headers = _signed_get()
    if part == "header":
        headers["Range"] = "bytes=0-99"
    elif part == "path":
        path = "/bkt/K"
    elif part == "query":
        query = "versionId=1"
    elif part == "method":
        method = "DELETE"
    else:
        del headers["Range"]
    assert _error(_check, method, path, query, headers).code == "SignatureDoesNotMatch"


def test_unsigned_header_is_ignored_but_unsigned_amz_meta_is_refused() -> None:
    method, path, query, headers = _signed_get()
    headers["X-Other"] = "anything"  # not signed, not S3's: ignored, as S3 does
    _check(method, path, query, headers)
    headers["X-Amz-Meta-Late"] = "1"
    assert _error(_check, method, path, query, headers).code == "AccessDenied"


@pytest.mark.parametrize("offset_s", [-sigv4.MAX_SKEW_S - 1, sigv4.MAX_SKEW_S + 1])
def test_clock_skew(offset_s: int) -> None:
    method, path, query, headers = _signed_get()
    signed = sigv4.parse(method, path, query, headers)
    sent = time.mktime(time.strptime(signed.amz_date, sigv4.AMZ_DATE_FORMAT)) - time.timezone
    sigv4.check_time(signed, sent + (offset_s - 1 if offset_s > 0 else offset_s + 1))
    error = _error(sigv4.check_time, signed, sent + offset_s)
    assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)
    assert error.extra["RequestTime"] == signed.amz_date
    assert error.extra["MaxAllowedSkewMilliseconds"] == "900000"
    assert error.extra["ServerTime"].endswith("Z")


def test_missing_content_sha256() -> None:
    method, path, query, headers = _signed_get()
    del headers["x-amz-content-sha256"]
    error = _error(sigv4.parse, method, path, query, headers)
    assert (error.code, error.status) == ("InvalidRequest", 400)
    assert error.message == "Missing required header for this request: x-amz-content-sha256"


def test_bad_content_sha256() -> None:
    method, path, query, headers = _signed_get()
    headers["x-amz-content-sha256"] = "abc"
    error = _error(sigv4.parse, method, path, query, headers)
    assert error.code == "InvalidArgument"
    assert error.extra == {"ArgumentName": "x-amz-content-sha256", "ArgumentValue": "abc"}


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("/s3/", "/ec2/", "AuthorizationHeaderMalformed"),
        ("/aws4_request", "/aws5_request", "AuthorizationHeaderMalformed"),
        (f"Credential={ACCESS_KEY}/", "Credential=", "AuthorizationHeaderMalformed"),
        ("SignedHeaders=host;", "SignedHeaders=", "AuthorizationHeaderMalformed"),
        ("Signature=", "Signature=zz", "AuthorizationHeaderMalformed"),
        ("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 ", "InvalidArgument"),
    ],
)
def test_malformed_authorization(old: str, new: str, code: str) -> None:
    method, path, query, headers = _signed_get()
    assert old in headers["Authorization"]
    headers["Authorization"] = headers["Authorization"].replace(old, new)
    assert _error(sigv4.parse, method, path, query, headers).code == code


def test_credential_date_must_be_the_request_date() -> None:
    method, path, query, headers = _signed_get()
    headers["X-Amz-Date"] = "20000101T000000Z"
    error = _error(sigv4.parse, method, path, query, headers)
    assert error.code == "AuthorizationHeaderMalformed"
    assert error.message.startswith("Invalid credential date")


def test_bad_date() -> None:
    method, path, query, headers = _signed_get()
    headers["X-Amz-Date"] = "yesterday"
    assert _error(sigv4.parse, method, path, query, headers).code == "AccessDenied"


def test_check_region() -> None:
    signed = sigv4.parse(*_signed_get())
    sigv4.check_region(signed, REGION)
    error = _error(sigv4.check_region, signed, "eu-west-3")
    assert (error.code, error.extra) == ("AuthorizationHeaderMalformed", {"Region": "eu-west-3"})


# --- what is not SigV4 ------------------------------------------------------------------------


def test_anonymous() -> None:
    assert sigv4.parse("GET", "/bkt/k", "list-type=2", {"Host": "h"}) is None


def test_sigv4a_is_not_implemented() -> None:
    method, path, query, headers = _signed_get()
    auth = headers["Authorization"].replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")
    headers["Authorization"] = auth
    error = _error(sigv4.parse, method, path, query, headers)
    assert (error.code, error.status) == ("NotImplemented", 501)
    assert "Version 4" in error.message
    query = "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=a"
    assert _error(sigv4.parse, "GET", "/b/k", query, {"Host": "h"}).code == "NotImplemented"


def test_other_authorization_schemes() -> None:
    error = _error(sigv4.parse, "GET", "/b", "", {"Host": "h", "Authorization": "Bearer x"})
    assert (error.code, error.message) == ("InvalidArgument", "Unsupported Authorization Type")


def test_header_and_query_auth_together() -> None:
    method, path, query, headers = _signed_get()
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    error = _error(sigv4.parse, method, path, query, headers)
    assert error.code == "InvalidArgument"
    assert error.message.startswith("Only one auth mechanism allowed")
