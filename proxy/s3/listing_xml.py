"""S3's listing answers rendered from the Swift API's json listings, and their parameters.

Pure: the caller turns the query into params here (``parse_*``: S3's InvalidArgument for a bad
max-keys, encoding-type or continuation token), asks the container (or account) listing for
``params.listing_query()`` — ``limit`` is one row more than the page, so that the extra row says
whether the page is truncated — and hands the rows to ``render_*``, which takes the first
``page_size`` rows (objects and ``subdir``s alike: S3 counts a CommonPrefix toward max-keys)
and derives IsTruncated and the next marker or token from them.  Cost: one listing call a page.

What AWS does, and so this does:
- ``NextMarker`` (v1) only when a delimiter was given; without one a client continues from the
  last Key.  The next marker of a page ending in a CommonPrefix is that prefix: the container
  listing skips a subdir equal to its marker, so the next page does not repeat it.
- ``max-keys`` over 1000 is echoed but serves 1000; 0 is an empty page, never truncated.
- ``encoding-type=url`` percent-encodes the elements that hold keys (v1: Prefix, Marker,
  NextMarker, Delimiter, Key, CommonPrefixes' Prefix; v2: Prefix, StartAfter, Delimiter, Key,
  CommonPrefixes' Prefix; versions: Prefix, KeyMarker, NextKeyMarker, Delimiter, Key,
  CommonPrefixes' Prefix) the way AWS does (space as ``+``, ``/`` kept; measured against AWS),
  never the opaque tokens.  boto3 always asks for it and decodes what it asked for.
- Without it, a key is XML-escaped, control characters as character references; XML 1.0 has
  none for most C0 controls, so such keys only list intact with encoding-type=url, as on AWS.
- LastModified / CreationDate: the second rounded up, ``.000Z``, as the Last-Modified header
  of the same object shows it (Swift rounds up too), so listing and HEAD agree.
- Continuation tokens are ``base64("1" + next marker)``: opaque to clients, versioned so that
  the form can change, and anything else is InvalidArgument.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

from service.listing import MAX_LIMIT

from .errors import S3Error

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEYS = 1000  # the most S3 lists in a page, whatever max-keys asks for
MAX_BUCKETS = 10_000  # ListBuckets' page when max-buckets is not given (AWS's bucket quota)
MAX_INT32 = 2**31 - 1
_TOKEN_VERSION = b"1"

Row = Mapping[str, Any]  # a row of the Swift API's json listing


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    display_name: str


# --- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListObjectsParams:
    """ListObjects (``version`` 1) and ListObjectsV2 (2), parsed and checked."""

    version: int
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS  # as asked: echoed in MaxKeys
    url_encoding: bool = False
    marker: str = ""  # v1
    start_after: str | None = None  # v2
    continuation_token: str | None = None  # v2, as the client sent it
    fetch_owner: bool = False  # v2 (v1 always shows owners)
    listing_marker: str = ""  # where the container listing starts: marker, token or start-after

    @property
    def page_size(self) -> int:
        return min(self.max_keys, MAX_KEYS)

    def listing_query(self) -> dict[str, str]:
        """The container listing's query (``format=json``; ``limit`` one past the page)."""
        return _listing_query(self.page_size, self.prefix, self.delimiter, self.listing_marker)


@dataclass(frozen=True, slots=True)
class ListVersionsParams:
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS
    url_encoding: bool = False
    key_marker: str = ""
    version_id_marker: str | None = None

    @property
    def page_size(self) -> int:
        return min(self.max_keys, MAX_KEYS)

    def listing_query(self) -> dict[str, str]:
        # Unversioned: a key's only version is "null", which the key marker already passed.
        return _listing_query(self.page_size, self.prefix, self.delimiter, self.key_marker)


@dataclass(frozen=True, slots=True)
class ListBucketsParams:
    prefix: str = ""
    max_buckets: int | None = None
    continuation_token: str | None = None
    listing_marker: str = ""

    @property
    def page_size(self) -> int:
        return MAX_BUCKETS if self.max_buckets is None else self.max_buckets

    def listing_query(self) -> dict[str, str]:
        """The account listing's query."""
        return _listing_query(self.page_size, self.prefix, "", self.listing_marker)


