"""AWS Signature Version 4 as S3 checks it: the ``Authorization`` header and presigned URLs.

Pure: the caller passes the raw request (method, path and query exactly as the client sent them,
the headers) and, to verify, the secret it looked up for ``credential.access_key``.  The order
of use is ``parse`` -> ``check_time`` -> look up the secret -> ``verify``; ``verify`` returns the
signing key, which aws-chunked bodies need for their chunk signatures (proxy/s3/aws_chunked.py).

S3's canonical request differs from generic SigV4 in one place: the path is not normalised and
is URI-encoded once, not twice.  Virtual-host-style requests sign the path as sent (without the
bucket) and the Host header with it, so verification always works on the raw request, never on
a rewritten one.  Canonical URI and query are built from the decoded path and parameters,
encoded again as the SigV4 spec says (so a client that sends ``~`` as ``%7E`` or hex in lower
case still matches); if that does not match, the path and parameters exactly as sent are tried,
which is what botocore signs (``S3SigV4Auth._normalize_url_path`` returns the path untouched).
Both forms name the same resource, so accepting either weakens nothing, provided the S3 front
end decodes the target as aiohttp does and this module assumes: in the path only ``%XX`` (a
``+`` is a plus), in the query ``%XX`` and ``+`` as a space (``request.query``).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_tz
from urllib.parse import quote_from_bytes, unquote_to_bytes

from proxy.s3.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4A_ALGORITHM = "AWS4-ECDSA-P256-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_VALUES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
SIGV4A_STREAMING_VALUES = (
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_S = 15 * 60
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# Sent by the client as x-amz-*, but changing what is stored or who may read it: S3 refuses
# them unsigned (a presigned URL cannot be reused to set metadata or ACLs it did not sign).
MUST_BE_SIGNED_PREFIXES = ("x-amz-copy", "x-amz-acl", "x-amz-grant", "x-amz-meta")
PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
V4_ONLY = "Sign with AWS Signature Version 4 (AWS4-HMAC-SHA256) or Version 2."


@dataclass(frozen=True)
class Credential:
    """``X-Amz-Credential``/``Credential=``: access key and the scope the key was derived for."""

    access_key: str
    date: str  # "20261130"
    region: str
    service: str

    @property
    def scope(self) -> str:
        """The credential scope, as the string to sign and chunk signatures carry it."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class SignedRequest:
    credential: Credential
    signed_headers: tuple[str, ...]  # lowercase, sorted
    signature: str  # hex, as sent
    amz_date: str  # "20261130T024512Z"
    payload: str  # x-amz-content-sha256 as sent (presigned without the header: UNSIGNED-PAYLOAD)
    presigned: bool
    expires_s: int | None  # presigned only

    @property
    def scope(self) -> str:
        return self.credential.scope


def parse(
    method: str, raw_path: str, raw_query: str, headers: Mapping[str, str]
) -> SignedRequest | None:
    """The request's SigV4 authentication, or None when it carries no S3 authentication at all
    (the caller treats it as anonymous).  ``raw_path``/``raw_query``: the request target as sent,
    split at the first ``?`` (aiohttp: ``request.raw_path.partition("?")``).  ``headers``: a
    multidict (aiohttp's ``request.headers``) so that repeated headers are all seen."""
    params = dict(_query_pairs(raw_query))
    lists = _header_lists(headers)
    authorization = _header(lists, "authorization")
    if authorization is not None and "X-Amz-Algorithm" in params:
        raise S3Error(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    if "X-Amz-Algorithm" in params:
        return _parse_presigned(params, lists)
    if authorization is None:
        return None
    return _parse_authorization(authorization, lists)


def check_time(signed: SignedRequest, now: float) -> None:
    """Header auth: X-Amz-Date within 15 minutes of ``now``.  Presigned: not expired and not
    dated in the future beyond the same skew.  (The credential date and X-Amz-Expires's range
    need no clock: ``parse`` checks them.)"""
    request_time = _epoch(signed.amz_date)
    assert request_time is not None  # parse() checked it
    server_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    if signed.presigned:
        assert signed.expires_s is not None
        if request_time - now > MAX_SKEW_S:
            raise S3Error("AccessDenied", "Request is not valid yet")
        if now > request_time + signed.expires_s:
            expires = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(request_time + signed.expires_s)
            )
            extra = {"X-Amz-Expires": str(signed.expires_s), "Expires": expires}
            raise S3Error(
                "AccessDenied", "Request has expired", extra=extra | {"ServerTime": server_time}
            )
    elif abs(now - request_time) > MAX_SKEW_S:
        extra = {
            "RequestTime": signed.amz_date,
            "ServerTime": server_time,
            "MaxAllowedSkewMilliseconds": str(MAX_SKEW_S * 1000),
        }
        raise S3Error("RequestTimeTooSkewed", extra=extra)


