"""PostObject: an object uploaded by a browser's HTML form, with a policy signed in advance.

``POST /<bucket>`` (or ``POST /`` virtual-host-style) with a ``multipart/form-data`` body:
form fields, then the ``file`` part (AWS "Browser-Based Uploads Using POST"; fields after
the file are ignored).  The request itself carries no signature: the form's ``policy``
field does, so the front end routes it here *before* its own authentication
(proxy/s3/frontend.py), and this module is the authentication: the policy's signature is
checked with the secret of the form's access key (V4: ``x-amz-credential`` and
``x-amz-signature``, HMAC-SHA256 of the base64 policy with the V4 signing key; V2:
``AWSAccessKeyId`` and ``signature``, base64 HMAC-SHA1), then the request's identity is set as
a signed request's would be, and the form is checked against the policy
(proxy/s3/post_policy.py).

The fields are read whole (at most ``FIELDS_LIMIT_BYTES`` in all); the file is never held:
it streams to the object PUT (proxy/s3/swift.py's ``call``) through the request's body
filter, which hands on only the file part's bytes (proxy/s3/form_data.py).  Its length is
not known until its closing boundary arrives, so the PUT is a chunked one, as a chunked
client PUT: the proxy's fan-out streams it with bounded memory, where spooling it to learn
its length would hold or write the whole file once more.  The policy's
``content-length-range`` is counted on every piece: EntityTooLarge as soon as the file
passes its maximum, EntityTooSmall at its end; either raises before the end of the body is
handed on, so every replica's PUT is cut and nothing is stored.

The answer (``success_action_redirect``, else ``success_action_status``): a 303 to the
redirect with ``bucket``, ``key`` and ``etag`` in its query; 200 or 204 empty; 201 with the
``PostResponse`` XML.  Not implemented (501): ACLs other than ``private`` and
``x-amz-checksum-*`` fields.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit
from xml.sax.saxutils import escape

from aiohttp import web
from multidict import CIMultiDict

from identity.ec2 import Ec2Credential

from ..authz import reseller_prefix
from ..context import IDENTITY, Proxy
from ..paths import SwiftPath
from ..streaming import BODY_FILTER, PieceSource
from . import post_policy
from .context import S3_CREDENTIALS, S3Context
from .errors import S3Error
from .form_data import FormDataError, FormReader, boundary_of
from .swift import AMZ_META, SWIFT_META, call, error_from_status

FIELDS_LIMIT_BYTES = 64 * 1024  # every field before the file; a browser form's are ~2 KiB
FIELD_OVERHEAD_BYTES = 128  # charged per field too, so that many empty fields are bounded
MAX_KEY_BYTES = 1024
MALFORMED = "MalformedPOSTRequest"
NO_FILE = "IncorrectNumberOfFilesInPostRequest"
V4_ALGORITHM = "AWS4-HMAC-SHA256"
# Form fields stored as the object's headers, as a PutObject's headers would be.
STORED_FIELDS = ("Cache-Control", "Content-Disposition", "Content-Encoding", "Expires")
SUCCESS_STATUSES = ("200", "201", "204")


@dataclass(frozen=True)
class _FilePart:
    filename: str | None
    content_type: str | None


def is_post_object(request: web.Request, ctx: S3Context) -> bool:
    """A POST to a bucket (no key, no ``?delete``/``?uploads``) with a form body."""
    if request.method != "POST" or ctx.bucket is None or ctx.key is not None:
        return False
    if "delete" in request.query or "uploads" in request.query:
        return False
    kind = request.headers.get("Content-Type", "").partition(";")[0]
    return kind.strip().lower() == "multipart/form-data"


async def handle(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.StreamResponse:
    assert ctx.bucket is not None
    boundary = boundary_of(request.headers.get("Content-Type", ""))
    if boundary is None:
        raise S3Error(MALFORMED, "The body of your POST request is not well-formed multipart.")
    reader = FormReader(_client_source(request, proxy), boundary)
    try:
        fields, file_part = await _read_fields(reader)
    except FormDataError as exc:
        raise S3Error(
            MALFORMED, f"The body of your POST request is not well-formed: {exc}."
        ) from None
    _authenticate(request, proxy, ctx, fields)
    if "key" not in fields:
        raise S3Error(
            "InvalidArgument",
            "Bucket POST must contain a field named 'key'.  If it is specified, please check "
            "the order of the fields.",
            extra={"ArgumentName": "key", "ArgumentValue": ""},
        )
    fields["key"] = fields["key"].replace("${filename}", file_part.filename or "")
    policy = post_policy.decode(fields["policy"])
    post_policy.check(policy, fields, ctx.bucket, time.time())
    key = fields["key"]
    if not key:
        raise S3Error("InvalidArgument", "User key must have a length greater than 0.")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")
    ctx.key = key
    ctx.resource = f"/{ctx.bucket}/{key}"
    headers = _object_headers(fields, file_part.content_type)
    request[BODY_FILTER] = _file_filter(reader, policy.length_range)
    path = SwiftPath(ctx.account, ctx.bucket, key)
    response = await call(request, proxy, "PUT", path, headers)
    if response.status == 404:
        raise error_from_status(404, ctx, missing="NoSuchBucket")
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx)
    return _answer(request, ctx, fields, key, response.headers["Etag"])


async def _read_fields(reader: FormReader) -> tuple[dict[str, str], _FilePart]:
    """The fields before the file (lowercase names; a repeated one's last value) and the
    file part's headers; the reader is left at the start of the file's body."""
    fields: dict[str, str] = {}
    budget = FIELDS_LIMIT_BYTES
    while (part := await reader.next_part()) is not None:
        if part.name.lower() == "file":
            return fields, _FilePart(part.filename, part.content_type)
        value = await reader.read_value(budget)
        budget -= len(value) + len(part.name) + FIELD_OVERHEAD_BYTES
        if budget < 0:
            raise FormDataError("the form's fields are too large")
        try:
            fields[part.name.lower()] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FormDataError(f"the field {part.name!r} is not UTF-8") from None
    raise S3Error(NO_FILE, "POST requires exactly one file upload per request.")


def _authenticate(
    request: web.Request, proxy: Proxy, ctx: S3Context, fields: Mapping[str, str]
) -> None:
    """The policy's signature checked; ``request[IDENTITY]`` and ``ctx.account`` set."""
    if "policy" not in fields:
        raise S3Error("AccessDenied", "Anonymous access is not supported.")
    if "x-amz-signature" in fields or "x-amz-credential" in fields:
        credential = _verify_v4(request, fields, proxy.config.s3_region)
    elif "signature" in fields or "awsaccesskeyid" in fields:
        credential = _verify_v2(request, fields)
    else:
        raise S3Error("AccessDenied", "Anonymous access is not supported.")
    request[IDENTITY] = credential.identity
    ctx.account = reseller_prefix(proxy) + credential.identity.account


def _verify_v4(request: web.Request, fields: Mapping[str, str], region: str) -> Ec2Credential:
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        if name not in fields:
            raise S3Error(
                "InvalidArgument",
                f"Bucket POST must contain a field named '{name}'.  If it is specified, "
                "please check the order of the fields.",
                extra={"ArgumentName": name, "ArgumentValue": ""},
            )
    if fields["x-amz-algorithm"] != V4_ALGORITHM:
        raise S3Error(
            "InvalidArgument",
            f"The algorithm {fields['x-amz-algorithm']!r} is not supported.",
            extra={"ArgumentName": "x-amz-algorithm", "ArgumentValue": fields["x-amz-algorithm"]},
        )
    parts = fields["x-amz-credential"].rsplit("/", 4)
    if len(parts) != 5 or not all(parts) or parts[3:] != ["s3", "aws4_request"]:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/s3/aws4_request".',
            extra={"ArgumentName": "x-amz-credential", "ArgumentValue": fields["x-amz-credential"]},
        )
    access_key, date, scope_region, _, _ = parts
    if scope_region not in (region, region.lower()):
        raise S3Error(
            "InvalidArgument",
            f"The region '{scope_region}' is wrong; expecting '{region}'",
            extra={"Region": region},
        )
    credential = _credential(request, access_key)
    expected = post_policy.v4_signature(credential.secret, date, scope_region, fields["policy"])
    provided = fields["x-amz-signature"].lower().encode()  # bytes: a str must be ASCII
    if not hmac.compare_digest(expected.encode(), provided):
        raise S3Error("SignatureDoesNotMatch", extra={"AWSAccessKeyId": access_key})
    return credential


