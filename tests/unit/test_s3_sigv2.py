"""proxy/s3/sigv2.py: requests signed by botocore's real V2 signers and boto3's client, and
the examples of AWS's "Signing and authenticating REST requests" (Signature Version 2).

botocore is driven as a real client, as in test_s3_sigv4.py: a boto3 S3 client whose
``before-send`` hook captures the prepared request and answers it, so nothing leaves the
process.
"""

from __future__ import annotations

import base64
import hmac
import time
from email.utils import formatdate
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.s3 import sigv2
from proxy.s3.errors import S3Error

ACCESS_KEY = "test:tester"
SECRET = "testing"
REGION = "us-east-1"
DOMAINS = ("localhost", "s3.example.com", "s3.amazonaws.com")
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
    "q?acl",  # a key that looks like a sub-resource: '?' is sent as %3F
]


class _Body:
    """A minimal XML answer: every operation's parser accepts it."""

    def stream(self, **_: object):
        yield b"<R/>"


def _client(endpoint: str | None = "http://localhost:8080", style: str = "path", **config):
    """A boto3 client whose requests are captured in ``client.sent`` instead of sent; V2
    (``signature_version="s3"``) unless ``config`` says otherwise."""
    config.setdefault("signature_version", "s3")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": style}, retries={"max_attempts": 1}, **config),
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


def _host_bucket(headers) -> str | None:
    """The bucket of a virtual-host-style Host, as the S3 front end finds it."""
    name = headers["Host"].rsplit(":", 1)[0]
    for domain in DOMAINS:
        if name.endswith("." + domain):
            return name[: -len(domain) - 1]
    return None


def _check(method, path, query, headers, secret=SECRET, now=None, bucket=...) -> sigv2.SignedV2:
    """parse -> check_time -> verify, as the S3 front end runs them."""
    signed = sigv2.parse(query, headers)
    assert signed is not None
    sigv2.check_time(signed, headers, time.time() if now is None else now)
    bucket = _host_bucket(headers) if bucket is ... else bucket
    sigv2.verify(signed, secret, method, path, query, headers, bucket)
    return signed


def _only(client) -> tuple[str, str, str, CIMultiDict]:
    (request,) = client.sent
    client.sent.clear()
    return _wire(request)