def _listing_query(page_size: int, prefix: str, delimiter: str, marker: str) -> dict[str, str]:
    # One row past the page, within what a Swift listing serves (10,000: ListBuckets' whole
    # page, AWS's bucket quota, is the one page that reaches it).
    query = {"format": "json", "limit": str(min(page_size + 1, MAX_LIMIT))}
    for name, value in (("prefix", prefix), ("delimiter", delimiter), ("marker", marker)):
        if value:
            query[name] = value
    return query


def parse_list_objects(query: Mapping[str, str]) -> ListObjectsParams:
    """ListObjects v1 or v2 (``list-type=2``) from the request's query."""
    list_type = query.get("list-type")
    if list_type not in (None, "1", "2"):
        raise _invalid_argument("list-type", list_type, "Invalid List Type specified in Request")
    common = {
        "prefix": query.get("prefix", ""),
        "delimiter": query.get("delimiter", ""),
        "max_keys": parse_max_keys(query),
        "url_encoding": parse_encoding_type(query),
    }
    if list_type != "2":
        marker = query.get("marker", "")
        return ListObjectsParams(1, marker=marker, listing_marker=marker, **common)
    start_after = query.get("start-after")
    token = query.get("continuation-token")
    # The token wins over start-after (S3 still echoes both).
    listing_marker = decode_token(token) if token is not None else start_after or ""
    return ListObjectsParams(
        2,
        start_after=start_after,
        continuation_token=token,
        fetch_owner=query.get("fetch-owner", "").lower() == "true",
        listing_marker=listing_marker,
        **common,
    )


def parse_list_object_versions(query: Mapping[str, str]) -> ListVersionsParams:
    key_marker = query.get("key-marker", "")
    version_id_marker = query.get("version-id-marker")
    if version_id_marker is not None:
        if not key_marker:
            raise _invalid_argument(
                "version-id-marker",
                version_id_marker,
                "A version-id marker cannot be specified without a key marker.",
            )
        if version_id_marker not in ("", "null"):  # unversioned: "null" is the only version
            raise _invalid_argument(
                "version-id-marker", version_id_marker, "Invalid version id specified"
            )
    return ListVersionsParams(
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        max_keys=parse_max_keys(query),
        url_encoding=parse_encoding_type(query),
        key_marker=key_marker,
        version_id_marker=version_id_marker,
    )


def parse_list_buckets(query: Mapping[str, str]) -> ListBucketsParams:
    max_buckets = None
    if "max-buckets" in query:
        value = query["max-buckets"]
        if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= MAX_BUCKETS:
            raise _invalid_argument(
                "max-buckets", value, f"max-buckets must be between 1 and {MAX_BUCKETS}."
            )
        max_buckets = int(value)
    token = query.get("continuation-token")
    return ListBucketsParams(
        prefix=query.get("prefix", ""),
        max_buckets=max_buckets,
        continuation_token=token,
        listing_marker=decode_token(token) if token is not None else "",
    )


def parse_max_keys(query: Mapping[str, str]) -> int:
    """max-keys as asked (1000 if absent); InvalidArgument unless an integer 0..2**31-1."""
    value = query.get("max-keys")
    if value is None:
        return MAX_KEYS
    if not re.fullmatch(r"[+-]?[0-9]+", value.strip()) or int(value) > MAX_INT32:
        raise _invalid_argument(
            "max-keys", value, "Provided max-keys not an integer or within integer range"
        )
    if int(value) < 0:
        raise _invalid_argument(
            "max-keys", value, f"Argument max-keys must be an integer between 0 and {MAX_INT32}"
        )
    return int(value)


def parse_encoding_type(query: Mapping[str, str]) -> bool:
    """True for ``encoding-type=url``, False without it; InvalidArgument for any other."""
    value = query.get("encoding-type")
    if value is None:
        return False
    if value != "url":
        raise _invalid_argument(
            "encoding-type", value, "Invalid Encoding Method specified in Request"
        )
    return True