def _verify_v2(request: web.Request, fields: Mapping[str, str]) -> Ec2Credential:
    access_key = fields.get("awsaccesskeyid", "")
    credential = _credential(request, access_key)
    expected = post_policy.v2_signature(credential.secret, fields["policy"]).encode()
    if not hmac.compare_digest(expected, fields.get("signature", "").encode()):
        raise S3Error("SignatureDoesNotMatch", extra={"AWSAccessKeyId": access_key})
    return credential


def _credential(request: web.Request, access_key: str) -> Ec2Credential:
    credential = request.app[S3_CREDENTIALS].get(access_key)
    if credential is None:
        raise S3Error("InvalidAccessKeyId", extra={"AWSAccessKeyId": access_key})
    return credential


def _object_headers(fields: Mapping[str, str], file_type: str | None) -> CIMultiDict[str]:
    """The PUT's headers: the form's Content-Type (else the file part's), the stored
    headers, ``x-amz-meta-*`` as object metadata; chunked, the file's length being unknown."""
    acl = fields.get("acl", "private")
    if acl != "private":
        raise S3Error("NotImplemented", f"The canned ACL {acl!r} is not implemented.")
    if any(name.startswith("x-amz-checksum-") for name in fields):
        raise S3Error("NotImplemented", "Checksums of a POST upload are not implemented yet.")
    headers: CIMultiDict[str] = CIMultiDict({"Transfer-Encoding": "chunked"})
    content_type = fields.get("content-type") or file_type
    if content_type:
        headers["Content-Type"] = content_type
    for name in STORED_FIELDS:
        if name.lower() in fields:
            headers[name] = fields[name.lower()]
    for name, value in fields.items():
        if name.startswith(AMZ_META):
            headers[SWIFT_META + name[len(AMZ_META) :]] = value
    return headers