def _error(call, *args, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as info:
        call(*args, **kwargs)
    return info.value


def _sign(string_to_sign: str, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.digest(secret.encode(), string_to_sign.encode(), "sha1")).decode()


# --- AWS's published examples -----------------------------------------------------------------
# The current page names the bucket "awsexamplebucket1" but kept the signatures computed for
# the original "johnsmith": these are those originals (each signature checked against the
# page).  Its DELETE example (x-amz-date's value in the Date slot, no x-amz-date line) is left
# out: it contradicts the page's own rule, which S3, Swift's s3api and boto follow (an empty
# Date slot, x-amz-date among the x-amz-* lines; test_x_amz_date_empties_the_date_slot).

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _aws(method, path, query, headers, signature, bucket, date) -> sigv2.SignedV2:
    headers = CIMultiDict(headers)
    headers["Date"] = date
    headers["Authorization"] = f"AWS {AWS_KEY}:{signature}"
    now = sigv2._http_date(date)
    return _check(method, path, query, headers, AWS_SECRET, now, bucket)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "signature", "bucket", "date"),
    [
        pytest.param(
            "GET", "/photos/puppy.jpg", "", {"Host": "johnsmith.s3.amazonaws.com"},
            "bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "johnsmith", "Tue, 27 Mar 2007 19:36:42 +0000",
            id="object-get",
        ),
        pytest.param(
            "PUT", "/photos/puppy.jpg", "",
            {"Content-Type": "image/jpeg", "Content-Length": "94328",
             "Host": "johnsmith.s3.amazonaws.com"},
            "MyyxeRY7whkBe+bq8fHCL/2kKUg=", "johnsmith", "Tue, 27 Mar 2007 21:15:45 +0000",
            id="object-put",
        ),
        pytest.param(
            "GET", "/", "prefix=photos&max-keys=50&marker=puppy",
            {"User-Agent": "Mozilla/5.0", "Host": "johnsmith.s3.amazonaws.com"},
            "htDYFYduRNen8P9ZfE/s9SuKy0U=", "johnsmith", "Tue, 27 Mar 2007 19:42:41 +0000",
            id="list",
        ),
        pytest.param(
            "GET", "/", "acl", {"Host": "johnsmith.s3.amazonaws.com"},
            "c2WLPFtWHVgbEmeEG93a4cG37dM=", "johnsmith", "Tue, 27 Mar 2007 19:44:46 +0000",
            id="fetch-acl",
        ),
        pytest.param(
            "PUT", "/db-backup.dat.gz", "",
            [("User-Agent", "curl/7.15.5"), ("Host", "static.johnsmith.net:8080"),
             ("x-amz-acl", "public-read"), ("content-type", "application/x-download"),
             ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
             ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
             ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
             ("X-Amz-Meta-FileChecksum", "0x02661779"),
             ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
             ("Content-Disposition", "attachment; filename=database.dat"),
             ("Content-Encoding", "gzip"), ("Content-Length", "5913339")],
            "ilyl83RwaSoYIEdixDQcA4OnAnc=", "static.johnsmith.net",
            "Tue, 27 Mar 2007 21:06:08 +0000",
            id="upload-cname-metadata",
        ),
        pytest.param(
            "GET", "/", "", {"Host": "s3.amazonaws.com"},
            "qGdzdERIC03wnaRNKh6OqZehG9s=", None, "Wed, 28 Mar 2007 01:29:59 +0000",
            id="list-all-my-buckets",
        ),
        pytest.param(
            "GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", "", {"Host": "s3.amazonaws.com"},
            "DNEZGsoieTZ92F3bUfSPQcbGmlM=", None, "Wed, 28 Mar 2007 01:49:49 +0000",
            id="unicode-keys-as-sent",
        ),
    ],
)  # fmt: skip
def test_aws_examples(method, path, query, headers, signature, bucket, date) -> None:
    signed = _aws(method, path, query, headers, signature, bucket, date)
    assert (signed.access_key, signed.presigned, signed.expires) == (AWS_KEY, False, None)


def test_aws_example_unicode_key_is_signed_as_sent() -> None:
    """The path's encoding, hex case included, is signed literally: the same key re-encoded
    in upper case is another string to sign."""
    error = _error(
        _aws, "GET", "/dictionary/fran%C3%A7ais/pr%C3%A9f%C3%A8re", "",
        {"Host": "s3.amazonaws.com"}, "DNEZGsoieTZ92F3bUfSPQcbGmlM=", None,
        "Wed, 28 Mar 2007 01:49:49 +0000",
    )  # fmt: skip
    assert error.code == "SignatureDoesNotMatch"
    assert error.extra["StringToSign"].endswith("/dictionary/fran%C3%A7ais/pr%C3%A9f%C3%A8re")


def test_aws_example_query_string_authentication() -> None:
    query = (
        f"AWSAccessKeyId={AWS_KEY}&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620"
    )
    headers = {"Host": "johnsmith.s3.amazonaws.com"}
    signed = _check("GET", "/photos/puppy.jpg", query, headers, AWS_SECRET, 1175139620)
    assert (signed.presigned, signed.expires) == (True, 1175139620)
    assert signed.signature == "NpgCjnDzrM+WFzoENXmpNDUsSn8="
    error = _error(sigv2.check_time, signed, headers, 1175139621)
    assert (error.code, error.status, error.message) == ("AccessDenied", 403, "Request has expired")
    assert error.extra == {"Expires": "2007-03-29T03:40:20Z", "ServerTime": "2007-03-29T03:40:21Z"}


# --- botocore's signers -----------------------------------------------------------------------


def _hmac_v1(method: str, url: str, headers=None, body: bytes = b""):
    request = AWSRequest(method, url, headers=headers or {}, data=body)
    HmacV1Auth(Credentials(ACCESS_KEY, SECRET)).add_auth(request)
    return request


@pytest.mark.parametrize("key", ODD_KEYS)
def test_hmac_v1_auth_odd_keys(key: str) -> None:
    url = f"http://localhost:8080/bkt/{quote(key.encode(), safe='/~')}"
    request = _hmac_v1("GET", url)
    method, path, query, headers = _wire(request.prepare())
    assert headers["Authorization"].startswith("AWS test:tester:")
    _check(method, path, query, headers)


