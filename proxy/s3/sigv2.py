"""AWS Signature Version 2 as S3 checks it: ``Authorization: AWS <key>:<signature>`` and
presigned URLs (``AWSAccessKeyId``, ``Signature``, ``Expires`` in the query).

Still what boto3's ``generate_presigned_url`` makes by default for us-east-1, and what s3cmd's
``signature_v2`` and older tools send, so Torus accepts it as Swift's s3api does.  Pure, like
proxy/s3/sigv4.py, and used in the same order: ``parse`` -> ``check_time`` -> look up the
secret -> ``verify``.

The signature is a base64 HMAC-SHA1, keyed with the secret, over::

    method \\n Content-MD5 \\n Content-Type \\n Date \\n x-amz-* headers, one a line, resource

- Date: the Date header; empty when an ``x-amz-date`` header is sent (it is then among the
  x-amz-* lines); the ``Expires`` parameter for a presigned URL.
- x-amz-* headers: lowercase names, sorted, values trimmed, repeated headers joined with ``,``.
- The resource: ``/<bucket>`` when the bucket is in the Host, then the path exactly as sent
  (never decoded: a key's encoding is signed as it stands), then ``?`` and the sub-resources
  present, sorted by name, with values decoded (``SUB_RESOURCES``).

What V2 does not sign: any other query parameter (``prefix``, ``max-keys``, ``list-type``...)
and any other header (Host, Range, If-*).  A replayed request can have those changed, as on
S3; the 15-minute Date window (``check_time``) bounds the replay.  Nor does it sign the body:
Content-MD5, or an ``x-amz-content-sha256`` or ``x-amz-checksum-*`` header (signed, being
x-amz-*), are the only ties, and the body is checked against them (``payload_sha256``).

Clients differ from the documentation in details S3 tolerates; each tolerated variant names
the same resource and operation, so accepting it weakens nothing:

- botocore signs a bucket's root as ``/bucket/`` even when it sends ``/bucket`` (path style);
- a signer that signs the query as it sends it (botocore's, given ``?uploads=``) keeps the
  ``=`` of an empty value, where S3 and Swift drop it;
- botocore and MinIO put the Date header in its slot even when x-amz-date is sent.

Sub-resource values are signed decoded (S3's rule), so the string to sign cannot tell
``?uploadId=u&versionId=v`` from ``?uploadId=u%26versionId%3Dv``: a flaw of V2 itself, as on S3.
s3cmd signs values percent-encoded: values of unreserved characters only (a part number)
read the same either way; others give s3cmd SignatureDoesNotMatch.
"""

from __future__ import annotations

import base64
import calendar
import hmac
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_tz
from urllib.parse import unquote_to_bytes

from proxy.s3.errors import S3Error

MAX_SKEW_S = 15 * 60
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# The query parameters a V2 signature covers.  AWS documents acl, delete, lifecycle,
# location, logging, notification, partNumber, policy, requestPayment, the response-*
# overrides, torrent, uploadId, uploads, versionId, versioning, versions and website; newer
# operations' sub-resources are signed too, and clients' lists differ there.  This set is
# botocore's (HmacV1Auth.QSAOfInterest), which holds AWS's list and Swift's s3api's (cors,
# tagging, restore, object-lock).  A client that leaves one out of its signature (s3cmd:
# tagging, restore) or signs more (minio-go: encryption, legal-hold, retention) gets
# SignatureDoesNotMatch for those; Torus answers 501 to all five today.
SUB_RESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)
_EPOCH_SECONDS = re.compile(r"[0-9]{1,19}")
MAX_EXPIRES = 2**31  # as Swift's s3api: a 32-bit time_t
_CONTROL_AND_SPACE = "".join(map(chr, range(0x21)))
ONE_MECHANISM = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
    "query string parameter or the Authorization header should be specified"
)


@dataclass(frozen=True)
class SignedV2:
    access_key: str
    signature: str  # base64 as sent
    presigned: bool
    expires: int | None  # presigned: unix seconds


