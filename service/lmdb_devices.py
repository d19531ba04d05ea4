"""One LMDB environment per device, opened on first use and kept open, each with its writer.

The container and account brokers keep every container (account) of a device in one
environment, ``<devices_root>/<device>/<filename>``, not a file per database as Swift does.
Reads run in the caller's thread in a read transaction; writes go through the device's
``GroupCommitWriter``, so one fsync serves every write queued at that moment.

What may block stays off the event loop: the device check (Swift's check_drive: a stat, or a
mount check, that a failing disk can hang) is cached for ``check_ttl_s``, and the first open
(``lmdb.open``, then ``open_db``, which waits for the environment's write lock, perhaps held
by another process) runs in a thread: ``write`` does both there, and a server awaits
``prepare(device)`` before the reads it does on the loop.  Each open clears the reader slots
that dead processes left (``reader_check``; a stale slot pins old pages, and the file grows
with every rewrite); ``reader_check()`` does it again for every open environment, for a
caller that wants it done periodically.

``DeviceUnavailable`` (Swift's check_drive failing: 507) and ``DiskFull`` (ENOSPC or a full
LMDB map: 507) are defined here once and re-exported by each server's ``errors`` module.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import lmdb

from service.errors import BadInput
from service.lmdb_writer import GroupCommitWriter

T = TypeVar("T")
DEFAULT_MAP_SIZE_BYTES = 1 << 40  # address space, not disk: the file grows as it is used
CHECK_TTL_S = 1.0  # how long a device check is trusted (Swift stats on every request)
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Free space below which a failed LMDB commit is taken for a full disk: a commit writes its
# dirty pages (an inline body is at most 64 KiB) and the meta page, so a few MiB is plenty.
NEARLY_FULL_BYTES = 4 << 20


class DeviceUnavailable(Exception):
    """The device directory is missing, or not a mount point under ``mount_check``."""

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"device {device!r} is unavailable: {reason}")
        self.device = device


class DiskFull(Exception):
    """The device has no room for the write (ENOSPC, or the LMDB map is full)."""

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"device {device!r} is full: {reason}")
        self.device = device


@dataclass(frozen=True, slots=True)
class DeviceEnv:
    env: lmdb.Environment
    tables: dict[str, Any]  # name → LMDB database handle, opened once per environment
    writer: GroupCommitWriter


def is_no_space(exc: BaseException, path: str) -> bool:
    """Whether a failed write to the device at ``path`` means it is full (a 507, so that the
    proxy goes elsewhere): LMDB's map or disk full, ENOSPC/EDQUOT, or any other LMDB error on
    a filesystem with no room left, since LMDB reports a commit's short write as EIO."""
    if isinstance(exc, (lmdb.MapFullError, lmdb.DiskError)):
        return True
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return True
    return isinstance(exc, lmdb.Error) and out_of_space(path)


