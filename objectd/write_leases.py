"""Leases on object names for conditional writes, so that a precondition and the write it
guards are one step on this replica.

An object PUT with ``If-None-Match`` or ``If-Match`` takes its name's lease on its device
before it checks the precondition (so before its ``100 Continue``: the proxy sends no body
until a quorum of replicas passed) and keeps it until its answer.  A second conditional PUT of
the same name meanwhile is refused at once (``LeaseHeld``: a 409 the proxy turns into S3's
ConditionalRequestConflict); nothing waits, so two proxies each holding some replicas'
leases cannot deadlock: the one short of a quorum gives up.  Unconditional writes take no
lease (the newest timestamp wins, as ever).

A lease is held twice: in this process's set, and as a POSIX record lock of one byte of the
device's ``conditional-writes.lock`` file, at an offset drawn from the name's hash, so the
object server's other worker processes see it too (record locks are per process: the set is
what keeps two requests of one process apart).  The kernel drops a process's record locks
when it dies, so a crashed worker holds nothing.  Two names whose hashes share an offset
(one in 2**62) would only refuse each other's concurrent conditional writes.
"""

from __future__ import annotations

import fcntl
import os

import xxhash

from .errors import DeviceUnavailable

LOCK_FILE = "conditional-writes.lock"
_OFFSET_BITS = 62  # a positive off_t


class LeaseHeld(Exception):
    """Another conditional write of this name is in progress on this replica."""


class WriteLeases:
    """The conditional-write leases of one process over the devices under ``devices_root``
    (None: this process only, for the in-memory engine of fast tests)."""

    def __init__(self, devices_root: str | None) -> None:
        self._root = devices_root
        self._held: set[tuple[str, int]] = set()
        self._files: dict[str, int] = {}  # device -> its lock file, open while we run

    def take(self, device: str, name: str) -> Lease:
        """The lease of ``name`` (``/account/container/object``) on ``device``, released by
        the returned object (``with``); ``LeaseHeld`` now if another request has it."""
        offset = xxhash.xxh3_64_intdigest(name.encode()) >> (64 - _OFFSET_BITS)
        key = (device, offset)
        if key in self._held:
            raise LeaseHeld(name)
        fd = self._lock_file(device)
        if fd is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:  # EACCES / EAGAIN: another process has it
                raise LeaseHeld(name) from None
        self._held.add(key)
        return Lease(self, key, fd)

    def _release(self, key: tuple[str, int], fd: int | None) -> None:
        self._held.discard(key)
        if fd is not None:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, key[1])

    def _lock_file(self, device: str) -> int | None:
        if self._root is None:
            return None
        fd = self._files.get(device)
        if fd is None:
            path = os.path.join(self._root, device, LOCK_FILE)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                raise DeviceUnavailable(device, "no such directory") from None
            # Kept open: closing any descriptor of the file would drop this process's locks.
            self._files[device] = fd
        return fd

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()


class Lease:
    """One held lease; released on leaving its ``with`` block (once)."""

    def __init__(self, leases: WriteLeases, key: tuple[str, int], fd: int | None) -> None:
        self._leases: WriteLeases | None = leases
        self._key = key
        self._fd = fd

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        leases, self._leases = self._leases, None
        if leases is not None:
            leases._release(self._key, self._fd)