def encode_token(marker: str) -> str:
    return base64.b64encode(_TOKEN_VERSION + marker.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    """The marker a continuation token holds; InvalidArgument if it is not one of ours."""
    try:
        raw = base64.b64decode(token, validate=True)
        if not raw.startswith(_TOKEN_VERSION) or len(raw) < 2:
            raise ValueError("not a token")
        return raw[len(_TOKEN_VERSION) :].decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid_argument(
            "continuation-token", token, "The continuation token provided is incorrect"
        ) from None


def _invalid_argument(name: str, value: str, message: str) -> S3Error:
    return S3Error("InvalidArgument", message, extra={"ArgumentName": name, "ArgumentValue": value})


# --- the page ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    objects: list[Row]
    prefixes: list[str]
    truncated: bool
    next_marker: str | None  # the last entry (key or prefix) when truncated


def page_of(rows: Sequence[Row], page_size: int) -> Page:
    """The page in ``rows`` (asked for with limit = page_size + 1)."""
    if page_size <= 0:
        return Page([], [], False, None)
    shown = rows[:page_size]
    truncated = len(rows) > page_size
    last = shown[-1] if shown else None
    next_marker = None
    if truncated and last is not None:
        next_marker = last["subdir"] if "subdir" in last else last["name"]
    objects = [row for row in shown if "subdir" not in row]
    prefixes = [row["subdir"] for row in shown if "subdir" in row]
    return Page(objects, prefixes, truncated, next_marker)


# --- XML --------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|\r")


def xml_text(value: str) -> str:
    """Element text: &, <, > escaped; a carriage return (which XML parsers would turn into a
    line feed) and other controls as character references, as AWS writes them."""
    return _CONTROL.sub(lambda m: f"&#{ord(m.group())};", escape(value))


def url_encode(value: str) -> str:
    """encoding-type=url as AWS applies it: ``a b+c/d`` → ``a+b%2Bc/d``, UTF-8 percent-encoded."""
    return quote_plus(value, safe="/")


class _Xml:
    def __init__(self, root: str) -> None:
        self.parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">']
        self.root = root

    def add(self, name: str, value: str | int | None) -> None:
        if value is not None:
            self.parts.append(f"<{name}>{xml_text(str(value))}</{name}>")

    def raw(self, text: str) -> None:
        self.parts.append(text)

    def done(self) -> bytes:
        self.parts.append(f"</{self.root}>")
        return "".join(self.parts).encode("utf-8")


def s3_time(swift_time: str) -> str:
    """Swift's ``last_modified`` (``2026-11-30T02:52:51.123456``) → ``2026-11-30T02:52:52.000Z``."""
    when = datetime.fromisoformat(swift_time.removesuffix("Z"))
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def quoted_etag(value: str) -> str:
    """A listing's hash as S3 shows ETags: quoted, once (``<md5>-N`` of a multipart object
    too)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value
    return f'"{value}"'


def _owner(owner: Owner) -> str:
    return (
        f"<Owner><ID>{xml_text(owner.id)}</ID>"
        f"<DisplayName>{xml_text(owner.display_name)}</DisplayName></Owner>"
    )


def _entry(tag: str, row: Row, key: str, owner: Owner | None, version: bool) -> str:
    parts = [f"<{tag}><Key>{xml_text(key)}</Key>"]
    if version:
        parts.append("<VersionId>null</VersionId><IsLatest>true</IsLatest>")
    parts.append(f"<LastModified>{s3_time(row['last_modified'])}</LastModified>")
    parts.append(f"<ETag>{xml_text(quoted_etag(row['hash']))}</ETag>")
    parts.append(f"<Size>{int(row['bytes'])}</Size>")
    if owner is not None:
        parts.append(_owner(owner))
    parts.append(f"<StorageClass>STANDARD</StorageClass></{tag}>")
    return "".join(parts)


def _entries(
    xml: _Xml, page: Page, tag: str, owner: Owner | None, encode: Callable[[str], str]
) -> None:
    for row in page.objects:
        xml.raw(_entry(tag, row, encode(row["name"]), owner, tag == "Version"))
    for prefix in page.prefixes:
        xml.raw(f"<CommonPrefixes><Prefix>{xml_text(encode(prefix))}</Prefix></CommonPrefixes>")


def _encoder(url_encoding: bool) -> Callable[[str], str]:
    return url_encode if url_encoding else _same


def _same(value: str) -> str:
    return value


def _tail(xml: _Xml, max_keys: int, delimiter: str, url_encoding: bool, truncated: bool) -> None:
    encode = _encoder(url_encoding)
    xml.add("MaxKeys", max_keys)
    if delimiter:  # AWS leaves out an empty delimiter
        xml.add("Delimiter", encode(delimiter))
    if url_encoding:
        xml.add("EncodingType", "url")
    xml.add("IsTruncated", "true" if truncated else "false")


def render_list_objects(
    bucket: str, params: ListObjectsParams, rows: Sequence[Row], owner: Owner
) -> bytes:
    """ListObjects (v1): ``ListBucketResult`` with Marker / NextMarker; owners always shown."""
    page = page_of(rows, params.page_size)
    encode = _encoder(params.url_encoding)
    xml = _Xml("ListBucketResult")
    xml.add("Name", bucket)
    xml.add("Prefix", encode(params.prefix))
    xml.add("Marker", encode(params.marker))
    if page.next_marker is not None and params.delimiter:
        xml.add("NextMarker", encode(page.next_marker))
    _tail(xml, params.max_keys, params.delimiter, params.url_encoding, page.truncated)
    _entries(xml, page, "Contents", owner, encode)
    return xml.done()


def render_list_objects_v2(
    bucket: str, params: ListObjectsParams, rows: Sequence[Row], owner: Owner
) -> bytes:
    """ListObjectsV2: KeyCount, continuation tokens; owners only with fetch-owner=true."""
    page = page_of(rows, params.page_size)
    encode = _encoder(params.url_encoding)
    xml = _Xml("ListBucketResult")
    xml.add("Name", bucket)
    xml.add("Prefix", encode(params.prefix))
    xml.add("ContinuationToken", params.continuation_token)
    if page.next_marker is not None:
        xml.add("NextContinuationToken", encode_token(page.next_marker))
    if params.start_after is not None:
        xml.add("StartAfter", encode(params.start_after))
    xml.add("KeyCount", len(page.objects) + len(page.prefixes))
    _tail(xml, params.max_keys, params.delimiter, params.url_encoding, page.truncated)
    _entries(xml, page, "Contents", owner if params.fetch_owner else None, encode)
    return xml.done()


def render_list_object_versions(
    bucket: str, params: ListVersionsParams, rows: Sequence[Row], owner: Owner
) -> bytes:
    """ListObjectVersions of an unversioned bucket: each object is its one version, "null"."""
    page = page_of(rows, params.page_size)
    encode = _encoder(params.url_encoding)
    xml = _Xml("ListVersionsResult")
    xml.add("Name", bucket)
    xml.add("Prefix", encode(params.prefix))
    xml.add("KeyMarker", encode(params.key_marker))
    xml.add("VersionIdMarker", params.version_id_marker or "")
    if page.next_marker is not None:
        xml.add("NextKeyMarker", encode(page.next_marker))
        xml.add("NextVersionIdMarker", "null")
    _tail(xml, params.max_keys, params.delimiter, params.url_encoding, page.truncated)
    _entries(xml, page, "Version", owner, encode)
    return xml.done()


def render_list_buckets(params: ListBucketsParams, rows: Sequence[Row], owner: Owner) -> bytes:
    """ListBuckets from the account listing's rows (``name``, ``last_modified``: the
    container's creation); ContinuationToken (the next page's) and Prefix only when paged or
    filtered, as AWS."""
    page = page_of(rows, params.page_size)
    xml = _Xml("ListAllMyBucketsResult")
    xml.raw(_owner(owner))
    xml.raw("<Buckets>")
    for row in page.objects:
        xml.raw(
            f"<Bucket><Name>{xml_text(row['name'])}</Name>"
            f"<CreationDate>{s3_time(row['last_modified'])}</CreationDate></Bucket>"
        )
    xml.raw("</Buckets>")
    if page.next_marker is not None:
        xml.add("ContinuationToken", encode_token(page.next_marker))
    if params.prefix:
        xml.add("Prefix", params.prefix)
    return xml.done()


def private_acl(owner: Owner) -> str:
    """An AccessControlPolicy granting the owner FULL_CONTROL: a private bucket's or object's."""
    ident = escape(owner.id)
    return (
        f'<AccessControlPolicy xmlns="{NAMESPACE}"><Owner><ID>{ident}</ID>'
        f"<DisplayName>{ident}</DisplayName></Owner><AccessControlList><Grant>"
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="CanonicalUser"><ID>{ident}</ID><DisplayName>{ident}</DisplayName>'
        "</Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>"
        "</AccessControlPolicy>"
    )
