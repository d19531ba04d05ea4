"""The object server's headers: what a request must carry, what is stored, what is answered.

Swift's rules, from swift/obj/server.py and swift/common/constraints.py: every write carries
an ``X-Timestamp``; a PUT needs a Content-Type and a length (Content-Length or chunked);
``X-Delete-After`` becomes ``X-Delete-At`` counted from the X-Timestamp, and neither may be in
the past; what is stored besides the body is user metadata, sysmeta, transient sysmeta and a
short list of allowed headers.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.errors import BadRequest, LengthRequired, RequestEntityTooLarge
from service.http_semantics import http_date
from service.names import MAX_FILE_SIZE, check_metadata
from service.timestamp import Timestamp

from . import checksum_footer as footer_format
from .checksum_footer import (
    FOOTER_BYTES,
    FOOTER_HEADER,
    FOOTER_KIND,
    FOOTER_KIND_META,
    META_HEADER,
    MetaLayout,
)
from .metadata import ObjectMetadata

# Swift's default allowed_headers (x-delete-at aside: the engine keeps it in its own field).
ALLOWED_HEADERS = frozenset(
    {
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "expires",
        "x-object-manifest",
        "x-robots-tag",
        "x-static-large-object",
    }
)
# Stored as given; the prefix alone is no header (Swift's is_user_meta needs a name after it).
META_PREFIXES = ("x-object-meta-", "x-object-sysmeta-", "x-object-transient-sysmeta-")
MAX_DELETE_AT = 9_999_999_999  # Swift's normalize_delete_at_timestamp: ten digits


def request_timestamp(headers: Mapping[str, str]) -> Timestamp:
    value = headers.get("X-Timestamp")
    if value is None:
        raise BadRequest("Missing X-Timestamp header")
    try:
        return Timestamp.parse(value)
    except ValueError:
        raise BadRequest(f"X-Timestamp should be a UNIX timestamp; was {value!r}") from None


def checksum_footer(headers: Mapping[str, str]) -> tuple[bool, MetaLayout | None]:
    """Whether the PUT body ends with the proxy's checksum footer, and what the meta part
    after it declares (version ``md5+xxh3-64+meta``; else None).  400 before any byte of the
    body: an unknown version, a declaration without that version or that version without
    one, a name that is not object sysmeta, or one the headers also set."""
    kind = headers.get(FOOTER_HEADER)
    declared = headers.get(META_HEADER)
    if kind is None or (kind := kind.strip().lower()) == FOOTER_KIND:
        if declared is not None:
            raise BadRequest(f"{META_HEADER} needs {FOOTER_HEADER}: {FOOTER_KIND_META}")
        return kind is not None, None
    if kind != FOOTER_KIND_META:
        raise BadRequest(f"Unsupported {FOOTER_HEADER}: {kind!r}")
    if declared is None:
        raise BadRequest(f"{FOOTER_HEADER}: {FOOTER_KIND_META} needs {META_HEADER}")
    try:
        layout = footer_format.decode_meta_header(declared)
    except footer_format.FooterFormatError as exc:
        raise BadRequest(str(exc)) from None
    for name, _ in layout:
        if name in headers:  # a CIMultiDict (aiohttp's): looked up without regard to case
            raise BadRequest(f"{name} is both a header and in the checksum footer")
    return True, layout


def footer_bytes(footer: bool, layout: MetaLayout | None) -> int:
    """How many bytes a PUT body carries after the object data: the checksum footer's, and
    those of the meta part ``layout`` declares."""
    if not footer:
        return 0
    return FOOTER_BYTES if layout is None else FOOTER_BYTES + footer_format.meta_part_bytes(layout)


def put_content_length(headers: Mapping[str, str], *, footer_bytes: int = 0) -> int | None:
    """The object data's length (the body's, less ``footer_bytes``: a checksum footer and
    any meta part after it), or None for a chunked body (411 if it has neither)."""
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        return None  # RFC 9112 §6.3: chunked wins over any Content-Length
    text = headers.get("Content-Length")
    if text is None:
        raise LengthRequired("Missing Content-Length header.")
    if not text.isascii() or not text.isdigit():
        raise BadRequest(f"Invalid Content-Length header: {text!r}")
    length = int(text)
    if footer_bytes:
        if length < footer_bytes:
            raise BadRequest(f"Content-Length {length} is shorter than the checksum footer")
        length -= footer_bytes
    if length > MAX_FILE_SIZE:
        raise RequestEntityTooLarge("Your request is too large.")
    return length


def put_content_type(headers: Mapping[str, str]) -> str:
    content_type = headers.get("Content-Type")
    if content_type is None:
        raise BadRequest("No content type")
    if not _is_clean_utf8(content_type):
        raise BadRequest("Invalid Content-Type")
    return content_type


def post_content_type(headers: Mapping[str, str]) -> str | None:
    """A POST changes the content type only if it names one."""
    return put_content_type(headers) if "Content-Type" in headers else None


def delete_at(headers: Mapping[str, str], timestamp: Timestamp) -> int | None:
    """X-Delete-At (from X-Delete-After if given), which must be after the X-Timestamp.

    A replicator pushing an object (X-Backend-Replication) may send one already past.
    """
    now = timestamp.seconds
    after = headers.get("X-Delete-After")
    if after is not None:
        try:
            at = _clamp(int(now + int(after)))
        except ValueError:
            raise BadRequest("Non-integer X-Delete-After") from None
        if at <= now:
            raise BadRequest("X-Delete-After in past")
        return at
    text = headers.get("X-Delete-At")
    if text is None:
        return None
    try:
        at = _clamp(int(text))
    except ValueError:
        raise BadRequest("Non-integer X-Delete-At") from None
    replication = headers.get("X-Backend-Replication", "").lower() in ("true", "yes", "1")
    if at <= now and not replication:
        raise BadRequest("X-Delete-At in past")
    return at


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers kept with the object, names title-cased as Swift's WSGI layer gives them.

    Checks Swift's metadata limits first (400).  Values must be UTF-8: they are kept in a
    JSON document, where bytes that were not text have no spelling.
    """
    check_metadata(headers, "object")
    stored = {}
    for name, value in headers.items():
        lower = name.lower()
        is_meta = lower.startswith(META_PREFIXES) and lower not in META_PREFIXES
        if not is_meta and lower not in ALLOWED_HEADERS:
            continue
        if not _is_clean_utf8(name) or not _is_clean_utf8(value):
            raise BadRequest(f"Metadata must be valid UTF-8: {name.encode('ascii', 'replace')!r}")
        stored[name.title()] = value
    return stored


