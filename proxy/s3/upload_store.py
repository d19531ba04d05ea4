"""Where S3 multipart uploads are kept (proxy/s3/multipart.py says how they are used), shared
by the operations that create, complete, abort and list them and those that delete a
completed one.  Two containers of the bucket's account, neither ever a bucket (S3 bucket
names cannot hold ``+``):

- ``<bucket>+segments``: the parts, ``<key>/<upload id>/<NNNNN>``.
- ``<bucket>+uploads``: one marker object per upload in progress, holding the final object's
  content type and metadata, so that a listing of it (ListMultipartUploads,
  proxy/s3/upload_listing.py) is the uploads alone, a page for a page, however many parts
  they have.  A marker is named ``encode_key(key) + SEPARATOR + upload id``:

  - ``SEPARATOR`` is ``\\x01\\x01`` and ``encode_key`` writes each ``\\x01`` of the key as
    ``\\x01\\x02`` (Swift names cannot hold NUL, the one character below ``\\x01``).  So the
    encoded key never holds the separator, the separator sorts below anything that can
    follow a key, and the byte order of marker names is the order S3 lists uploads in: by
    key (a key before every longer key it starts with: ``photo`` before ``photo-1``, which
    ``<key>/<upload id>`` got wrong, ``-`` being below ``/``), then by upload id.
  - A delimiter made of neither ``\\x01``, ``\\x02`` nor only hex digits cannot match across
    the separator or inside the upload id, so the container listing's own ``delimiter``
    gives S3's common prefixes (upload_listing.py computes the others itself).

Before the uploads container, markers were ``<key>/<upload id>`` in the segments container.
Such an upload still completes, aborts and takes parts (``marker_headers`` and
``delete_marker`` look there when the uploads container has no marker, one more HEAD or
DELETE), but ListMultipartUploads does not list it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict

from ..context import Proxy
from ..paths import SwiftPath
from .context import S3Context
from .errors import S3Error
from .swift import body_of, call, error_from_status, head_object

SEGMENTS_SUFFIX = "+segments"
UPLOADS_SUFFIX = "+uploads"
UPLOAD_CONTAINER_SUFFIXES = (SEGMENTS_SUFFIX, UPLOADS_SUFFIX)
UPLOAD_ID_SYSMETA = "X-Object-Sysmeta-S3-Upload-Id"
LISTING_PAGE = 10_000
DELETES_AT_ONCE = 16  # a deleted bucket's leftover parts, deleted this many at a time
SEPARATOR = "\x01\x01"  # between a marker's encoded key and its upload id
_ESCAPE, _ESCAPED = "\x01", "\x01\x02"
AFTER_EVERY_ID = "\U0010ffff"  # above every upload id: ``marker_name(key, AFTER_EVERY_ID)``


def segments_container(bucket: str) -> str:
    return bucket + SEGMENTS_SUFFIX


def uploads_container(bucket: str) -> str:
    return bucket + UPLOADS_SUFFIX


def encode_key(key: str) -> str:
    """A key (or a prefix of one) as marker names hold it: order-preserving, never holding
    ``SEPARATOR``, and a prefix of a key encodes to a prefix of the key's encoding."""
    return key.replace(_ESCAPE, _ESCAPED)


def decode_key(text: str) -> str:
    return text.replace(_ESCAPED, _ESCAPE)


def marker_name(key: str, upload_id: str) -> str:
    """The name of the upload's marker in the uploads container."""
    return encode_key(key) + SEPARATOR + upload_id


def parse_marker_name(name: str) -> tuple[str, str] | None:
    """(key, upload id) of a marker name; None for a name that is not one."""
    head, separator, upload_id = name.partition(SEPARATOR)
    if not separator or not upload_id:
        return None
    return decode_key(head), upload_id


def part_name(key: str, upload_id: str, number: int) -> str:
    return f"{key}/{upload_id}/{number:05d}"


def parts_prefix(key: str, upload_id: str) -> str:
    """What the names of an upload's parts start with."""
    return f"{key}/{upload_id}/"


def is_upload_container(name: str) -> bool:
    """Whether an account's container holds multipart uploads rather than being a bucket."""
    return name.endswith(UPLOAD_CONTAINER_SUFFIXES)


def segments_path(ctx: S3Context, obj: str | None = None) -> SwiftPath:
    assert ctx.bucket is not None
    return SwiftPath(ctx.account, segments_container(ctx.bucket), obj)


def uploads_path(ctx: S3Context, obj: str | None = None) -> SwiftPath:
    assert ctx.bucket is not None
    return SwiftPath(ctx.account, uploads_container(ctx.bucket), obj)


def marker_path(ctx: S3Context, key: str, upload_id: str) -> SwiftPath:
    """Where the marker of the upload ``upload_id`` of ``key`` is (for an upload begun before
    the uploads container, see ``legacy_marker_path``)."""
    return uploads_path(ctx, marker_name(key, upload_id))


def legacy_marker_path(ctx: S3Context, key: str, upload_id: str) -> SwiftPath:
    """Where an upload begun before the uploads container keeps its marker."""
    return segments_path(ctx, f"{key}/{upload_id}")