def parse(raw_query: str, headers: Mapping[str, str]) -> SignedV2 | None:
    """The request's V2 authentication, or None when it uses no V2 (SigV4 or anonymous: the
    caller asks proxy/s3/sigv4.py next).  ``raw_query``: as sent (aiohttp:
    ``request.raw_path.partition("?")[2]``); ``headers``: a multidict (``request.headers``)."""
    # The first of a repeated name wins, as in aiohttp's request.query.get().
    params = {key: value for key, value, _ in reversed(_decoded_pairs(raw_query))}
    authorization = headers.get("Authorization")
    v2_header = authorization is not None and authorization.strip().split(" ", 1)[0] == "AWS"
    v2_query = "AWSAccessKeyId" in params or "Signature" in params
    if not (v2_header or v2_query):
        return None
    mechanisms = (authorization is not None) + v2_query + ("X-Amz-Algorithm" in params)
    if mechanisms > 1:
        extra = None
        if authorization is not None:
            extra = {"ArgumentName": "Authorization", "ArgumentValue": authorization}
        raise S3Error("InvalidArgument", ONE_MECHANISM, extra=extra)
    if v2_header:
        assert authorization is not None
        return _parse_authorization(authorization)
    return _parse_presigned(params)


def check_time(signed: SignedV2, headers: Mapping[str, str], now: float) -> None:
    """Presigned: not past ``Expires``.  Header auth: the x-amz-date header, or failing it the
    Date header, within 15 minutes of ``now`` (x-amz-date wins when both are sent, as S3 says;
    it is there for clients that cannot set Date)."""
    server_time = _iso8601(now)
    if signed.presigned:
        assert signed.expires is not None
        if now > signed.expires:
            extra = {"Expires": _iso8601(signed.expires), "ServerTime": server_time}
            raise S3Error("AccessDenied", "Request has expired", extra=extra)
        return
    sent = headers.get("x-amz-date")
    if sent is None:
        sent = headers.get("Date")
    request_time = _http_date(sent)
    if sent is None or request_time is None:
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    if abs(now - request_time) > MAX_SKEW_S:
        extra = {
            "RequestTime": sent,
            "ServerTime": server_time,
            "MaxAllowedSkewMilliseconds": str(MAX_SKEW_S * 1000),
        }
        raise S3Error("RequestTimeTooSkewed", extra=extra)


def verify(
    signed: SignedV2,
    secret: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    bucket_from_host: str | None,
) -> None:
    """Check the signature.  ``raw_path``: as sent; ``bucket_from_host``: the bucket a
    virtual-host-style Host named (the resource signed starts with it), else None.
    SignatureDoesNotMatch carries the string to sign, as S3's does: clients print it."""
    key = secret.encode("utf-8")
    provided = signed.signature.encode("utf-8", "surrogateescape")
    first = None
    for to_sign in string_to_sign_candidates(
        signed, method, raw_path, raw_query, headers, bucket_from_host
    ):
        expected = base64.b64encode(hmac.digest(key, _bytes(to_sign), "sha1"))
        if hmac.compare_digest(expected, provided):
            return
        first = first or to_sign
    assert first is not None
    extra = {
        "AWSAccessKeyId": signed.access_key,
        "StringToSign": first,
        "SignatureProvided": signed.signature,
        "StringToSignBytes": " ".join(f"{b:02x}" for b in _bytes(first)),
    }
    raise S3Error("SignatureDoesNotMatch", extra=extra)


def string_to_sign_candidates(
    signed: SignedV2,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    bucket_from_host: str | None,
) -> list[str]:
    """The strings to sign the request may have been signed over: S3's documented form
    first, then the clients' variants of the module docstring, without repeats."""
    lists = _header_lists(headers)
    amz_lines = "".join(
        f"{name}:{','.join(value.strip() for value in lists[name])}\n"
        for name in sorted(lists)
        if name.startswith("x-amz-")
    )
    head = [method.upper(), _positional(lists, "content-md5"), _positional(lists, "content-type")]
    candidates: dict[str, None] = {}
    for date in _date_slots(signed, lists, raw_query):
        for resource in _resources(raw_path, raw_query, bucket_from_host):
            candidates["\n".join([*head, date, amz_lines + resource])] = None
    return list(candidates)


def payload_sha256(headers: Mapping[str, str]) -> str | None:
    """The SHA-256 the body must have, or None.  V2 signs no payload hash of its own; an
    ``x-amz-content-sha256`` header is signed (x-amz-*) and, as in Swift's s3api, any value but
    UNSIGNED-PAYLOAD is the body's digest.  A STREAMING-* value is no digest, so such a body
    fails with XAmzContentSHA256Mismatch: aws-chunked needs SigV4's signing key and seed
    signature, which V2 has not (Swift's s3api answers the same)."""
    value = headers.get("x-amz-content-sha256")
    if value is None or value.strip() == UNSIGNED_PAYLOAD:
        return None
    return value.strip().lower()


# --- parsing ---------------------------------------------------------------------------------


