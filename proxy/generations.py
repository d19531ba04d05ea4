"""A generation table shared by the workers of one proxy on one host: how a write seen by one
worker makes every other worker drop what it cached of that account or container
(proxy/infocache.py).

The table is ``SLOTS`` 32-bit generations in a file mapped ``MAP_SHARED`` by every worker:
``/dev/shm/torus-proxy-<uid>-<bind_ip>-<bind_port>.gen<FORMAT_VERSION>`` (the system's temp
directory where /dev/shm is missing).  The bind address names it, so the workers of one proxy
share it and two proxies on one host do not; the uid keeps users apart; the format version
keeps a proxy of another layout away from it.  ``slot(account, container)`` is the name
pair's xxh3 modulo ``SLOTS`` (``slot(account)`` for the account itself); a collision only
costs a needless miss.

``bump(slot)`` writes a fresh random value, not the old one plus one: a read-modify-write by
two processes at once may then write either's value, but both are values the slot never
held, so a generation read before the bump can never match again.  (With ``+1``, a bumper
that read an older value could put the slot back to a generation someone stored: A-B-A.)
``read`` is one memoryview index: no lock, no system call.

Lifetime: each worker opens the file at start-up (``for_server``) and holds a shared
``flock`` on it until ``close``; the last to close (its exclusive ``flock`` succeeds) unlinks
it, so a stopped proxy leaves nothing in /dev/shm.  An opener re-checks, once it holds its
lock, that the path still names the file it opened (else the last user unlinked it meanwhile,
and it opens again).  A worker that is killed leaves the file to the others or to the next
start; any content is a valid table.  Where no file can be used (no writable directory, a
file owned by another user, one of another size), the worker gets a private table and logs
why: its cache is then per worker, as before.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import os
import random
import re
import tempfile
from pathlib import Path

import xxhash

log = logging.getLogger("torus.proxy")

FORMAT_VERSION = 1  # in the file's name: a layout change gets a new file
SLOTS = 1 << 16  # 256 KiB of 32-bit generations
SLOT_BYTES = 4
SHM_DIR = Path("/dev/shm")
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")  # in a file name (an IPv6 address's ':')


class GenerationTable:
    """``SLOTS`` shared generations; see the module docstring."""

    def __init__(
        self,
        buffer: mmap.mmap,
        *,
        path: Path | None = None,
        fd: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._buffer = buffer
        self._slots = memoryview(buffer).cast("I")
        self.slot_count = len(self._slots)
        self.path = path  # None: private to this process
        self._fd = fd
        self._rng = rng if rng is not None else random.Random()  # seeded now, after the fork
        self._last_bump: tuple[int, int] | None = None  # (slot, value) this process wrote

    @classmethod
    def private(cls, slots: int = SLOTS) -> GenerationTable:
        """A table no other process sees (a proxy with no port to name one by, and tests)."""
        return cls(mmap.mmap(-1, slots * SLOT_BYTES))

    @classmethod
    def open(cls, path: Path, slots: int = SLOTS) -> GenerationTable:
        """The table in ``path``, made if missing; OSError or ValueError if it cannot be used."""
        size = slots * SLOT_BYTES
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if not _names(path, fd):
                    os.close(fd)  # its last user unlinked it between our open and our lock
                    continue
                _check_owned(path, fd)
                found = os.fstat(fd).st_size
                if found == 0:
                    os.ftruncate(fd, size)  # zeros; racing openers all ask for one size
                elif found != size:
                    raise ValueError(f"{path}: {found} bytes, not the {size} of {slots} slots")
                buffer = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except BaseException:
                os.close(fd)
                raise
            return cls(buffer, path=path, fd=fd)

    @classmethod
    def for_server(
        cls,
        bind_ip: str,
        bind_port: int,
        *,
        directories: tuple[Path, ...] | None = None,
        slots: int = SLOTS,
    ) -> GenerationTable:
        """The table of the proxy bound to ``bind_ip:bind_port``, in the first directory that
        takes it; a private one (logged) if none does or the port is 0 (no name to share)."""
        if bind_port == 0:
            return cls.private(slots)
        if directories is None:
            directories = (SHM_DIR, Path(tempfile.gettempdir()))
        name = _UNSAFE.sub("_", f"torus-proxy-{os.geteuid()}-{bind_ip}-{bind_port}")
        problems = []
        for directory in directories:
            path = directory / f"{name}.gen{FORMAT_VERSION}"
            try:
                return cls.open(path, slots)
            except (OSError, ValueError) as exc:
                problems.append(str(exc))
        log.warning(
            "no shared info-cache generation table (%s): each worker's info cache is its own",
            "; ".join(problems),
        )
        return cls.private(slots)

    def slot(self, account: str, container: str | None = None) -> int:
        """The slot of the container (``container`` given) or of the account."""
        key = account if container is None else f"{account}\0{container}"  # no name holds NUL
        return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) % self.slot_count

    def read(self, slot: int) -> int:
        return self._slots[slot]

    def bump(self, slot: int) -> int:
        """Give the slot a value it has not held (the module docstring); that value."""
        old = self._slots[slot]
        new = old
        while new == old:
            new = self._rng.getrandbits(32)
        self._slots[slot] = new
        self._last_bump = (slot, new)
        return new

    def own_generation(self, slot: int) -> int | None:
        """The slot's generation if this process bumped it last (its latest bump, and no
        process has changed the slot since); else None."""
        if self._last_bump is None or self._last_bump[0] != slot:
            return None
        value = self._slots[slot]
        return value if value == self._last_bump[1] else None

    def close(self) -> None:
        """Unmap; the last process to close the file unlinks it."""
        self._slots.release()
        self._buffer.close()
        fd, self._fd = self._fd, None
        if fd is None or self.path is None:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another worker still has it open
            if _names(self.path, fd):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            os.close(fd)


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _check_owned(path: Path, fd: int) -> None:
    """Refuse a file another user made (or can write): it could be bumped at will."""
    stat = os.fstat(fd)
    if stat.st_uid != os.geteuid() or stat.st_mode & 0o022:
        raise PermissionError(errno.EPERM, "owned by another user or writable by others", path)