def test_hmac_v1_query_auth() -> None:
    request = AWSRequest("GET", "http://localhost:8080/bkt/some%20key?versionId=v1")
    HmacV1QueryAuth(Credentials(ACCESS_KEY, SECRET), expires=60).add_auth(request)
    method, path, query, headers = _wire(request.prepare())
    assert "Authorization" not in headers
    signed = _check(method, path, query, headers)
    assert signed.presigned and signed.access_key == ACCESS_KEY
    assert time.time() < signed.expires <= time.time() + 60
    tampered = query.replace("versionId=v1", "versionId=v2")
    assert _error(_check, method, path, tampered, headers).code == "SignatureDoesNotMatch"


def test_x_amz_headers_repeated_and_spaced() -> None:
    """x-amz-* values trimmed and repeated headers joined with ',' (inner spaces kept)."""
    request = AWSRequest("PUT", "http://localhost:8080/bkt/o", data=b"")
    request.headers["X-Amz-Meta-A"] = " one  two "
    request.headers["X-Amz-Meta-A"] = "three"  # HTTPHeaders appends: a second header
    request.headers["Content-Type"] = " text/plain "
    HmacV1Auth(Credentials(ACCESS_KEY, SECRET)).add_auth(request)
    method, path, query, headers = _wire(request)
    assert headers.getall("X-Amz-Meta-A") == [" one  two ", "three"]
    _check(method, path, query, headers)
    headers.popall("X-Amz-Meta-A")
    headers.add("X-Amz-Meta-A", "one two,three")
    assert _error(_check, method, path, query, headers).code == "SignatureDoesNotMatch"


def test_x_amz_date_empties_the_date_slot() -> None:
    """S3's rule (and Swift's, and boto 2's): with x-amz-date sent, the Date slot is empty;
    botocore and MinIO's form, the Date header in its slot anyway, verifies too."""
    now = formatdate(usegmt=True)
    headers = CIMultiDict({"Host": "localhost:8080", "x-amz-date": now})
    headers["Authorization"] = f"AWS {ACCESS_KEY}:" + _sign(
        f"DELETE\n\n\n\nx-amz-date:{now}\n/bkt/o"
    )
    _check("DELETE", "/bkt/o", "", headers)
    request = _hmac_v1("DELETE", "http://localhost:8080/bkt/o", {"X-Amz-Date": now})
    method, path, query, headers = _wire(request.prepare())
    assert headers["Date"] and headers["X-Amz-Date"] == now
    _check(method, path, query, headers)


def test_x_amz_date_wins_for_the_time_check() -> None:
    request = _hmac_v1(
        "GET", "http://localhost:8080/bkt/o", {"X-Amz-Date": "Tue, 27 Mar 2007 21:20:26 +0000"}
    )
    _, _, query, headers = _wire(request.prepare())
    signed = sigv2.parse(query, headers)
    error = _error(sigv2.check_time, signed, headers, time.time())
    assert error.code == "RequestTimeTooSkewed"
    assert error.extra["RequestTime"] == "Tue, 27 Mar 2007 21:20:26 +0000"


@pytest.mark.parametrize(
    ("url", "signed_resource"),
    [
        ("http://localhost:8080/bkt/o?versionId=a+b", "/bkt/o?versionId=a b"),  # '+': a space
        ("http://localhost:8080/bkt/o?versionId=a%2Bb%20c", "/bkt/o?versionId=a+b c"),
        ("http://localhost:8080/bkt/o?uploads=", "/bkt/o?uploads="),  # as botocore
        ("http://localhost:8080/bkt/o?uploads=", "/bkt/o?uploads"),  # as S3
        ("http://localhost:8080/bkt?acl", "/bkt/?acl"),  # botocore's bucket root
        ("http://localhost:8080/bkt?acl", "/bkt?acl"),  # the path as sent
        (
            "http://localhost:8080/bkt/o?response-content-type=text%2Fplain%3B%20x%3D1&prefix=z",
            "/bkt/o?response-content-type=text/plain; x=1",
        ),
    ],
)
def test_sub_resource_forms(url: str, signed_resource: str) -> None:
    """The variants the module docstring lists each name the same resource."""
    date = formatdate(usegmt=True)
    url = urlsplit(url)
    headers = CIMultiDict({"Host": url.netloc, "Date": date})
    signature = _sign(f"GET\n\n\n{date}\n{signed_resource}")
    headers["Authorization"] = f"AWS {ACCESS_KEY}:{signature}"
    _check("GET", url.path, url.query, headers)