def _parse_authorization(authorization: str) -> SignedV2:
    """``AWS <access key>:<signature>``.  The access key may hold a ``:`` (``test:tester``);
    a base64 signature never does, so split at the last one."""
    credentials = authorization.strip()[len("AWS") :].strip()
    access_key, colon, signature = credentials.rpartition(":")
    if not (colon and access_key and signature):
        raise S3Error(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    return SignedV2(access_key=access_key, signature=signature, presigned=False, expires=None)


def _parse_presigned(params: dict[str, str]) -> SignedV2:
    access_key = params.get("AWSAccessKeyId")
    signature = params.get("Signature")
    expires = params.get("Expires")
    if not (access_key and signature and expires):
        raise S3Error(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters",
        )
    if not _EPOCH_SECONDS.fullmatch(expires) or int(expires) >= MAX_EXPIRES:
        raise S3Error("AccessDenied", f"Invalid date (should be seconds since epoch): {expires}")
    # A client that left the base64 '+' unencoded sent a space (the query's form decoding);
    # base64 has no spaces, so the '+' is certain.
    return SignedV2(
        access_key=access_key,
        signature=signature.replace(" ", "+"),
        presigned=True,
        expires=int(expires),
    )


def _http_date(value: str | None) -> float | None:
    """Seconds since the epoch of an HTTP date (RFC 1123, RFC 850 or asctime; no zone is
    UTC), or None."""
    try:
        parsed = parsedate_tz(value) if value else None
        if parsed is None:
            return None
        return calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    except (OverflowError, ValueError, IndexError):  # email.utils' parser on odd input
        return None


def _iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# --- the string to sign ----------------------------------------------------------------------


def _date_slots(signed: SignedV2, lists: dict[str, list[str]], raw_query: str) -> list[str]:
    if signed.presigned:  # Expires as sent (parse() took the first, and checked it)
        return [next(value for key, value, _ in _decoded_pairs(raw_query) if key == "Expires")]
    date = _positional(lists, "date")
    if "x-amz-date" in lists:
        return ["", date] if date else [""]
    return [date]


def _resources(raw_path: str, raw_query: str, bucket: str | None) -> Iterator[str]:
    """The canonicalized resource: S3's form first, then the variants of the module
    docstring.  Values are decoded as the front end reads them (``+`` is a space) in every
    form, so no form can turn a signed ``%2B`` (a plus) into a ``+`` (a space)."""
    path = ("/" + bucket if bucket is not None else "") + (raw_path or "/")
    paths = [path, path + "/"] if _is_bucket_root(path) else [path]
    signed = sorted(
        (item for item in _decoded_pairs(raw_query) if item[0] in SUB_RESOURCES),
        key=lambda item: item[0],  # stable: a repeated name keeps its order, as botocore's
    )
    s3_query = "&".join(f"{key}={value}" if value else key for key, value, _ in signed)
    sent_query = "&".join(f"{key}={value}" if eq else key for key, value, eq in signed)
    for query in dict.fromkeys((s3_query, sent_query)):
        for candidate in paths:
            yield candidate + ("?" + query if query else "")


def _is_bucket_root(path: str) -> bool:
    """``/bucket``: a path-style request to a bucket (not ``/``, not ``/bucket/key``)."""
    return len(path) > 1 and "/" not in path[1:]


def _positional(lists: dict[str, list[str]], name: str) -> str:
    """Content-MD5, Content-Type, Date: the first value (what the front end reads), trimmed of
    white space and control characters as S3 does."""
    values = lists.get(name)
    return values[0].strip(_CONTROL_AND_SPACE) if values else ""


def _header_lists(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lowercase name -> every value, in order (a multidict's items() repeats names)."""
    lists: dict[str, list[str]] = {}
    for name, value in headers.items():
        lists.setdefault(name.strip().lower(), []).append(value)
    return lists


def _raw_pairs(raw_query: str) -> list[tuple[str, str, bool]]:
    """(name, value, whether a '=' was sent) as sent."""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, eq, value = item.partition("=")
            pairs.append((key, value, bool(eq)))
    return pairs


def _decoded_pairs(raw_query: str) -> list[tuple[str, str, bool]]:
    """(name, value, whether a '=' was sent), decoded as aiohttp's ``request.query`` decodes
    them: ``%XX``, and ``+`` as a space."""
    return [(_unquote(k), _unquote(v), eq) for k, v, eq in _raw_pairs(raw_query)]


def _unquote(text: str) -> str:
    raw = unquote_to_bytes(text.replace("+", " ").encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    """UTF-8, as signed; bytes aiohttp handed on surrogate-escaped go back as they came."""
    return text.encode("utf-8", "surrogateescape")