def out_of_space(path: str) -> bool:
    """Whether the filesystem holding ``path`` has (almost) no room left for an unprivileged
    writer; False if it cannot be asked."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < NEARLY_FULL_BYTES


def check_device_name(device: str) -> str:
    if not isinstance(device, str) or not device or "/" in device or device in (".", ".."):
        raise BadInput(f"invalid device name {device!r}")
    return device


def device_problem(path: str, mount_check: bool) -> str | None:
    """Why the device directory cannot be used, or None (Swift's check_drive)."""
    if mount_check:
        return None if os.path.ismount(path) else "not mounted"
    return None if os.path.isdir(path) else "no such directory"


class DeviceEnvs:
    def __init__(
        self,
        devices_root: str,
        filename: str,
        tables: tuple[str, ...],
        *,
        max_batch: int = 256,
        map_size_bytes: int = DEFAULT_MAP_SIZE_BYTES,
        mount_check: bool = False,
        check_ttl_s: float = CHECK_TTL_S,
    ) -> None:
        self._root = devices_root
        self._filename = filename
        self._tables = tables
        self._max_batch = max_batch
        self._map_size_bytes = map_size_bytes
        self._mount_check = mount_check
        self._check_ttl_s = check_ttl_s
        # device → (when checked, why unavailable: None if available)
        self._checked: dict[str, tuple[float, str | None]] = {}
        self._open: dict[str, DeviceEnv] = {}
        self._lock = threading.Lock()  # two threads' first use must not open one env twice
        self._closed = False

    def get(self, device: str) -> DeviceEnv:
        """The device's environment, after Swift's check_drive (cached ``check_ttl_s``).

        Blocks when the check is due or the device not yet open: on the event loop, await
        ``prepare`` first (``ready`` says whether it is needed)."""
        path = os.path.join(self._root, check_device_name(device))
        self._check(device, path)
        found = self._open.get(device)
        if found is not None:
            return found
        with self._lock:
            if self._closed:
                raise RuntimeError("the broker is closed")
            if device not in self._open:
                self._open[device] = self._open_env(device, os.path.join(path, self._filename))
            return self._open[device]

    def ready(self, device: str) -> bool:
        """True if ``get(device)`` would find it open and checked: no I/O, nothing to wait for."""
        checked = self._checked.get(device)
        return (
            device in self._open
            and checked is not None
            and checked[1] is None
            and time.monotonic() - checked[0] < self._check_ttl_s
        )

    async def prepare(self, device: str) -> None:
        """Do ``get``'s blocking part (the check, the first open) in a thread, so the reads
        that follow on the event loop find the device ready.  A failure is left for the
        caller's own ``get`` to raise, in its order: a device found unavailable stays so for
        ``check_ttl_s``, so that ``get`` raises without touching the disk."""
        if not self.ready(device):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.get, device)

    def reader_check(self) -> int:
        """Clear the reader slots of dead processes in every open environment; how many."""
        return sum(opened.env.reader_check() for opened in list(self._open.values()))

    @contextmanager
    def reading(self, device: str) -> Iterator[tuple[lmdb.Transaction, DeviceEnv]]:
        opened = self.get(device)
        with opened.env.begin() as txn:
            yield txn, opened

    async def write(self, device: str, write: Callable[[lmdb.Transaction, DeviceEnv], T]) -> T:
        """Run ``write`` in the device's next group commit; return once it is durable."""
        opened = (
            self.get(device) if self.ready(device) else await asyncio.to_thread(self.get, device)
        )
        try:
            return await opened.writer.submit(lambda txn: write(txn, opened))
        except (OSError, lmdb.Error) as exc:
            if is_no_space(exc, os.path.join(self._root, device)):
                raise DiskFull(device, str(exc)) from exc
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            opened, self._open = list(self._open.values()), {}
        for device_env in opened:
            device_env.writer.close()  # finishes what is queued first
            device_env.env.close()

    def _check(self, device: str, path: str) -> None:
        now = time.monotonic()
        checked = self._checked.get(device)
        if checked is None or now - checked[0] >= self._check_ttl_s:
            checked = self._checked[device] = (now, device_problem(path, self._mount_check))
        if checked[1] is not None:
            raise DeviceUnavailable(device, checked[1])

    def _open_env(self, device: str, path: str) -> DeviceEnv:
        try:
            env = lmdb.open(
                path,
                map_size=self._map_size_bytes,
                max_dbs=len(self._tables) + 2,
                sync=True,
                metasync=True,
                writemap=False,  # nested transactions (one per grouped write) need it off
                max_readers=1024,
                readahead=False,  # rows are read at random; readahead only evicts
            )
        except (lmdb.MapFullError, lmdb.DiskError) as exc:
            raise DiskFull(device, str(exc)) from exc
        except lmdb.Error as exc:
            raise DeviceUnavailable(device, str(exc)) from exc
        env.reader_check()  # slots of processes that died holding a read transaction
        # Opened before the writer starts: open_db writes, and writes belong to its thread.
        # In a transaction begun here: waiting for the write lock (another process may hold
        # it) in begin() releases the GIL; open_db's own transaction would wait holding it.
        with env.begin(write=True) as txn:
            tables = {name: env.open_db(name.encode("ascii"), txn=txn) for name in self._tables}
        name = f"{self._filename.partition('.')[0]}-{device}"
        return DeviceEnv(env, tables, GroupCommitWriter(env, max_batch=self._max_batch, name=name))