async def create_upload_containers(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """The bucket's containers for multipart uploads, if not there yet: both PUTs at once
    (each its own clone of the request, neither reading its body), so CreateMultipartUpload
    waits for about one container PUT, as when there was one container.  Both are awaited
    to their end; an exception either raised is raised as it is (the frontend maps it)."""
    made = await asyncio.gather(
        *(
            call(request, proxy, "PUT", path, {"Content-Length": "0"})
            for path in (segments_path(ctx), uploads_path(ctx))
        ),
        return_exceptions=True,
    )
    for response in made:
        if isinstance(response, BaseException):
            raise response
        if not 200 <= response.status < 300:
            raise error_from_status(response.status, ctx)


async def delete_upload_containers(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """A deleted bucket's containers for multipart uploads, emptied first: uploads in
    progress go with the bucket, as AWS aborts them.  The bucket being empty, whatever the
    segments container holds is a part of such an upload, or one a Swift API overwrite or
    delete of a completed upload left behind."""
    for path in (uploads_path(ctx), segments_path(ctx)):
        query = {"format": "json", "limit": str(LISTING_PAGE)}
        while rows := await container_listing(request, proxy, ctx, path, query):
            names = [row["name"] for row in rows]
            for start in range(0, len(names), DELETES_AT_ONCE):
                await asyncio.gather(
                    *(
                        delete_segment(request, proxy, SwiftPath(path.account, path.container, n))
                        for n in names[start : start + DELETES_AT_ONCE]
                    )
                )
            query["marker"] = names[-1]  # on past them: a row lagging its delete is not seen again
        # Refused (409) if a listing row still lags its delete: left, as before.
        await call(request, proxy, "DELETE", path, {})


async def marker_headers(
    request: web.Request, proxy: Proxy, ctx: S3Context, key: str, upload_id: str
) -> CIMultiDict[str] | None:
    """The headers of the upload's marker; None if there is none (no such upload).  One
    HEAD; a second, in the segments container, when the uploads container has no marker (an
    upload begun before it, or none at all)."""
    for path in (marker_path(ctx, key, upload_id), legacy_marker_path(ctx, key, upload_id)):
        status, headers = await head_object(request, proxy, path, {})
        if 200 <= status < 300:
            return headers
        if status != 404:
            raise error_from_status(status, ctx)
    return None


async def delete_marker(
    request: web.Request, proxy: Proxy, ctx: S3Context, key: str, upload_id: str
) -> None:
    """The upload's marker deleted, wherever it is (a second DELETE for an older upload)."""
    response = await call(request, proxy, "DELETE", marker_path(ctx, key, upload_id), {})
    if response.status == 404:
        response = await call(request, proxy, "DELETE", legacy_marker_path(ctx, key, upload_id), {})
    if not (200 <= response.status < 300 or response.status == 404):
        raise S3Error("InternalError", f"could not delete an upload: {response.status}")


def _key(ctx: S3Context) -> str:
    assert ctx.key is not None
    return ctx.key


async def container_listing(
    request: web.Request, proxy: Proxy, ctx: S3Context, path: SwiftPath, query: Mapping[str, str]
) -> list[dict]:
    """A json listing of one of the bucket's upload containers; none if it does not exist."""
    response = await call(request, proxy, "GET", path, {}, urlencode(query))
    if response.status in (204, 404):
        return []
    if response.status != 200:
        raise error_from_status(response.status, ctx)
    return json.loads(body_of(response))


async def segments_listing(
    request: web.Request, proxy: Proxy, ctx: S3Context, query: Mapping[str, str]
) -> list[dict]:
    return await container_listing(request, proxy, ctx, segments_path(ctx), query)


async def upload_parts(
    request: web.Request, proxy: Proxy, ctx: S3Context, upload_id: str
) -> dict[int, dict]:
    """Every uploaded part of the upload: number -> its listing row."""
    prefix = parts_prefix(_key(ctx), upload_id)
    parts: dict[int, dict] = {}
    marker = ""
    while True:
        query = {"format": "json", "prefix": prefix, "limit": str(LISTING_PAGE)}
        if marker:
            query["marker"] = marker
        rows = await segments_listing(request, proxy, ctx, query)
        for row in rows:
            tail = row["name"][len(prefix) :]
            if tail.isdigit():
                parts[int(tail)] = row
        if len(rows) < LISTING_PAGE:
            return parts
        marker = rows[-1]["name"]


async def delete_segment(request: web.Request, proxy: Proxy, path: SwiftPath) -> None:
    response = await call(request, proxy, "DELETE", path, {})
    if not (200 <= response.status < 300 or response.status == 404):
        raise S3Error("InternalError", f"could not delete a part: {response.status}")


async def delete_parts(request: web.Request, proxy: Proxy, ctx: S3Context, upload_id: str) -> None:
    for row in (await upload_parts(request, proxy, ctx, upload_id)).values():
        await delete_segment(request, proxy, segments_path(ctx, row["name"]))