def object_headers(meta: ObjectMetadata) -> dict[str, str]:
    """What GET and HEAD answer about a version (Content-Length aside: it depends on Range).

    Swift reports the newest metadata's timestamp (a POST's, if any) as X-Timestamp and
    Last-Modified, and the data's as X-Backend-Data-Timestamp.
    """
    headers = dict(meta.user_meta)
    headers.update(
        {
            "Content-Type": meta.content_type or "application/octet-stream",
            "ETag": f'"{meta.etag}"',  # quoted, as swob's Response.etag sets it
            "Last-Modified": http_date(meta.meta_timestamp),
            "X-Timestamp": meta.meta_timestamp.normal,
            "X-Backend-Timestamp": meta.meta_timestamp.internal,
            "X-Backend-Data-Timestamp": meta.timestamp.internal,
            "X-Backend-Durable-Timestamp": meta.timestamp.internal,
            "Accept-Ranges": "bytes",
        }
    )
    if meta.delete_at is not None:
        headers["X-Delete-At"] = str(meta.delete_at)
    return headers


def _clamp(at: int) -> int:
    return min(max(at, 0), MAX_DELETE_AT)


def _is_clean_utf8(text: str) -> bool:
    """aiohttp decodes header bytes with surrogateescape: a lone surrogate was a bad byte."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
