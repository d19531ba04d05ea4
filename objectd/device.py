"""One device: its directory, its LMDB environment (the object index) and its writer thread.

The environment lives at ``<device>/objects.lmdb``; data files under ``<device>/objects``,
temp files in ``<device>/tmp`` (same filesystem, so the rename into place is atomic) and
quarantined bodies under ``<device>/quarantined/objects``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from typing import TypeVar

import lmdb

from service import async_pending
from service.lmdb_writer import GroupCommitWriter

from .errors import DeviceUnavailable, DiskFull

T = TypeVar("T")
log = logging.getLogger("torus.objectd")

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class Device:
    def __init__(self, name: str, path: str, *, map_size_bytes: int, max_batch: int) -> None:
        self.name = name
        self.path = path
        self.tmp_dir = os.path.join(path, "tmp")
        self.quarantine_dir = os.path.join(path, "quarantined", "objects")
        try:
            os.makedirs(self.tmp_dir, exist_ok=True)
            self.env = lmdb.open(
                os.path.join(path, "objects.lmdb"),
                map_size=map_size_bytes,  # address space, not disk: the file grows as used
                max_dbs=8,
                sync=True,
                metasync=True,
                writemap=False,  # nested transactions (one per grouped write) need it off
                max_readers=1024,
                readahead=False,  # the index is read at random; readahead only evicts
            )
        except OSError as exc:
            raise DeviceUnavailable(name, str(exc)) from exc
        except (lmdb.MapFullError, lmdb.DiskError) as exc:
            raise DiskFull(f"device {name}: {exc}") from exc
        except lmdb.Error as exc:
            raise DeviceUnavailable(name, str(exc)) from exc
        # Opened before the writer starts: open_db writes, and writes belong to one thread.
        self.index = self.env.open_db(b"index")
        self.bodies = self.env.open_db(b"bodies")
        self.hashes = self.env.open_db(b"suffix_hashes")
        self.quarantine = self.env.open_db(b"quarantine")
        self.stats = self.env.open_db(b"stats")
        # Container updates that failed, for the updater (service/async_pending.py): kept in
        # this environment so that saving one costs no fsync beyond the group commit's.
        self.async_pending = async_pending.open_table(self.env)
        self.writer = GroupCommitWriter(self.env, max_batch=max_batch, name=name)

    async def submit(self, write: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``write`` in the device's write transaction; return once it is durable."""
        try:
            return await self.writer.submit(write)
        except (lmdb.MapFullError, lmdb.DiskError) as exc:
            raise DiskFull(f"device {self.name}: {exc}") from exc

    def close(self) -> None:
        self.writer.close()
        self.env.close()


def check_device_name(device: str) -> str:
    if not isinstance(device, str) or not device or "/" in device or device in (".", ".."):
        raise ValueError(f"invalid device name {device!r}")
    return device


def device_problem(path: str, mount_check: bool) -> str | None:
    """Why the device directory cannot be used, or None (Swift's check_drive)."""
    if mount_check:
        return None if os.path.ismount(path) else "not mounted"
    return None if os.path.isdir(path) else "no such directory"


def raise_if_no_space(exc: OSError, what: str) -> None:
    if exc.errno in NO_SPACE_ERRNOS:
        raise DiskFull(f"{what}: {exc.strerror}") from exc


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: str) -> None:
    """``os.makedirs(path)``, fsyncing the parent of every directory it creates."""
    for attempt in range(3):
        try:
            _make_dirs_durable(path)
            return
        except FileNotFoundError:
            # A DELETE's clean-up removed an empty parent between our mkdirs: start again.
            if attempt == 2:
                raise


def _make_dirs_durable(path: str) -> None:
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            continue  # a concurrent PUT made it; it fsyncs the parent too
        fsync_dir(os.path.dirname(directory))


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def remove_empty_dirs(path: str, levels: int) -> None:
    """rmdir ``path`` and up to ``levels - 1`` parents while they are empty (best effort)."""
    for _ in range(levels):
        try:
            os.rmdir(path)
        except OSError:
            return  # not empty (a newer version arrived) or already gone
        path = os.path.dirname(path)