def test_a_plus_cannot_be_swapped_for_a_space() -> None:
    """What is signed is what the front end reads (aiohttp: '+' in a query is a space): a
    signer that signed a raw '+' literally meant a plus the front end would not see."""
    request = _hmac_v1("GET", "http://localhost:8080/bkt/o?versionId=a+b")
    method, path, query, headers = _wire(request.prepare())
    assert _error(_check, method, path, query, headers).code == "SignatureDoesNotMatch"
    request = _hmac_v1("GET", "http://localhost:8080/bkt/o?versionId=a%2Bb")
    method, path, query, headers = _wire(request.prepare())
    _check(method, path, query, headers)
    assert _error(_check, method, path, "versionId=a+b", headers).code == "SignatureDoesNotMatch"


def test_sub_resources_are_sorted_and_others_left_out() -> None:
    request = _hmac_v1("GET", "http://localhost:8080/bkt/o?versionId=3&prefix=p&acl&max-keys=2")
    method, path, query, headers = _wire(request.prepare())
    signed = _check(method, path, query, headers)
    (to_sign, *_) = sigv2.string_to_sign_candidates(signed, method, path, query, headers, None)
    assert to_sign.endswith("\n/bkt/o?acl&versionId=3")
    _check(method, path, query.replace("prefix=p", "prefix=q"), headers)  # V2 leaves it out
    tampered = query.replace("versionId=3", "versionId=4")
    assert _error(_check, method, path, tampered, headers).code == "SignatureDoesNotMatch"


@given(
    key=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
    value=st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
)
def test_any_key_and_sub_resource(key: str, value: str) -> None:
    """Whatever the key and sub-resource value, a botocore-signed request verifies: built as
    botocore's serializer builds it (key quoted with '/~' safe, values percent-encoded)."""
    url = f"http://localhost:8080/bkt/{quote(key.encode(), safe='/~')}"
    url += f"?response-content-disposition={quote(value.encode(), safe='-_.~')}&uploads"
    _check(*_wire(_hmac_v1("GET", url).prepare()))


# --- boto3's client with signature_version="s3" -----------------------------------------------


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("key", ODD_KEYS)
def test_object_requests(style: str, key: str) -> None:
    client = _client(style=style)
    client.put_object(
        Bucket="bkt", Key=key, Body=b"hello", Metadata={"m": "x  y"}, ContentType="text/plain"
    )
    method, path, query, headers = _only(client)
    assert headers["Authorization"].startswith("AWS ")
    assert (headers["Content-Type"], headers["x-amz-meta-m"]) == ("text/plain", "x  y")
    _check(method, path, query, headers)
    for call in (client.get_object, client.head_object, client.delete_object):
        call(Bucket="bkt", Key=key)
        _check(*_only(client))


