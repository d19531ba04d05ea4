"""PUT, POST and DELETE of one object: checks, the engine call, then the container update.

A PUT or POST with an X-Delete-At also records the object in the expirer's queue (the
container servers the proxy names in X-Delete-At-*), after the listing row, the same way.

A PUT body streams chunk by chunk into the engine's ObjectWrite, never whole in memory, and
is answered 201 only after the commit (data and index durable) and the container update
(sent, or saved as an async_pending).  Errors are raised, and mapped to statuses in
objectd/http_errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from typing import TypeVar

from aiohttp import web
from aiohttp.http import HttpVersion11
from multidict import CIMultiDict

from service.backend_client import BACKEND_CLIENT
from service.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PreconditionFailed,
    RequestEntityTooLarge,
)
from service.http_semantics import (
    CONDITIONAL_CONFLICT_HEADER,
    PUT_PRECONDITIONS,
    evaluate_preconditions,
)
from service.names import MAX_FILE_SIZE, BackendPath, parse_backend_path
from service.timestamp import Timestamp

from . import backend_headers, container_update, http_headers, layout
from .app_keys import CONFIG, ENGINE, FINISHING, RNG, WRITE_LEASES
from .errors import ObjectConflict, ObjectNotFound
from .finishing import finish
from .http_errors import ClientDisconnected, ClientTimeout
from .metadata import ObjectMetadata
from .upload import ObjectWrite
from .write_leases import LeaseHeld

RECEIVE_BUFFER_BYTES = 1 << 20
T = TypeVar("T")


def object_path(request: web.Request) -> BackendPath:
    return parse_backend_path(request.raw_path, min_parts=5, max_parts=5)


async def handle_put(request: web.Request) -> web.Response:
    engine, path = request.app[ENGINE], object_path(request)
    headers = request.headers
    timestamp = http_headers.request_timestamp(headers)
    footer, late_sysmeta = http_headers.checksum_footer(headers)  # and the sysmeta it brings
    footer_bytes = http_headers.footer_bytes(footer, late_sysmeta)
    content_length = http_headers.put_content_length(headers, footer_bytes=footer_bytes)
    content_type = http_headers.put_content_type(headers)
    delete_at = http_headers.delete_at(headers, timestamp)
    stored = http_headers.stored_headers(headers)
    backend_headers.keep_put_overrides(headers, stored)  # so a POST's row repeats them
    targets = container_update.parse_targets(headers)
    queue = container_update.parse_queue_targets(headers) if delete_at is not None else None
    with _conditional_lease(request, path):
        _check_put_preconditions(request, path)
        write = await engine.open_write(
            *_names(path), timestamp, content_length=content_length, checksum_footer=footer
        )

        async def commit_and_update() -> ObjectMetadata:
            meta = await write.commit(
                content_type, stored, headers.get("ETag"), delete_at=delete_at
            )
            await _row_and_queue(request, path, meta, targets, queue, delete_at, timestamp)
            return meta

        async with write:  # aborts (nothing stored) unless committed
            if late_sysmeta is not None:
                write.expect_footer_meta(late_sysmeta)
            await send_continue(request)
            await _receive_body(request, write)
            meta = await _to_the_end(request, commit_and_update())
    return web.Response(status=201, headers={"ETag": f'"{meta.etag}"'})


async def handle_post(request: web.Request) -> web.Response:
    engine, path = request.app[ENGINE], object_path(request)
    headers = request.headers
    timestamp = http_headers.request_timestamp(headers)
    delete_at = http_headers.delete_at(headers, timestamp)
    content_type = http_headers.post_content_type(headers)
    stored = http_headers.stored_headers(headers)
    targets = container_update.parse_targets(headers)
    queue = container_update.parse_queue_targets(headers) if delete_at is not None else None

    async def post_and_update() -> ObjectMetadata:
        meta = await engine.post(
            *_names(path), timestamp, content_type, stored, delete_at=delete_at
        )
        # Swift sends the row again after a POST: its content type may have changed.
        await _row_and_queue(request, path, meta, targets, queue, delete_at, timestamp)
        return meta

    meta = await _to_the_end(request, post_and_update())
    reply = {k: v for k, v in meta.user_meta.items() if k.lower().startswith("x-object-sysmeta-")}
    reply["X-Backend-Content-Type"] = meta.content_type
    return web.Response(status=202, headers=reply)


async def handle_delete(request: web.Request) -> web.Response:
    engine, path = request.app[ENGINE], object_path(request)
    headers = request.headers
    timestamp = http_headers.request_timestamp(headers)
    targets = container_update.parse_targets(headers)
    expiring = "X-If-Delete-At" in headers
    if expiring:
        _check_if_delete_at(request, path, timestamp)

    async def delete_and_update() -> ObjectMetadata | None:
        replaced = await engine.delete(*_names(path), timestamp)
        if targets is not None:
            update_headers = container_update.delete_headers(timestamp, headers.get("X-Trans-Id"))
            await _update_containers(request, path, targets, "DELETE", update_headers, timestamp)
        return replaced

    replaced = await _to_the_end(request, delete_and_update())
    reply = {
        "X-Backend-Timestamp": timestamp.internal,
        "X-Backend-Content-Type": replaced.content_type if replaced else "",
    }
    if replaced is None and not expiring:
        return web.Response(status=404, headers=reply, text="Not Found")
    # The expirer's DELETE of the version it was queued for succeeds though that version
    # has expired (so is no longer live): Swift tells that apart from "nothing there".
    return web.Response(status=204, headers=reply)


async def _to_the_end(request: web.Request, work: Awaitable[T]) -> T:
    """A write and its container update, run to their end even if the handler is cancelled
    (a shutdown, a client gone): once the write may commit, the object must get its listing
    row or an async_pending, whether or not anyone hears the answer."""
    return await finish(work, request.app[FINISHING])


def _names(path: BackendPath) -> tuple[str, int, str, str, str]:
    assert path.container is not None and path.obj is not None
    return path.device, path.partition, path.account, path.container, path.obj


def _conditional_lease(request: web.Request, path: BackendPath) -> AbstractContextManager[None]:
    """A conditional PUT's lease on its name (objectd/write_leases.py), held from before its
    precondition check to its answer, so that no other conditional PUT of the name passes its
    check meanwhile on this replica (409 for the one refused).  Nothing for an unconditional
    PUT."""
    if not any(name in request.headers for name in PUT_PRECONDITIONS):
        return contextlib.nullcontext()
    _current(request, path)  # an unavailable device is its 507, before any lock file is made
    name = layout.object_name(*_names(path)[2:])
    try:
        return request.app[WRITE_LEASES].take(path.device, name)
    except LeaseHeld:
        raise Conflict(
            "A conditional write of this object is in progress",
            headers={CONDITIONAL_CONFLICT_HEADER: "true"},
        ) from None


def _check_put_preconditions(request: web.Request, path: BackendPath) -> None:
    """A PUT's If-None-Match (``*`` or ETags) and If-Match (``*`` or ETags): 412 unless they
    hold for the version stored now.  (Swift's object server honours only If-None-Match.)

    The current ETag is the one X-Backend-Etag-Is-At names, if the object has it (a manifest's
    client only ever saw that ETag).
    """
    headers = request.headers
    conditions = {name: headers[name] for name in PUT_PRECONDITIONS if name in headers}
    if not conditions:
        return
    current = _current(request, path)
    status = evaluate_preconditions(
        CIMultiDict(conditions),
        method="PUT",
        etag=backend_headers.conditional_etag(request.headers, current) if current else None,
        last_modified=None,
        exists=current is not None,
    )
    if status is not None:
        raise PreconditionFailed("Precondition Failed")


def _current(request: web.Request, path: BackendPath) -> ObjectMetadata | None:
    try:
        return request.app[ENGINE].get(*_names(path))
    except ObjectNotFound:
        return None


def _check_if_delete_at(request: web.Request, path: BackendPath, timestamp: Timestamp) -> None:
    """The expirer's DELETE: only the version whose X-Delete-At it was queued for.

    Swift writes no tombstone unless the check passes: 404 if nothing was ever there, 409 if
    a newer version is, 412 if the stored X-Delete-At differs.
    """
    try:
        wanted = Timestamp.parse(request.headers["X-If-Delete-At"])
    except ValueError:
        raise BadRequest("Bad X-If-Delete-At header value") from None
    try:
        current = request.app[ENGINE].get(*_names(path))
    except ObjectNotFound as exc:
        if exc.metadata is None:
            raise NotFound("Not Found") from None
        current = exc.metadata  # a tombstone, or an expired version: the expirer's case
    if current.timestamp >= timestamp:
        raise ObjectConflict("a newer version is stored", timestamp=current.timestamp)
    stored = Timestamp.from_seconds(current.delete_at or 0)
    if stored.raw != wanted.raw:
        raise PreconditionFailed("X-If-Delete-At and X-Delete-At do not match")


async def send_continue(request: web.Request) -> None:
    """100 Continue if the client waits for it (a PUT: once its checks passed)."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's own handler: no response bytes yet


async def _receive_body(request: web.Request, write: ObjectWrite) -> None:
    """Hand the body to ``write`` as aiohttp received it: one piece per socket read, no copy.

    The stream is allowed RECEIVE_BUFFER_BYTES before aiohttp stops reading the socket (its
    default, 64 KiB, paused and resumed it for nearly every read of a large body).
    """
    timeout_s = request.app[CONFIG].client_timeout_s
    content = request.content
    content.set_read_chunk_size(RECEIVE_BUFFER_BYTES)
    limit = MAX_FILE_SIZE + write.footer_bytes
    received = 0
    while True:
        try:
            if content.is_eof():  # the rest is buffered already (a small body): no wait
                chunk, _ = await content.readchunk()
            else:
                async with asyncio.timeout(timeout_s):
                    chunk, _ = await content.readchunk()
        except TimeoutError:
            raise ClientTimeout() from None
        except (OSError, web.RequestPayloadError) as exc:
            raise ClientDisconnected(str(exc)) from exc
        if not chunk:
            if content.at_eof():
                return
            continue  # the end of an HTTP chunk, with no data
        received += len(chunk)
        if received > limit:  # a chunked body has no length
            raise RequestEntityTooLarge("Your request is too large.")
        await write.write(chunk)


async def _update_containers(
    request: web.Request,
    path: BackendPath,
    targets: container_update.UpdateTargets,
    op: str,
    headers: dict[str, str],
    timestamp: Timestamp,
) -> None:
    app = request.app
    update = container_update.Update(op, path, headers, timestamp)
    timeout_s = app[CONFIG].container_update_timeout_s
    await container_update.send(
        app[BACKEND_CLIENT], app[ENGINE], app[RNG], targets, update, timeout_s
    )


async def _row_and_queue(
    request: web.Request,
    path: BackendPath,
    meta: ObjectMetadata,
    targets: container_update.UpdateTargets | None,
    queue: tuple[str, container_update.UpdateTargets] | None,
    delete_at: int | None,
    timestamp: Timestamp,
) -> None:
    """The listing row of a PUT or POST and, with an X-Delete-At, its expirer queue row: at
    once when there are both (they go to different containers, so neither waits for the
    other's fsync)."""
    row = None
    if targets is not None:
        update_headers = container_update.put_headers(meta, request.headers.get("X-Trans-Id"))
        row = _update_containers(request, path, targets, "PUT", update_headers, timestamp)
    if queue is None or delete_at is None:
        if row is not None:
            await row
        return
    expirer = _queue_for_expirer(request, path, queue, delete_at, timestamp)
    if row is None:
        await expirer
        return
    async with asyncio.TaskGroup() as group:
        group.create_task(row)
        group.create_task(expirer)


async def _queue_for_expirer(
    request: web.Request,
    path: BackendPath,
    queue: tuple[str, container_update.UpdateTargets],
    delete_at: int,
    timestamp: Timestamp,
) -> None:
    """Record an object with an X-Delete-At in the expirer's queue (or an async_pending).

    A record an overwrite or a DELETE made stale stays: the expirer's DELETE carries
    ``X-If-Delete-At`` and drops the record when the object no longer matches it.
    """
    container, targets = queue
    app = request.app
    queue_headers = container_update.queue_headers(timestamp, request.headers.get("X-Trans-Id"))
    update = container_update.queue_update(path, container, delete_at, queue_headers, timestamp)
    timeout_s = app[CONFIG].container_update_timeout_s
    await container_update.send(
        app[BACKEND_CLIENT], app[ENGINE], app[RNG], targets, update, timeout_s
    )
