"""ListMultipartUploads: the uploads in progress in a bucket, by key then upload id, paged.

The uploads container (proxy/s3/upload_store.py) holds one marker per upload and nothing
else, so a page costs one listing of it: ``limit`` one past the page (the extra entry says
whether the page is truncated), starting at the listing marker the key-marker and
upload-id-marker name, with the prefix encoded as marker names encode keys.

The delimiter applies to the key.  The container's own ``delimiter`` gives S3's common
prefixes when it cannot match the separator or the upload id that follow the key in a
marker's name (``_container_can_delimit``: any delimiter but those holding ``\\x01`` or
``\\x02`` or made of hex digits only).  For the others the page is listed without one, the
common prefixes are computed here, and each costs one more listing, which starts past its
subtree rather than walking it.

What AWS does (the API reference), and so this does:
- ``key-marker`` alone: uploads of keys after it; with ``upload-id-marker``: uploads of that
  key with a greater upload id too; ``upload-id-marker`` without ``key-marker`` is ignored.
- A CommonPrefix counts toward ``max-uploads`` (1000 at most, served and echoed); a page
  ending in one has that prefix as NextKeyMarker and no NextUploadIdMarker, and a
  key-marker that is such a prefix is past all of it (as the container listing skips a
  subdir equal to its marker).  NextKeyMarker / NextUploadIdMarker only when truncated.
- ``encoding-type=url`` encodes Delimiter, KeyMarker, Prefix, NextKeyMarker, Key and the
  CommonPrefixes' Prefix, as listing_xml.url_encode does for the object listings.
- Within a key, uploads come by upload id, which begins with the upload's start time
  (multipart.new_upload_id): in the order they began, as AWS lists them.
- ``max-uploads=0`` is an empty page, never truncated (as ListObjects' ``max-keys=0``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from service.listing import MAX_LIMIT

from ..context import Proxy
from ..paths import SwiftPath
from .context import S3Context, owner_of
from .listing_xml import NAMESPACE, Owner, parse_encoding_type, s3_time, url_encode, xml_text
from .multipart import max_items
from .swift import call, error_from_status
from .upload_store import (
    AFTER_EVERY_ID,
    container_listing,
    decode_key,
    encode_key,
    marker_name,
    parse_marker_name,
    uploads_path,
)

MAX_UPLOADS = 1000
_HEX_DIGITS = frozenset("0123456789abcdef")
PAST_SUBTREE = "\U0010ffff"  # after a common prefix's encoding: past (almost) all it holds

Fetch = Callable[[dict[str, str]], Awaitable[list[dict]]]  # a json listing of the container


@dataclass(frozen=True, slots=True)
class UploadsParams:
    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    upload_id_marker: str = ""
    max_uploads: int = MAX_UPLOADS
    url_encoding: bool = False


def parse_list_uploads(query: Mapping[str, str]) -> UploadsParams:
    """The query's parameters; InvalidArgument for a bad max-uploads or encoding-type."""
    return UploadsParams(
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        key_marker=query.get("key-marker", ""),
        upload_id_marker=query.get("upload-id-marker", ""),
        max_uploads=max_items(query, "max-uploads", MAX_UPLOADS),
        url_encoding=parse_encoding_type(query),
    )


@dataclass(frozen=True, slots=True)
class Upload:
    key: str
    upload_id: str
    initiated: str  # the Swift listing's last_modified of its marker


@dataclass(frozen=True, slots=True)
class UploadsPage:
    entries: list[Upload | str]  # in listing order; a str is a CommonPrefix
    truncated: bool

    @property
    def uploads(self) -> list[Upload]:
        return [entry for entry in self.entries if isinstance(entry, Upload)]

    @property
    def prefixes(self) -> list[str]:
        return [entry for entry in self.entries if isinstance(entry, str)]

    def next_markers(self) -> tuple[str | None, str | None]:
        """(NextKeyMarker, NextUploadIdMarker): the page's last entry, when truncated."""
        if not self.truncated or not self.entries:
            return None, None
        last = self.entries[-1]
        if isinstance(last, str):
            return last, None
        return last.key, last.upload_id


def _container_can_delimit(delimiter: str) -> bool:
    """Whether the container's ``delimiter`` finds S3's common prefixes in marker names: only
    if it can match neither across the separator (``\\x01\\x01``) nor within an escape
    (``\\x01\\x02``) nor inside the hex upload id."""
    if "\x01" in delimiter or "\x02" in delimiter:
        return False
    return not set(delimiter) <= _HEX_DIGITS


def _common_prefix(params: UploadsParams, key: str) -> str | None:
    """The CommonPrefix ``key`` is rolled into, or None if it is listed as it is."""
    if not params.delimiter or not key.startswith(params.prefix):
        return None
    end = key.find(params.delimiter, len(params.prefix))
    return None if end < 0 else key[: end + len(params.delimiter)]


def _start(params: UploadsParams, container_delimits: bool) -> tuple[str, str | None]:
    """(the first listing's marker, a CommonPrefix not to list: the key-marker, if it is
    one)."""
    key = params.key_marker
    if not key:
        return "", None
    if _common_prefix(params, key) == key:
        # Past the whole prefix; the container itself skips a subdir equal to its marker.
        if container_delimits:
            return encode_key(key), key
        return encode_key(key) + PAST_SUBTREE, key
    return marker_name(key, params.upload_id_marker or AFTER_EVERY_ID), None