def test_virtual_host_signs_the_bucket_from_the_host() -> None:
    client = _client(style="virtual")
    client.get_object(Bucket="bkt", Key="o")
    method, path, query, headers = _only(client)
    assert (path, headers["Host"]) == ("/o", "bkt.localhost:8080")
    _check(method, path, query, headers)
    error = _error(_check, method, path, query, headers, bucket=None)
    assert error.code == "SignatureDoesNotMatch"
    assert error.extra["StringToSign"].endswith("\n/o")
    error = _error(_check, method, path, query, headers, bucket="other")
    assert error.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize(
    ("call", "params"),
    [
        ("list_objects_v2", {"Prefix": "a b+c/=~%&x", "Delimiter": "/", "MaxKeys": 7}),
        ("list_objects", {"Prefix": "ü", "Marker": "m+n"}),
        ("list_object_versions", {"Prefix": "p"}),
        ("create_multipart_upload", {"Key": "big file"}),
        ("upload_part", {"Key": "k", "PartNumber": 3, "UploadId": "x/y+z==", "Body": b"d"}),
        ("list_parts", {"Key": "k", "UploadId": "x/y+z=="}),
        ("abort_multipart_upload", {"Key": "k", "UploadId": "x/y+z=="}),
        ("list_multipart_uploads", {"Prefix": "p"}),
        ("get_bucket_location", {}),
        ("get_bucket_versioning", {}),
        ("get_bucket_acl", {}),
        ("get_object_acl", {"Key": "k"}),
        ("get_object_tagging", {"Key": "k", "VersionId": "v 1"}),
        ("delete_objects", {"Delete": {"Objects": [{"Key": "a"}, {"Key": "b c"}]}}),
        ("head_bucket", {}),
        ("create_bucket", {}),
        ("delete_bucket", {}),
        (
            "get_object",
            {
                "Key": "k",
                "VersionId": "v+1",
                "ResponseContentDisposition": 'attachment; filename="a b+c.txt"',
                "ResponseContentType": "text/plain; charset=utf-8",
                "ResponseCacheControl": "no-cache",
                "ResponseExpires": 0,
            },
        ),
    ],
)
def test_bucket_and_sub_resource_requests(style: str, call: str, params: dict) -> None:
    client = _client(style=style)
    getattr(client, call)(Bucket="bkt", **params)
    _check(*_only(client))


def test_list_buckets() -> None:
    client = _client()
    client.list_buckets()
    _check(*_only(client))


def test_copy_object_signs_the_copy_source() -> None:
    client = _client()
    client.copy_object(Bucket="bkt", Key="dst", CopySource={"Bucket": "src", "Key": "a b"})
    method, path, query, headers = _only(client)
    _check(method, path, query, headers)
    headers["x-amz-copy-source"] = "other/secret"
    assert _error(_check, method, path, query, headers).code == "SignatureDoesNotMatch"


# --- presigned URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [None, "http://localhost:8080"])
@pytest.mark.parametrize("key", ["plain", "with space+plus", "ü/☃", "eq=ual~", "q?acl"])
def test_default_presigned_get_and_put(endpoint: str | None, key: str) -> None:
    """boto3's default for us-east-1: V2 (``AWSAccessKeyId=``), virtual-host style on AWS's
    endpoint, path style on a custom one."""
    client = _client(endpoint, signature_version=None)
    for op, method in (("get_object", "GET"), ("put_object", "PUT")):
        url = urlsplit(
            client.generate_presigned_url(op, Params={"Bucket": "bkt", "Key": key}, ExpiresIn=600)
        )
        assert "AWSAccessKeyId=test%3Atester" in url.query
        headers = {"Host": url.netloc}
        signed = _check(method, url.path, url.query, headers)
        assert signed.presigned and signed.access_key == ACCESS_KEY
        assert time.time() + 590 < signed.expires <= time.time() + 600
        tampered = url.query.replace(f"Expires={signed.expires}", f"Expires={signed.expires + 1}")
        error = _error(_check, method, url.path, tampered, headers)
        assert error.code == "SignatureDoesNotMatch"
        assert f"\n{signed.expires + 1}\n" in error.extra["StringToSign"]
        other = "PUT" if method == "GET" else "GET"
        assert _error(_check, other, url.path, url.query, headers).code == "SignatureDoesNotMatch"


def test_presigned_put_with_signed_headers() -> None:
    """Content-Type and x-amz-meta-* are signed: the PUT must send the headers signed."""
    client = _client(signature_version=None)
    params = {"Bucket": "bkt", "Key": "k", "ContentType": "text/plain", "Metadata": {"a": "b"}}
    url = urlsplit(client.generate_presigned_url("put_object", Params=params))
    headers = CIMultiDict({"Host": url.netloc, "Content-Type": "text/plain", "x-amz-meta-a": "b"})
    _check("PUT", url.path, url.query, headers)
    headers["x-amz-meta-a"] = "evil"
    assert _error(_check, "PUT", url.path, url.query, headers).code == "SignatureDoesNotMatch"
    del headers["x-amz-meta-a"]
    headers["Content-Type"] = "text/html"
    assert _error(_check, "PUT", url.path, url.query, headers).code == "SignatureDoesNotMatch"