def check_region(signed: SignedRequest, region: str) -> None:
    """The credential scope names this server's region, as S3 insists (it adds ``Region`` so
    that clients can retry there).  A lowercase form of a mixed-case region is accepted, as
    Swift's s3api does for the AWS .NET SDK."""
    if signed.credential.region in (region, region.lower()):
        return
    code = (
        "AuthorizationQueryParametersError" if signed.presigned else "AuthorizationHeaderMalformed"
    )
    prefix = (
        "Error parsing the X-Amz-Credential parameter;"
        if signed.presigned
        else "The authorization header is malformed;"
    )
    message = f"{prefix} the region '{signed.credential.region}' is wrong; expecting '{region}'"
    raise S3Error(code, message, extra={"Region": region})


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC chain over the scope, starting from "AWS4" + secret.  Cached: a key
    serves every request of its scope for a day (four HMACs saved per request), as AWS
    itself says signers may; the cache holds secrets the proxy holds anyway."""
    key = ("AWS4" + secret).encode()
    for piece in (date, region, service, "aws4_request"):
        key = hmac.digest(key, piece.encode(), "sha256")  # one-shot: the C fast path
    return key


def verify(
    signed: SignedRequest,
    secret: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
) -> bytes:
    """Check the signature; return the signing key (aws-chunked's chunk signatures chain from
    it, seeded with ``signed.signature``).  SignatureDoesNotMatch carries the string to sign
    and canonical request, as AWS's does, since clients print them for debugging."""
    cred = signed.credential
    key = signing_key(secret, cred.date, cred.region, cred.service)
    canonical_headers = _canonical_headers(signed, _header_lists(headers))
    first = None
    for canonical_path, canonical_query in _canonical_targets(signed, raw_path, raw_query):
        canonical = "\n".join(
            (
                method.upper(),
                canonical_path,
                canonical_query,
                canonical_headers,
                ";".join(signed.signed_headers),
                signed.payload,
            )
        )
        to_sign = string_to_sign(signed, canonical)
        expected = hmac.digest(key, to_sign.encode(), "sha256").hex()
        if hmac.compare_digest(expected, signed.signature.lower()):
            return key
        first = first or (canonical, to_sign)
    assert first is not None
    raise _mismatch(signed, *first)


def string_to_sign(signed: SignedRequest, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{signed.amz_date}\n{signed.scope}\n{digest}"


# --- parsing ---------------------------------------------------------------------------------


def _parse_authorization(authorization: str, lists: dict[str, list[str]]) -> SignedRequest:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm == SIGV4A_ALGORITHM:
        raise S3Error("NotImplemented", f"Signature Version 4A is not supported. {V4_ONLY}")
    if algorithm != ALGORITHM:
        raise S3Error(
            "InvalidArgument",
            "Unsupported Authorization Type",
            extra={"ArgumentName": "Authorization", "ArgumentValue": authorization},
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if eq:
            fields[name] = value.strip()
    if any(not fields.get(name) for name in ("Credential", "SignedHeaders", "Signature")):
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the authorization header requires three "
            "components: Credential, SignedHeaders, and Signature.",
        )
    amz_date = _header_date(lists)
    credential = _credential(fields["Credential"], amz_date, presigned=False)
    signed_headers = _signed_headers(fields["SignedHeaders"], lists, presigned=False)
    payload = _header(lists, "x-amz-content-sha256")
    if payload is None:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    return SignedRequest(
        credential=credential,
        signed_headers=signed_headers,
        signature=_signature(fields["Signature"], "AuthorizationHeaderMalformed"),
        amz_date=amz_date,
        payload=_payload(payload),
        presigned=False,
        expires_s=None,
    )


def _parse_presigned(params: dict[str, str], lists: dict[str, list[str]]) -> SignedRequest:
    algorithm = params["X-Amz-Algorithm"]
    if algorithm == SIGV4A_ALGORITHM:
        raise S3Error("NotImplemented", f"Signature Version 4A is not supported. {V4_ONLY}")
    if algorithm != ALGORITHM:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f'X-Amz-Algorithm only supports "{ALGORITHM}"',
        )
    if any(not params.get(name) for name in PRESIGN_PARAMS):
        raise S3Error(
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters.",
        )
    amz_date = params["X-Amz-Date"]
    if _epoch(amz_date) is None:
        raise S3Error(
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        )
    payload = _header(lists, "x-amz-content-sha256")
    return SignedRequest(
        credential=_credential(params["X-Amz-Credential"], amz_date, presigned=True),
        signed_headers=_signed_headers(params["X-Amz-SignedHeaders"], lists, presigned=True),
        signature=_signature(params["X-Amz-Signature"], "AuthorizationQueryParametersError"),
        amz_date=amz_date,
        payload=UNSIGNED_PAYLOAD if payload is None else _payload(payload),
        presigned=True,
        expires_s=_expires(params["X-Amz-Expires"]),
    )


