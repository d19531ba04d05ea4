"""The receiving end of the replication push: ``SSYNC /<device>/<partition>``.

Two requests (the format: objectd/replication_wire.py).  A **missing check** lists versions
the sender holds; the answer names those this replica wants: the data (nothing as new here)
or only the metadata (same data, an older POST).  An **updates** request then streams them:
each update is applied through the engine with the sender's timestamps and metadata; the
answer, sent once every update is durable (committed by the device's writer), says how many
were applied and how many ignored because this replica already held a version as new.  A
tombstone is stored as a tombstone (``engine.delete`` at its time).

Bodies stream from the request into the engine's write a chunk at a time; up to
``MAX_IN_FLIGHT`` commits run while the next frames are read, so that they share group
commits.  Memory per request: one read chunk, one update's metadata, and what the commits in
flight hold (at most ``MAX_IN_FLIGHT_BYTES`` of bodies), never a whole large object.

Only the engine's public calls are used (``get``, ``open_write``, ``post``, ``delete``), so
the in-memory twin serves here too.  What they cannot express exactly:
- a version's content type set by one POST and its other metadata by a later one: replayed
  as two POSTs (content type at its timestamp, the rest at the newer one);
- a POST to a version whose X-Delete-At has passed: the engine refuses a POST to an expired
  object, so such metadata is ignored (counted as ignored) until the expirer deletes it.
No container updates are sent: the replica's listing row came with the original write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from service.errors import BadRequest, RequestEntityTooLarge
from service.names import check_device, parse_partition
from service.timestamp import Timestamp

from . import replication_wire as wire
from .app_keys import ENGINE, FINISHING, Engine
from .errors import ObjectConflict, ObjectNotFound
from .finishing import finish
from .metadata import ObjectMetadata
from .upload import ObjectWrite
from .versions import is_datafile_meta

READ_CHUNK_BYTES = 1 << 20  # a PUT body is read and written this much at a time
MAX_IN_FLIGHT = 32  # updates committing at once
# Body bytes those may hold in memory: a body waits in memory up to the engine's inline limit
# or its writer's flush size (2 MiB) until its commit; each counts for at most this much.
FLUSH_CAP_BYTES = 2 << 20
MAX_IN_FLIGHT_BYTES = 8 << 20


async def handle_ssync(request: web.Request) -> web.Response:
    device, partition = _parse_path(request)
    first = await _read_line(request, max(len(wire.MISSING_CHECK_LINE), len(wire.UPDATES_LINE)))
    engine = request.app[ENGINE]
    if first == wire.MISSING_CHECK_LINE:
        body = first + await _read_rest(request, wire.MAX_MISSING_CHECK_BYTES)
        try:
            offers = wire.decode_offers(body)
        except wire.WireError as exc:
            raise BadRequest(str(exc)) from None
        wants = await asyncio.to_thread(missing_check, engine, device, partition, offers)
        return web.Response(body=wire.encode_wants(wants), content_type="text/plain")
    if first == wire.UPDATES_LINE:
        result = await receive_updates(request, engine, device, partition)
        return web.Response(body=result.encode(), content_type="application/json")
    raise BadRequest(f"unknown SSYNC body {first[:40]!r}")


def missing_check(
    engine: Engine, device: str, partition: int, offers: list[wire.Offer]
) -> list[wire.Want]:
    """The offers this replica wants (blocking LMDB reads: run it in a thread)."""
    wants = []
    for offer in offers:
        local = _stored(engine, device, partition, offer.name)
        if local is None or local.timestamp < offer.timestamp:
            wants.append(wire.Want(offer.name, data=True))
        elif (
            local.timestamp == offer.timestamp
            and not offer.deleted
            and not local.deleted
            and (
                offer.meta_timestamp > local.meta_timestamp
                or offer.ctype_timestamp > local.ctype_timestamp
            )
        ):
            wants.append(wire.Want(offer.name, data=False))
    return wants


async def receive_updates(
    request: web.Request, engine: Engine, device: str, partition: int
) -> wire.UpdatesResult:
    """Apply the stream's updates; the answer once every one is durable.

    Each update's body is read in stream order, then its commit runs as a task while the next
    frames are read, up to ``MAX_IN_FLIGHT`` updates and ``MAX_IN_FLIGHT_BYTES`` of their
    bodies at once: their commits share the device's group commits (one fsync for many small
    objects, as concurrent PUTs get) instead of one fsync each.  Every commit started runs to
    its end, though the request fail or be cancelled (objectd/finishing.py).
    """
    tally = _Tally()
    in_flight: dict[asyncio.Task[bool], int] = {}  # the task, the body bytes it may hold
    try:
        while True:
            line = await _read_line(request, wire.MAX_HEAD_LINE_BYTES)
            try:
                head = wire.decode_update_head(line)
                if head is None:
                    break
                data = await _read_exactly(request, head.metadata_bytes)
                meta = wire.decode_update_metadata(head, data)
            except wire.WireError as exc:
                raise BadRequest(str(exc)) from None
            update = await _start(request, engine, device, partition, head, meta)
            if update is None:
                tally.ignored += 1
                continue
            in_flight[asyncio.ensure_future(update)] = min(head.body_bytes, FLUSH_CAP_BYTES)
            while len(in_flight) >= MAX_IN_FLIGHT or sum(in_flight.values()) > MAX_IN_FLIGHT_BYTES:
                done, _pending = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del in_flight[task]
                    tally.add(task)
    finally:
        if in_flight:
            # Also when the stream failed: a commit queued may yet land; wait for its outcome.
            await finish(asyncio.wait(in_flight), request.app[FINISHING])
            for task in in_flight:
                tally.add(task)
    return tally.result()


class _Tally:
    def __init__(self) -> None:
        self.applied = self.ignored = 0
        self.error: BaseException | None = None

    def add(self, task: asyncio.Task[bool]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.error = self.error or error
        elif task.result():
            self.applied += 1
        else:
            self.ignored += 1

    def result(self) -> wire.UpdatesResult:
        if self.error is not None:
            raise self.error  # the first failure decides the answer (a 422, a 507, ...)
        return wire.UpdatesResult(self.applied, self.ignored)


async def _start(
    request: web.Request,
    engine: Engine,
    device: str,
    partition: int,
    head: wire.UpdateHead,
    meta: ObjectMetadata,
) -> Coroutine[Any, Any, bool] | None:
    """Read one update's body; what finishes it (True: applied, False: this replica held a
    version as new).  None: ignored already (its body skipped)."""
    account, container, obj = meta.name[1:].split("/", 2)
    names = (device, partition, account, container, obj)
    if head.kind == "DELETE":
        return _delete(engine, names, meta)
    if head.kind == "POST":
        return apply_metadata(engine, names, meta)
    try:
        write = await engine.open_write(*names, meta.timestamp, content_length=meta.size_bytes)
    except ObjectConflict:
        await _skip(request, head.body_bytes)
        return None
    try:
        remaining = head.body_bytes
        while remaining:
            chunk = await request.content.read(min(remaining, READ_CHUNK_BYTES))
            if not chunk:
                raise BadRequest("the updates stream ended inside a body")
            remaining -= len(chunk)
            await write.write(chunk)
    except BaseException:
        await write.abort()
        raise
    return _commit(engine, names, write, meta)


async def _delete(
    engine: Engine, names: tuple[str, int, str, str, str], meta: ObjectMetadata
) -> bool:
    try:
        await engine.delete(*names, meta.timestamp)
    except ObjectConflict:
        return False
    return True


async def _commit(
    engine: Engine, names: tuple[str, int, str, str, str], write: ObjectWrite, meta: ObjectMetadata
) -> bool:
    async with write:  # aborted unless committed
        try:
            await write.commit(
                meta.content_type,
                _data_meta(meta),
                expected_etag=meta.etag,
                delete_at=meta.delete_at if meta.meta_timestamp == meta.timestamp else None,
            )
        except ObjectConflict:
            return False
    if meta.meta_timestamp != meta.timestamp or meta.ctype_timestamp != meta.timestamp:
        await apply_metadata(engine, names, meta)
    return True


async def apply_metadata(
    engine: Engine, names: tuple[str, int, str, str, str], meta: ObjectMetadata
) -> bool:
    """Bring the stored version's metadata to ``meta``'s, at ``meta``'s timestamps: one POST,
    or two when its content type is older than the rest of its metadata."""
    try:
        if meta.ctype_timestamp != meta.timestamp and meta.ctype_timestamp < meta.meta_timestamp:
            await _post(engine, names, meta, meta.ctype_timestamp, meta.content_type)
            await _post(engine, names, meta, meta.meta_timestamp, None)
        else:
            ctype = meta.content_type if meta.ctype_timestamp != meta.timestamp else None
            await _post(engine, names, meta, meta.meta_timestamp, ctype)
    except (ObjectConflict, ObjectNotFound):
        return False  # newer here, or no live version to apply it to (expired, deleted)
    return True


async def _post(
    engine: Engine,
    names: tuple[str, int, str, str, str],
    meta: ObjectMetadata,
    timestamp: Timestamp,
    content_type: str | None,
) -> None:
    await engine.post(*names, timestamp, content_type, meta.user_meta, delete_at=meta.delete_at)


def _data_meta(meta: ObjectMetadata) -> dict[str, str]:
    """The headers the data was PUT with: all of them unless a POST replaced some since
    (then the POST that follows sets the rest; the engine keeps sysmeta from the data)."""
    if meta.meta_timestamp == meta.timestamp:
        return meta.user_meta
    return {k: v for k, v in meta.user_meta.items() if is_datafile_meta(k)}


def _stored(engine: Engine, device: str, partition: int, name: str) -> ObjectMetadata | None:
    account, container, obj = name[1:].split("/", 2)
    try:
        return engine.get(device, partition, account, container, obj)
    except ObjectNotFound as exc:
        return exc.metadata  # a tombstone or an expired version; None: nothing


def _parse_path(request: web.Request) -> tuple[str, int]:
    parts = unquote(request.raw_path.partition("?")[0]).split("/")
    if parts[0] or len(parts) != 3 or "" in parts[1:]:
        raise BadRequest(f"Invalid path: {request.raw_path}")
    return check_device(parts[1]), parse_partition(parts[2])


async def _read_line(request: web.Request, limit: int) -> bytes:
    """One line with its newline, at most ``limit`` bytes; a 400 if longer or cut."""
    try:
        line = await request.content.readuntil(b"\n")
    except ValueError:  # longer than the stream's own limit
        raise BadRequest("line too long") from None
    if len(line) > limit or not line.endswith(b"\n"):
        raise BadRequest(f"bad SSYNC line {line[:40]!r}")
    return line


async def _read_exactly(request: web.Request, size: int) -> bytes:
    try:
        return await request.content.readexactly(size)
    except asyncio.IncompleteReadError:
        raise BadRequest("the updates stream ended inside an update") from None


async def _read_rest(request: web.Request, limit: int) -> bytes:
    data = await request.content.read(limit + 1)
    chunks = [data]
    total = len(data)
    while data and total <= limit:
        data = await request.content.read(limit + 1 - total)
        chunks.append(data)
        total += len(data)
    if total > limit:
        raise RequestEntityTooLarge(f"a missing check is limited to {limit} bytes")
    return b"".join(chunks)


async def _skip(request: web.Request, size: int) -> None:
    while size:
        chunk = await request.content.read(min(size, READ_CHUNK_BYTES))
        if not chunk:
            raise BadRequest("the updates stream ended inside a body")
        size -= len(chunk)