def test_presigned_expiry() -> None:
    client = _client(signature_version=None)
    url = urlsplit(client.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}, 60))
    signed = sigv2.parse(url.query, {"Host": url.netloc})
    sigv2.check_time(signed, {}, signed.expires)  # the last second is still good
    error = _error(sigv2.check_time, signed, {}, signed.expires + 1)
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    assert set(error.extra) == {"Expires", "ServerTime"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("AWSAccessKeyId=a&Signature=s", "Query-string authentication requires"),
        ("AWSAccessKeyId=a&Expires=1", "Query-string authentication requires"),
        ("Signature=s&Expires=1", "Query-string authentication requires"),
        ("AWSAccessKeyId=&Signature=s&Expires=1", "Query-string authentication requires"),
        ("AWSAccessKeyId=a&Signature=s&Expires=soon", "Invalid date (should be seconds"),
        ("AWSAccessKeyId=a&Signature=s&Expires=-1", "Invalid date (should be seconds"),
        ("AWSAccessKeyId=a&Signature=s&Expires=2147483648", "Invalid date (should be seconds"),
    ],
)
def test_presign_parameters(query: str, message: str) -> None:
    error = _error(sigv2.parse, query, {"Host": "h"})
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message.startswith(message)


def test_expires_is_signed_as_sent() -> None:
    signature = _sign("GET\n\n\n01796011809\n/bkt/k")
    query = f"AWSAccessKeyId=k&Signature={quote(signature, safe='')}&Expires=01796011809"
    signed = _check("GET", "/bkt/k", query, {"Host": "localhost:8080"}, now=1796011809)
    assert signed.expires == 1796011809


@given(st.text(max_size=60))
def test_any_date_header_is_an_answer(date: str) -> None:
    """A Date the server cannot read is AccessDenied (or skew), never a crash."""
    signed = sigv2.parse("", {"Authorization": "AWS a:b"})
    try:
        sigv2.check_time(signed, {"Date": date}, time.time())
    except S3Error as error:
        assert error.code in ("AccessDenied", "RequestTimeTooSkewed")


def test_presigned_signature_with_a_raw_plus() -> None:
    """A client that left base64's '+' unencoded: the form decoding made it a space."""
    date = "1796011809"
    signature = _sign(f"GET\n\n\n{date}\n/bkt/k")
    query = f"AWSAccessKeyId=test%3Atester&Signature={signature}&Expires={date}"
    assert sigv2.parse(query, {}).signature == signature
    _check("GET", "/bkt/k", query, {"Host": "localhost:8080"}, now=int(date))


# --- negatives: header auth -------------------------------------------------------------------


def _signed_get() -> tuple[str, str, str, CIMultiDict]:
    client = _client()
    client.get_object(Bucket="bkt", Key="k", Range="bytes=0-9", VersionId="7")
    return _only(client)


def test_wrong_secret() -> None:
    method, path, query, headers = _signed_get()
    error = _error(_check, method, path, query, headers, secret="not-testing")
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert list(error.extra) == [
        "AWSAccessKeyId",
        "StringToSign",
        "SignatureProvided",
        "StringToSignBytes",
    ]
    assert error.extra["AWSAccessKeyId"] == ACCESS_KEY
    assert error.extra["SignatureProvided"] == headers["Authorization"].rsplit(":", 1)[1]
    to_sign = error.extra["StringToSign"]
    assert to_sign == f"GET\n\n\n{headers['Date']}\nx-amz-checksum-mode:ENABLED\n/bkt/k?versionId=7"
    assert error.extra["StringToSignBytes"].startswith("47 45 54 0a 0a 0a")


@pytest.mark.parametrize(
    "part", ["path", "sub-resource", "method", "date", "content-type", "amz-header"]
)
def test_tampered(part: str) -> None:
    method, path, query, headers = _signed_get()
    if part == "path":
        path = "/bkt/K"
    elif part == "sub-resource":
        query += "&acl"
    elif part == "method":
        method = "DELETE"
    elif part == "date":
        headers["Date"] = formatdate(time.time() + 1, usegmt=True)
    elif part == "content-type":
        headers["Content-Type"] = "text/plain"
    else:
        headers["x-amz-meta-late"] = "1"
    assert _error(_check, method, path, query, headers).code == "SignatureDoesNotMatch"