def _credential(value: str, amz_date: str, *, presigned: bool) -> Credential:
    """``<access key>/<date>/<region>/<service>/aws4_request``; the access key may itself hold
    a ``/``, so split from the right."""
    code = "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
    prefix = (
        "Error parsing the X-Amz-Credential parameter;"
        if presigned
        else "The authorization header is malformed;"
    )
    parts = value.rsplit("/", 4)
    if len(parts) != 5 or not all(parts):
        raise S3Error(
            code,
            f"{prefix} the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    access_key, date, region, service, terminal = parts
    if date != amz_date[:8]:
        raise S3Error(
            code,
            f'Invalid credential date "{date}". This date is not the same as X-Amz-Date: '
            f'"{amz_date[:8]}".',
        )
    if service != "s3":
        raise S3Error(
            code, f'{prefix} incorrect service "{service}". This endpoint belongs to "s3".'
        )
    if terminal != "aws4_request":
        raise S3Error(
            code, f'{prefix} incorrect terminal "{terminal}". This endpoint uses "aws4_request".'
        )
    return Credential(access_key, date, region, service)


def _signed_headers(value: str, lists: dict[str, list[str]], *, presigned: bool) -> tuple[str, ...]:
    names = tuple(sorted({name.strip().lower() for name in value.split(";") if name.strip()}))
    if "host" not in names:
        code = "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
        raise S3Error(code, "The host header must be signed (SignedHeaders must include host).")
    unsigned = [
        name for name in lists if name.startswith(MUST_BE_SIGNED_PREFIXES) and name not in names
    ]
    if unsigned:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            extra={"HeadersNotSigned": ", ".join(sorted(unsigned))},
        )
    return names


def _signature(value: str, code: str) -> str:
    if not _HEX64.fullmatch(value):
        raise S3Error(code, "The signature must be 64 hexadecimal digits.")
    return value


