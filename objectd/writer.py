"""The PUT path of the LMDB engine.

A body up to ``inline_max_bytes`` is kept in memory and stored in the ``bodies`` table in the
same transaction as its index entry.  A larger one streams to ``<device>/tmp`` in batches of
``FLUSH_BYTES``, each one written from a worker thread with O_DIRECT (objectd/direct_writes.py
says why), so memory per PUT stays bounded and the thread hops are few (a hop costs more CPU
than writing 256 KiB); at commit it is
fsynced and closed, then — in the writer thread, holding LMDB's write lock, after the conflict
check — renamed to ``<hash dir>/<timestamp>.data`` and the hash directory fsynced, and only
then indexed.  A crash therefore never leaves an index entry without its data; it can leave a
data file or temp file without an index entry (garbage for a sweeper, never served).

Renaming under the write lock is what makes concurrent PUTs of one name at one timestamp
safe, even across worker processes: the loser sees the winner's index entry and never touches
the shared path.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import lmdb

from service.timestamp import Timestamp

from . import index, layout, versions
from .device import Device, fsync_dir, raise_if_no_space, remove_empty_dirs, unlink_quietly
from .direct_writes import DirectFile, enable_direct
from .finishing import finish, run_to_end
from .metadata import ObjectMetadata
from .upload import ObjectWrite

log = logging.getLogger("torus.objectd")
FLUSH_BYTES = 1 << 20  # how much of a large body waits in memory for one writev(2) batch
_IOV_MAX = 1024  # Linux's limit on buffers per writev(2)


class LmdbObjectWrite(ObjectWrite):
    def __init__(
        self,
        dev: Device,
        partition: int,
        name_hash: bytes,
        name: str,
        timestamp: Timestamp,
        *,
        content_length: int | None,
        inline_max_bytes: int,
        block_size_bytes: int,
        checksum_footer: bool = False,
    ) -> None:
        super().__init__(
            name,
            timestamp,
            content_length=content_length,
            inline_max_bytes=inline_max_bytes,
            block_size_bytes=block_size_bytes,
            checksum_footer=checksum_footer,
        )
        self._dev = dev
        self._partition = partition
        self._name_hash = name_hash
        self._pending: list[bytes | memoryview] = []  # received, not yet written out
        self._pending_bytes = 0
        self._fd: int | None = None
        self._file: DirectFile | None = None  # how the bytes reach _fd
        self._tmp_path: str | None = None

    async def start_file(self) -> None:
        """Open the temp file now (the body will not fit inline); reserve Content-Length."""
        path = self._tmp_path = os.path.join(self._dev.tmp_dir, f"{uuid.uuid4().hex}.tmp")

        def create() -> None:  # sets _fd in the thread: a cancelled start_file can close it
            self._fd = fd = _create_temp(path, self.content_length)
            self._file = DirectFile(fd, direct=enable_direct(fd), write_buffered=_write_all)

        await self._file_io(create)

    async def _received(self, data: bytes | memoryview) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._fd is None and self.size_bytes > self.inline_max_bytes:
            await self.start_file()
        if self._fd is not None and self._pending_bytes >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        chunks, self._pending, self._pending_bytes = self._pending, [], 0
        if chunks:
            assert self._file is not None
            await self._file_io(self._file.write, chunks)

    async def _file_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            # Through a cancellation too: _discard must not close an fd a thread still uses.
            return await finish(asyncio.to_thread(fn, *args))
        except OSError as exc:
            raise_if_no_space(exc, f"device {self._dev.name}")
            raise

    async def _store(self, meta: ObjectMetadata) -> ObjectMetadata:
        body: bytes | None = None
        placement: _Placement | None = None  # an inline body has no data file to place
        try:
            if meta.body == "file":
                hash_dir = self._hash_dir()
                await self._flush()
                assert self._file is not None
                await self._file_io(self._file.finish)
                fd, self._fd, self._file = self._fd, None, None
                identity = await self._file_io(_fsync_close, fd)
                await self._file_io(self._dev.make_dirs_durable, hash_dir)
                placement = _Placement(
                    self._dev, self._tmp_path, hash_dir, meta.timestamp, identity
                )
            else:
                body = b"".join(self._pending)
        except BaseException:
            await self._discard()
            raise

        def store(txn: lmdb.Transaction) -> tuple[ObjectMetadata, list[ObjectMetadata]]:
            found = index.newest(txn, self._dev, self._partition, self._name_hash)
            merged = versions.check_put(found[1] if found else None, meta)
            if placement is not None:
                placement.place()
            try:
                removed = index.replace_versions(
                    txn, self._dev, self._partition, self._name_hash, merged, body
                )
            except BaseException:
                if placement is not None:
                    placement.undo()
                raise
            return merged, removed

        # A cancellation while the write is queued or committing must not undo anything: the
        # writer thread may commit it yet, and undoing a committed rename loses the object
        # (the index names a missing file, and the version it replaced is gone).  So the
        # outcome is awaited whatever happens, and only a write that really failed is undone.
        task, cancelled = await run_to_end(self._dev.submit(store))
        if task.cancelled():  # only when the loop itself goes away: the outcome is unknown
            raise asyncio.CancelledError()  # at worst an unindexed data file: never served
        error = task.exception()
        if error is not None:
            # store() undid its own failure; the rename may also have happened in a
            # transaction that then failed to commit.
            if placement is not None:
                await asyncio.to_thread(placement.undo)
            await self._discard()
            if cancelled:
                raise asyncio.CancelledError() from error
            if isinstance(error, OSError):
                raise_if_no_space(error, f"device {self._dev.name}")
            raise error
        merged, removed = task.result()
        if any(m.body == "file" for m in removed):  # else no task for nothing to unlink
            prune = merged.body != "file"
            await finish(unlink_replaced(self._hash_dir(), removed, prune=prune))
        if cancelled:
            raise asyncio.CancelledError()  # committed, though: the caller cannot be told
        return replace(merged, device=self._dev.name, partition=self._partition)

    def _hash_dir(self) -> str:
        return layout.hash_dir(self._dev.path, self._partition, self._name_hash)

    async def _discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.release()  # no thread uses it: _file_io runs each call to its end
        fd, self._fd = self._fd, None
        path, self._tmp_path = self._tmp_path, None
        self._pending, self._pending_bytes = [], 0
        if fd is not None or path is not None:
            await asyncio.to_thread(_close_unlink, fd, path)


class _Placement:
    """Moving a fsynced temp file to its data file path, and taking that back."""

    def __init__(
        self,
        dev: Device,
        tmp_path: str | None,
        hash_dir: str,
        timestamp: Timestamp,
        identity: tuple[int, int] | None,
    ) -> None:
        self.dev = dev
        self.tmp_path = tmp_path
        self.hash_dir = hash_dir
        self.final_path = os.path.join(hash_dir, layout.data_file_name(timestamp))
        self.identity = identity  # (st_dev, st_ino) of our file
        self.placed = False

    def place(self) -> None:
        assert self.tmp_path is not None
        try:
            os.rename(self.tmp_path, self.final_path)
        except FileNotFoundError:
            # A DELETE's clean-up removed the empty hash dir after we made it.
            self.dev.make_dirs_durable(self.hash_dir)
            os.rename(self.tmp_path, self.final_path)
        self.placed = True
        try:
            fsync_dir(self.hash_dir)
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        if not self.placed:
            return
        self.placed = False
        try:
            st = os.stat(self.final_path)
        except FileNotFoundError:
            return
        # Only our own file: a later PUT of this version may have taken the path since.
        if (st.st_dev, st.st_ino) == self.identity:
            unlink_quietly(self.final_path)


def _create_temp(path: str, reserve_bytes: int | None) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    if reserve_bytes:
        try:
            # Swift's fallocate: ENOSPC now, before the client sends the body.
            os.posix_fallocate(fd, 0, reserve_bytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # the filesystem cannot
                _close_unlink(fd, path)
                raise
    return fd


def _write_all(fd: int, chunks: list[bytes | memoryview]) -> None:
    """writev(2) the chunks, IOV_MAX at a time, going on after any short write."""
    for start in range(0, len(chunks), _IOV_MAX):
        batch = chunks[start : start + _IOV_MAX]
        first = 0
        while first < len(batch):
            written = os.writev(fd, batch[first:] if first else batch)
            while first < len(batch) and written >= len(batch[first]):
                written -= len(batch[first])
                first += 1
            if written:
                batch[first] = memoryview(batch[first])[written:]


def _fsync_close(fd: int) -> tuple[int, int]:
    try:
        os.fsync(fd)
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return st.st_dev, st.st_ino


def _close_unlink(fd: int | None, path: str | None) -> None:
    if fd is not None:
        os.close(fd)
    if path is not None:
        unlink_quietly(path)


async def unlink_replaced(hash_dir: str, removed: list[ObjectMetadata], *, prune: bool) -> None:
    """Unlink the data files of versions a commit replaced (their index entries are gone).

    ``prune``: the new version has no data file, so the hash dir (and then its suffix dir)
    goes too if that leaves it empty, as Swift's cleanup does.
    """
    paths = [
        os.path.join(hash_dir, layout.data_file_name(m.timestamp))
        for m in removed
        if m.body == "file"
    ]
    if paths:
        await asyncio.to_thread(_unlink_and_prune, paths, hash_dir if prune else None)


def _unlink_and_prune(paths: list[str], prune_dir: str | None) -> None:
    for path in paths:
        try:
            unlink_quietly(path)
        except OSError as exc:  # the write is durable; a leftover file is only garbage
            log.warning("could not unlink replaced data file %s: %s", path, exc)
    if prune_dir is not None:
        remove_empty_dirs(prune_dir, 2)