def test_unsigned_headers_are_not_checked() -> None:
    """V2 signs no Range, Host or other non-x-amz header: as on S3, changing one verifies."""
    method, path, query, headers = _signed_get()
    headers["Range"] = "bytes=0-99"
    headers["Host"] = "elsewhere:1"
    _check(method, path, query, headers, bucket=None)


@pytest.mark.parametrize("offset_s", [-sigv2.MAX_SKEW_S - 1, sigv2.MAX_SKEW_S + 1])
def test_clock_skew(offset_s: int) -> None:
    _, _, query, headers = _signed_get()
    signed = sigv2.parse(query, headers)
    sent = sigv2._http_date(headers["Date"])
    sigv2.check_time(signed, headers, sent + (offset_s - 1 if offset_s > 0 else offset_s + 1))
    error = _error(sigv2.check_time, signed, headers, sent + offset_s)
    assert (error.code, error.status) == ("RequestTimeTooSkewed", 403)
    assert error.extra["RequestTime"] == headers["Date"]
    assert error.extra["MaxAllowedSkewMilliseconds"] == "900000"
    assert error.extra["ServerTime"].endswith("Z")


@pytest.mark.parametrize("date", [None, "yesterday", ""])
def test_missing_or_bad_date(date: str | None) -> None:
    _, _, query, headers = _signed_get()
    del headers["Date"]
    if date is not None:
        headers["Date"] = date
    signed = sigv2.parse(query, headers)
    error = _error(sigv2.check_time, signed, headers, time.time())
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == "AWS authentication requires a valid Date or x-amz-date header"


@pytest.mark.parametrize(
    "authorization", ["AWS test-tester", "AWS :abc=", "AWS test:", "AWS", "AWS   "]
)
def test_malformed_authorization(authorization: str) -> None:
    error = _error(sigv2.parse, "", {"Authorization": authorization})
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message.startswith("AWS authorization header is invalid.")
    assert error.extra == {"ArgumentName": "Authorization", "ArgumentValue": authorization}


def test_access_key_with_colons() -> None:
    signed = sigv2.parse("", {"Authorization": "AWS a:b:c:c2ln"})
    assert (signed.access_key, signed.signature) == ("a:b:c", "c2ln")


@pytest.mark.parametrize(
    ("query", "authorization"),
    [
        ("AWSAccessKeyId=a&Signature=s&Expires=1", "AWS a:s"),
        ("AWSAccessKeyId=a&Signature=s&Expires=1", "AWS4-HMAC-SHA256 Credential=a"),
        ("Signature=s", "AWS4-HMAC-SHA256 Credential=a"),
        ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "AWS a:s"),
        ("AWSAccessKeyId=a&Signature=s&Expires=1&X-Amz-Algorithm=AWS4-HMAC-SHA256", None),
    ],
)
def test_one_mechanism_only(query: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    error = _error(sigv2.parse, query, headers)
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message.startswith("Only one auth mechanism allowed")


def test_not_v2() -> None:
    """Anonymous and SigV4 requests are not V2's: None, for proxy/s3/sigv4.py to take."""
    assert sigv2.parse("list-type=2", {"Host": "h"}) is None
    request = AWSRequest("GET", "http://localhost:8080/bkt/o")
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    _, _, query, headers = _wire(request.prepare())
    assert sigv2.parse(query, headers) is None
    v4 = _client(signature_version="s3v4")
    url = urlsplit(v4.generate_presigned_url("get_object", {"Bucket": "b", "Key": "k"}))
    assert sigv2.parse(url.query, {"Host": url.netloc}) is None
    assert sigv2.parse("", {"Authorization": "Bearer x"}) is None  # sigv4 refuses it


def test_payload_sha256() -> None:
    """V2 signs no payload hash: a signed x-amz-content-sha256 is checked as a digest, and a
    STREAMING-* value cannot be one (aws-chunked is SigV4's)."""
    digest = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    assert sigv2.payload_sha256({}) is None
    assert sigv2.payload_sha256({"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}) is None
    assert sigv2.payload_sha256({"x-amz-content-sha256": digest}) == digest.lower()
    streaming = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    assert sigv2.payload_sha256({"x-amz-content-sha256": streaming}) == streaming.lower()