def _payload(value: str) -> str:
    """x-amz-content-sha256: a hex digest, UNSIGNED-PAYLOAD or a STREAMING-* value."""
    if value == UNSIGNED_PAYLOAD or value in STREAMING_VALUES or _HEX64.fullmatch(value):
        return value
    if value in SIGV4A_STREAMING_VALUES:
        raise S3Error("NotImplemented", f"Signature Version 4A is not supported. {V4_ONLY}")
    raise S3Error(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a "
        "valid sha256 value.",
        extra={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": value},
    )


def _expires(value: str) -> int:
    """X-Amz-Expires: whole seconds, 1 to 7 days, as S3 answers it."""
    if not _INTEGER.fullmatch(value):
        message = "X-Amz-Expires should be a number"
    elif int(value) < 0:
        message = "X-Amz-Expires must be non-negative"
    elif int(value) == 0:
        message = "X-Amz-Expires must be at least 1 second"
    elif int(value) > MAX_PRESIGN_EXPIRES_S:
        message = (
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            "X-Amz-Expires must be less than 604800 seconds"
        )
    else:
        return int(value)
    raise S3Error("AuthorizationQueryParametersError", message)


def _header_date(lists: dict[str, list[str]]) -> str:
    """X-Amz-Date, or failing it the Date header (SigV4 allows either), in the basic ISO 8601
    form the string to sign carries."""
    amz_date = _header(lists, "x-amz-date")
    if amz_date is not None:
        if _epoch(amz_date.strip()) is not None:
            return amz_date.strip()
    else:
        date = _header(lists, "date")
        parsed = parsedate_tz(date) if date else None
        if parsed is not None:
            epoch = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
            return time.strftime(AMZ_DATE_FORMAT, time.gmtime(epoch))
    raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")


def _epoch(amz_date: str) -> int | None:
    """Seconds since the epoch of a "YYYYMMDDTHHMMSSZ" stamp; None if it is no real time.
    (By slicing: time.strptime costs more than the rest of ``check_time``.)"""
    if not _AMZ_DATE.fullmatch(amz_date):
        return None
    try:
        moment = datetime(
            int(amz_date[0:4]),
            int(amz_date[4:6]),
            int(amz_date[6:8]),
            int(amz_date[9:11]),
            int(amz_date[11:13]),
            int(amz_date[13:15]),
        )
    except ValueError:
        return None
    return calendar.timegm(moment.timetuple())


# --- canonical request -----------------------------------------------------------------------


def _canonical_targets(
    signed: SignedRequest, raw_path: str, raw_query: str
) -> list[tuple[str, str]]:
    """(canonical URI, canonical query): re-encoded per the spec first, then as sent."""
    pairs = [
        (key, value)
        for key, value in _raw_pairs(raw_query)
        if not (signed.presigned and key == "X-Amz-Signature")
    ]
    path = raw_path or "/"
    encoded_pairs = sorted((_encode_query_part(k), _encode_query_part(v)) for k, v in pairs)
    encoded = (
        quote_from_bytes(_unquote_to_bytes(path), safe="/-_.~"),
        "&".join(f"{key}={value}" for key, value in encoded_pairs),
    )
    as_sent = (path, "&".join(f"{key}={value}" for key, value in sorted(pairs)))
    return [encoded] if as_sent == encoded else [encoded, as_sent]


def _encode_query_part(text: str) -> str:
    """Decoded as aiohttp's ``request.query`` decodes it (``+`` is a space, as in a form), so
    that what is signed is what the S3 front end reads; then encoded once, per the spec."""
    return quote_from_bytes(_unquote_to_bytes(text.replace("+", " ")), safe="-_.~")


def _unquote_to_bytes(text: str) -> bytes:
    """``%XX`` decoded; aiohttp hands undecodable raw bytes on surrogate-escaped."""
    return unquote_to_bytes(text.encode("utf-8", "surrogateescape"))


def _raw_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw_query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((key, value))
    return pairs


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Parameters decoded as aiohttp's ``request.query`` does, empty values kept."""
    return [(_unquote(k), _unquote(v)) for k, v in _raw_pairs(raw_query)]


def _unquote(text: str) -> str:
    return _unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "surrogateescape")


def _canonical_headers(signed: SignedRequest, lists: dict[str, list[str]]) -> str:
    """``name:value\\n`` for each signed header: values trimmed, runs of white space collapsed
    (as botocore does), repeated headers joined with ``,``.  A signed header the request lacks
    cannot match (S3 answers SignatureDoesNotMatch)."""
    lines = []
    for name in signed.signed_headers:
        values = lists.get(name)
        if values is None:
            raise S3Error("SignatureDoesNotMatch", extra=_mismatch_ids(signed))
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "".join(lines)


def _header_lists(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lowercase name -> every value, in order (a multidict's items() repeats names)."""
    lists: dict[str, list[str]] = {}
    for name, value in headers.items():
        lists.setdefault(name.lower(), []).append(value)
    return lists


def _header(lists: dict[str, list[str]], name: str) -> str | None:
    values = lists.get(name)
    return None if values is None else ",".join(values)


def _mismatch_ids(signed: SignedRequest) -> dict[str, str]:
    return {"AWSAccessKeyId": signed.credential.access_key, "SignatureProvided": signed.signature}


def _mismatch(signed: SignedRequest, canonical: str, to_sign: str) -> S3Error:
    def hex_bytes(text: str) -> str:
        return " ".join(f"{b:02x}" for b in text.encode("utf-8", "surrogateescape"))

    extra = _mismatch_ids(signed) | {
        "StringToSign": to_sign,
        "StringToSignBytes": hex_bytes(to_sign),
        "CanonicalRequest": canonical,
        "CanonicalRequestBytes": hex_bytes(canonical),
    }
    return S3Error("SignatureDoesNotMatch", extra=extra)
