"""The GET path of the LMDB engine: verified reads, and quarantine of what fails.

Every block a read touches is read whole and checked against its xxh3-64 before any byte
of it is yielded, so a corrupt byte is never served.  A body that fails (a bad block, the
wrong length, a data file gone while its index entry remains) is quarantined: the data file
moves to ``<device>/quarantined/objects/<hash>/`` (an inline body to the ``quarantine``
table), the index entry goes, the device's counter goes up, and the read raises Quarantined —
a 404, so that the proxy reads another replica and the replicator restores this one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import lmdb

from . import index, layout, versions
from .checksum import block_matches, blocks_touched
from .device import Device
from .errors import ObjectNotFound, Quarantined
from .finishing import finish, run_to_end
from .metadata import ObjectMetadata
from .version_handle import OpenVersion

log = logging.getLogger("torus.objectd")
_OPEN_ATTEMPTS = 8  # each lost only to a commit and unlink between a lookup and its open(2)


def data_file_path(dev: Device, meta: ObjectMetadata, digest: bytes) -> str | None:
    if meta.body != "file" or meta.partition is None:
        return None
    directory = layout.hash_dir(dev.path, meta.partition, digest)
    return os.path.join(directory, layout.data_file_name(meta.timestamp))


async def open_version(dev: Device, partition: int, digest: bytes, now: float) -> OpenVersion:
    """The live version of a name with its body pinned (objectd/version_handle.py)."""
    for _attempt in range(_OPEN_ATTEMPTS):
        key, meta, body = _lookup(dev, partition, digest)
        meta = versions.live(meta, now)
        assert key is not None
        if meta.body != "file":
            # Read in the lookup's transaction; None only if the index lost it: quarantined.
            serve = functools.partial(_serve_inline, dev, meta, key, digest, body or b"")
            return OpenVersion(meta, serve)
        path = data_file_path(dev, meta, digest)
        assert path is not None
        try:
            fd, size = await _open_file(path)
        except FileNotFoundError:
            if _still_indexed(dev, key):
                raise await quarantine(dev, meta, key, digest, "data file missing", None) from None
            continue  # replaced between the lookup and the open: look again
        serve = functools.partial(_serve_file, dev, meta, key, digest, path, fd, size)
        return OpenVersion(meta, serve, functools.partial(os.close, fd))
    raise ObjectNotFound("the object was replaced while being opened, again and again")


async def read_body(
    dev: Device, meta: ObjectMetadata, digest: bytes, start: int, end: int
) -> AsyncIterator[bytes]:
    """Read the version ``meta`` names; ObjectNotFound if it was replaced since."""
    assert meta.partition is not None
    key = layout.index_key(meta.partition, digest, meta.timestamp)
    if meta.body == "inline":
        body = _read_inline(dev, key)
        async for chunk in _serve_inline(dev, meta, key, digest, body, start, end):
            yield chunk
        return
    path = data_file_path(dev, meta, digest)
    assert path is not None
    try:
        fd, size = await _open_file(path)
    except FileNotFoundError:
        if not _still_indexed(dev, key):
            raise ObjectNotFound("the version was replaced while being read") from None
        raise await quarantine(dev, meta, key, digest, "data file missing", None) from None
    try:
        async for chunk in _serve_file(dev, meta, key, digest, path, fd, size, start, end):
            yield chunk
    finally:
        os.close(fd)


async def _serve_inline(
    dev: Device,
    meta: ObjectMetadata,
    key: bytes,
    digest: bytes,
    body: bytes,
    start: int,
    end: int,
) -> AsyncIterator[bytes]:
    reason = _inline_problem(meta, body, start, end)
    if reason is not None:
        raise await quarantine(dev, meta, key, digest, reason, None)
    yield body[start:end]


async def _serve_file(
    dev: Device,
    meta: ObjectMetadata,
    key: bytes,
    digest: bytes,
    path: str,
    fd: int,
    size: int,
    start: int,
    end: int,
) -> AsyncIterator[bytes]:
    if size != meta.size_bytes:
        reason = f"data file is {size} bytes, not {meta.size_bytes}"
        raise await quarantine(dev, meta, key, digest, reason, path)
    block_size = meta.block_size_bytes
    for number in blocks_touched(start, end, block_size):
        offset = number * block_size
        # To its end through a cancellation: the fd is closed once the read is abandoned.
        data = await finish(asyncio.to_thread(_pread_all, fd, block_size, offset))
        if not block_matches(meta.block_hashes, number, data):
            reason = f"block {number} failed its checksum"
            raise await quarantine(dev, meta, key, digest, reason, path)
        yield data[max(start, offset) - offset : min(end, offset + len(data)) - offset]


async def _open_file(path: str) -> tuple[int, int]:
    """(fd, size) of a data file, opened in a worker thread; a cancelled open closes it."""
    task, cancelled = await run_to_end(asyncio.to_thread(_open_for_read, path))
    if cancelled:
        if not task.cancelled() and task.exception() is None:
            os.close(task.result()[0])
        raise asyncio.CancelledError()
    return task.result()


def _lookup(
    dev: Device, partition: int, digest: bytes
) -> tuple[bytes | None, ObjectMetadata | None, bytes | None]:
    """(key, metadata, inline body) of the newest version, from one read transaction."""
    with dev.env.begin() as txn:
        found = index.newest(txn, dev, partition, digest)
        if found is None:
            return None, None, None
        key, meta = found
        body = txn.get(key, db=dev.bodies) if meta.body == "inline" else None
    return key, replace(meta, device=dev.name, partition=partition), body


def _read_inline(dev: Device, key: bytes) -> bytes:
    with dev.env.begin() as txn:
        body = txn.get(key, db=dev.bodies)
    if body is None:
        raise ObjectNotFound("the version was replaced while being read")
    return body


def _inline_problem(meta: ObjectMetadata, body: bytes, start: int, end: int) -> str | None:
    if len(body) != meta.size_bytes:
        return f"inline body is {len(body)} bytes, not {meta.size_bytes}"
    size = meta.block_size_bytes
    for number in blocks_touched(start, end, size):
        if not block_matches(meta.block_hashes, number, body[number * size : (number + 1) * size]):
            return f"block {number} failed its checksum"
    return None


async def quarantine(
    dev: Device,
    meta: ObjectMetadata,
    key: bytes,
    digest: bytes,
    reason: str,
    path: str | None,
) -> Quarantined:
    """Move the body aside and drop the version; return the error for the reader to raise."""
    moved_to = None
    if path is not None:
        moved_to = await asyncio.to_thread(_move_aside, dev, path, digest)

    def drop(txn: lmdb.Transaction) -> bool:
        if not index.remove_version(txn, dev, key, keep_body=meta.body == "inline"):
            return False  # another reader got here first, or a newer version replaced it
        index.add_quarantined(txn, dev)
        return True

    counted = await dev.submit(drop)
    where = moved_to or ("the quarantine table" if meta.body == "inline" else "nowhere")
    log.warning(
        "quarantined %s %s on device %s (%s): moved to %s%s",
        meta.name,
        meta.timestamp.internal,
        dev.name,
        reason,
        where,
        "" if counted else " (already dropped from the index)",
    )
    return Quarantined(f"{meta.name} quarantined: {reason}", path=moved_to)


def _still_indexed(dev: Device, key: bytes) -> bool:
    with dev.env.begin() as txn:
        return index.has_key(txn, dev, key)


def _open_for_read(path: str) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size:
        data = os.pread(fd, size, offset)
        if not data:
            break
        parts.append(data)
        size -= len(data)
        offset += len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _move_aside(dev: Device, path: str, digest: bytes) -> str | None:
    """Swift's quarantine_renamer, for one data file; None if it is already gone."""
    directory = os.path.join(dev.quarantine_dir, digest.hex())
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, os.path.basename(path))
    if os.path.exists(target):
        target = f"{target}-{uuid.uuid4().hex}"
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target
