"""Where S3 multipart uploads keep their parts (proxy/s3/multipart.py says how), shared by the
operations that create, complete and abort them and those that delete a completed one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web

from ..context import Proxy
from ..paths import SwiftPath
from .context import S3Context
from .errors import S3Error
from .swift import body_of, call, error_from_status

SEGMENTS_SUFFIX = "+segments"
UPLOAD_ID_SYSMETA = "X-Object-Sysmeta-S3-Upload-Id"
LISTING_PAGE = 10_000


def segments_container(bucket: str) -> str:
    return bucket + SEGMENTS_SUFFIX


def marker_name(key: str, upload_id: str) -> str:
    return f"{key}/{upload_id}"


def part_name(key: str, upload_id: str, number: int) -> str:
    return f"{key}/{upload_id}/{number:05d}"


def parts_prefix(key: str, upload_id: str) -> str:
    """What the names of an upload's parts start with."""
    return marker_name(key, upload_id) + "/"


def is_upload_container(name: str) -> bool:
    """Whether an account's container holds multipart uploads rather than being a bucket."""
    return name.endswith(SEGMENTS_SUFFIX)


def segments_path(ctx: S3Context, obj: str | None = None) -> SwiftPath:
    assert ctx.bucket is not None
    return SwiftPath(ctx.account, segments_container(ctx.bucket), obj)


def marker_path(ctx: S3Context, key: str, upload_id: str) -> SwiftPath:
    """Where the marker of the upload ``upload_id`` of ``key`` is."""
    return segments_path(ctx, marker_name(key, upload_id))


async def create_upload_containers(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """The bucket's containers for multipart uploads, if not there yet."""
    made = await call(request, proxy, "PUT", segments_path(ctx), {"Content-Length": "0"})
    if not 200 <= made.status < 300:
        raise error_from_status(made.status, ctx)


async def delete_upload_containers(request: web.Request, proxy: Proxy, ctx: S3Context) -> None:
    """The deleted bucket's containers for multipart uploads, unless they still hold some."""
    await call(request, proxy, "DELETE", segments_path(ctx), {})


def _key(ctx: S3Context) -> str:
    assert ctx.key is not None
    return ctx.key


async def segments_listing(
    request: web.Request, proxy: Proxy, ctx: S3Context, query: Mapping[str, str]
) -> list[dict]:
    response = await call(request, proxy, "GET", segments_path(ctx), {}, urlencode(query))
    if response.status in (204, 404):
        return []
    if response.status != 200:
        raise error_from_status(response.status, ctx)
    return json.loads(body_of(response))


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
