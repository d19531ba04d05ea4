"""A large body's data file written with O_DIRECT, out of reused aligned buffers.

Why: on the VMs Torus is developed and benchmarked on, a buffered write(2) into new
page-cache pages costs ~160-180 ms of kernel CPU per 64 MiB (``copy_folio_from_iter_atomic``:
every fresh page-cache folio is memory the hypervisor backs on first touch), against ~10 ms
for the same bytes written with O_DIRECT from a buffer that is used again and again (measured
with 4 concurrent 64 MiB writers + fsync, docs/design/storage.md).  It was half of an object
server's CPU in a 64 MiB PUT.  MinIO writes large objects with O_DIRECT for the same reason;
Swift writes through the page cache and drops the pages afterwards.

Durability is unchanged: O_DIRECT says nothing of the device's own cache or of the file's
metadata, so the commit still fsyncs the file and its directory.  What changes is that a
fresh object is not in the page cache: its first GET reads the disk.

O_DIRECT wants the buffer address, the length and the file offset aligned; the body streams in
pieces of any size, so they are copied into a page-aligned buffer and written out a whole
buffer at a time; the unaligned tail is written through the page cache at the end (O_DIRECT
cleared on the fd).  A filesystem that refuses O_DIRECT gets plain buffered writes.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Callable, Sequence

ALIGN = 4096  # a multiple of every device's logical block size we expect
BUFFER_BYTES = 1 << 20  # written per write(2); one buffer per PUT being written
_IDLE_BUFFERS_KEPT = 32  # reused buffers are the point: new pages cost what O_DIRECT saves


class _BufferPool:
    """Page-aligned anonymous buffers, handed out again and again (threads share it)."""

    def __init__(self) -> None:
        self._idle: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return mmap.mmap(-1, BUFFER_BYTES)

    def give_back(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(self._idle) < _IDLE_BUFFERS_KEPT:
                self._idle.append(buffer)
                return
        buffer.close()


_POOL = _BufferPool()


def enable_direct(fd: int) -> bool:
    """Set O_DIRECT on ``fd``; False where the filesystem refuses it (tmpfs before Linux 6.6)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return True


class DirectFile:
    """The data file of one PUT; ``write`` and ``finish`` run in worker threads, one at a
    time.  ``write_buffered`` writes pieces through the page cache (the fallback, and the
    tail)."""

    def __init__(
        self,
        fd: int,
        *,
        direct: bool,
        write_buffered: Callable[[int, list[bytes | memoryview]], None],
    ) -> None:
        self.fd = fd
        self.direct = direct
        self._write_buffered = write_buffered
        self._buffer: mmap.mmap | None = None
        self._used = 0

    def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        if not self.direct:
            self._write_buffered(self.fd, list(pieces))
            return
        if self._buffer is None:
            self._buffer = _POOL.take()
        buffer = self._buffer
        for piece in pieces:
            view = memoryview(piece)
            while view:
                n = min(len(view), BUFFER_BYTES - self._used)
                buffer[self._used : self._used + n] = view[:n]
                self._used += n
                view = view[n:]
                if self._used == BUFFER_BYTES:
                    self._write_out(BUFFER_BYTES)
                    self._used = 0

    def finish(self) -> None:
        """Write what is buffered: the aligned part directly, the tail through the cache."""
        if self._buffer is None:
            return
        try:
            aligned = self._used - self._used % ALIGN
            if aligned:
                self._write_out(aligned)
            if aligned < self._used:
                flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
                self.direct = False
                self._write_buffered(self.fd, [memoryview(self._buffer)[aligned : self._used]])
            self._used = 0
        finally:
            self.release()

    def release(self) -> None:
        """Give the buffer back (after ``finish``, or when the write is abandoned)."""
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            _POOL.give_back(buffer)

    def _write_out(self, length: int) -> None:
        assert self._buffer is not None
        view = memoryview(self._buffer)[:length]
        while view:
            written = os.writev(self.fd, [view])
            if written % ALIGN and written < len(view):  # the next write would be refused
                raise OSError(errno.EIO, f"O_DIRECT write stopped at {written} bytes")
            view = view[written:]