def _file_filter(reader: FormReader, length_range: post_policy.LengthRange | None):
    """The body filter: the client's raw pieces in, the file part's bytes out, its size
    checked against the policy's range as they pass."""

    def body_filter(raw: PieceSource) -> PieceSource:
        reader.source = raw  # the proxy's reader: its timeouts, its disconnect handling
        size_bytes = 0

        async def next_piece() -> bytes:
            nonlocal size_bytes
            try:
                piece = await reader.read_piece()
            except FormDataError as exc:
                raise S3Error(MALFORMED, f"The body of your POST request: {exc}.") from None
            size_bytes += len(piece)
            if length_range is not None:
                if piece:
                    length_range.check_so_far(size_bytes)
                else:
                    length_range.check_end(size_bytes)
            return piece

        return next_piece

    return body_filter


def _client_source(request: web.Request, proxy: Proxy) -> PieceSource:
    """The client's body for the fields, each wait at most ``client_timeout_s``."""
    content = request.content
    timeout_s = proxy.config.client_timeout_s

    async def read() -> bytes:
        try:
            async with asyncio.timeout(timeout_s):
                return await content.readany()
        except TimeoutError:
            raise S3Error("RequestTimeout") from None
        except Exception as exc:  # reset, or a body cut short (aiohttp's payload errors)
            raise S3Error("IncompleteBody") from exc

    return read


def _answer(
    request: web.Request, ctx: S3Context, fields: Mapping[str, str], key: str, etag: str
) -> web.Response:
    quoted_etag = f'"{etag.strip(chr(34))}"'
    location = _location(request, ctx, key)
    headers = {"ETag": quoted_etag, "Location": location}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https"):
        query = urlencode({"bucket": ctx.bucket, "key": key, "etag": quoted_etag})
        headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
        return web.Response(status=303, headers=headers)
    status = fields.get("success_action_status", "204")
    if status not in SUCCESS_STATUSES:
        status = "204"  # as S3: an unsupported value is the default
    if status != "201":
        return web.Response(status=int(status), headers=headers)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
        f"<Location>{escape(location)}</Location>"
        f"<Bucket>{escape(ctx.bucket or '')}</Bucket>"
        f"<Key>{escape(key)}</Key>"
        f"<ETag>{escape(quoted_etag)}</ETag>"
        "</PostResponse>"
    )
    return web.Response(
        status=201, body=body.encode(), headers={**headers, "Content-Type": "application/xml"}
    )


def _location(request: web.Request, ctx: S3Context, key: str) -> str:
    """The object's URL, in the style the form was posted in (virtual-host: ``POST /``)."""
    base = f"{request.scheme}://{request.host}"
    if request.path.strip("/") == "":
        return f"{base}/{quote(key)}"
    return f"{base}/{quote(ctx.bucket or '', safe='')}/{quote(key)}"