async def uploads_page(params: UploadsParams, fetch: Fetch) -> UploadsPage:
    """The page ``params`` ask for, from the uploads container's listing ``fetch``."""
    if params.max_uploads <= 0:
        return UploadsPage([], False)
    container_delimits = not params.delimiter or _container_can_delimit(params.delimiter)
    marker, skipped = _start(params, container_delimits)
    wanted = params.max_uploads + 1  # one past the page: is it truncated?
    entries: list[Upload | str] = []
    while len(entries) < wanted:
        limit = min(wanted - len(entries), MAX_LIMIT)
        rows = await fetch(_query(params, container_delimits, marker, limit))
        common = None
        for row in rows:
            if "subdir" in row:
                marker = row["subdir"]
                entries.append(decode_key(marker))
                continue
            marker = row["name"]
            parsed = parse_marker_name(marker)
            if parsed is None:
                continue  # not a marker (put there through the Swift API)
            key, upload_id = parsed
            common = None if container_delimits else _common_prefix(params, key)
            if common is None:
                entries.append(Upload(key, upload_id, row["last_modified"]))
            elif common != skipped and (not entries or entries[-1] != common):
                entries.append(common)
            if len(entries) >= wanted:
                break
        if len(rows) < limit:
            break  # the container's end
        if common is not None:  # the batch ended inside a subtree: list on past it
            marker = max(marker, encode_key(common) + PAST_SUBTREE)
    return UploadsPage(entries[: params.max_uploads], len(entries) > params.max_uploads)


def _query(
    params: UploadsParams, container_delimits: bool, marker: str, limit: int
) -> dict[str, str]:
    query = {"format": "json", "limit": str(limit)}
    if params.prefix:
        query["prefix"] = encode_key(params.prefix)
    if params.delimiter and container_delimits:
        query["delimiter"] = params.delimiter
    if marker:
        query["marker"] = marker
    return query


def render_list_uploads(
    bucket: str, params: UploadsParams, page: UploadsPage, owner: Owner
) -> bytes:
    """ListMultipartUploadsResult, its elements in the API reference's order."""
    encode = url_encode if params.url_encoding else _same
    who = f"<ID>{xml_text(owner.id)}</ID><DisplayName>{xml_text(owner.display_name)}</DisplayName>"
    next_key, next_upload_id = page.next_markers()
    out = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="{NAMESPACE}">',
        _element("Bucket", bucket),
        _element("KeyMarker", encode(params.key_marker)),
        _element("UploadIdMarker", params.upload_id_marker),
    ]
    if next_key is not None:
        out.append(_element("NextKeyMarker", encode(next_key)))
    if params.prefix:
        out.append(_element("Prefix", encode(params.prefix)))
    if params.delimiter:
        out.append(_element("Delimiter", encode(params.delimiter)))
    if next_upload_id is not None:
        out.append(_element("NextUploadIdMarker", next_upload_id))
    out.append(_element("MaxUploads", str(params.max_uploads)))
    out.append(_element("IsTruncated", "true" if page.truncated else "false"))
    out += [
        f"<Upload>{_element('Key', encode(u.key))}{_element('UploadId', u.upload_id)}"
        f"<Initiator>{who}</Initiator><Owner>{who}</Owner><StorageClass>STANDARD</StorageClass>"
        f"<Initiated>{s3_time(u.initiated)}</Initiated></Upload>"
        for u in page.uploads
    ]
    out += [
        f"<CommonPrefixes>{_element('Prefix', encode(p))}</CommonPrefixes>" for p in page.prefixes
    ]
    if params.url_encoding:
        out.append(_element("EncodingType", "url"))
    out.append("</ListMultipartUploadsResult>")
    return "".join(out).encode("utf-8")


def _element(name: str, text: str) -> str:
    return f"<{name}>{xml_text(text)}</{name}>"


def _same(value: str) -> str:
    return value


async def list_uploads(request: web.Request, proxy: Proxy, ctx: S3Context) -> web.Response:
    """ListMultipartUploads: a page of the uploads container's markers.  NoSuchBucket for a
    missing bucket (asked only when the uploads container is missing or empty)."""
    assert ctx.bucket is not None
    params = parse_list_uploads(request.query)

    async def fetch(query: dict[str, str]) -> list[dict]:
        return await container_listing(request, proxy, ctx, uploads_path(ctx), query)

    page = await uploads_page(params, fetch)
    if not page.entries:
        await _require_bucket(request, proxy, ctx)
    body = render_list_uploads(ctx.bucket, params, page, owner_of(request))
    return web.Response(status=200, body=body, content_type="application/xml")


async def _require_bucket(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    assert ctx.bucket is not None
    response = await call(request, proxy, "HEAD", SwiftPath(ctx.account, ctx.bucket), {})
    if not 200 <= response.status < 300:
        raise error_from_status(response.status, ctx, missing="NoSuchBucket")
