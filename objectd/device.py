"""One device: its directory, its LMDB environment (the object index) and its writer thread.

The environment lives at ``<device>/objects.lmdb``; data files under ``<device>/objects``,
temp files in ``<device>/tmp`` (same filesystem, so the rename into place is atomic) and
quarantined bodies under ``<device>/quarantined/objects``.

Opening a device also clears the LMDB reader slots of dead processes (a worker killed inside
a read transaction would otherwise pin old pages forever, and the file would only grow) and
deletes temp files older than ``tmp_max_age_s``: bodies of PUTs that died before their commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable
from typing import TypeVar

import lmdb

from service import async_pending, lmdb_devices
from service.lmdb_devices import NO_SPACE_ERRNOS
from service.lmdb_writer import GroupCommitWriter

from .errors import DeviceUnavailable, DiskFull

T = TypeVar("T")
log = logging.getLogger("torus.objectd")

DEFAULT_TMP_MAX_AGE_S = 4 * 3600.0  # a temp file untouched this long belongs to a dead PUT
# Directories this deep under the device (``objects``, ``objects/<partition>``) are never
# removed while the server runs, so once their entry is durable it stays so: remembered.
_KEPT_DEPTH = 2
_KEPT_MAX = 100_000


class Device:
    def __init__(
        self,
        name: str,
        path: str,
        *,
        map_size_bytes: int,
        max_batch: int,
        tmp_max_age_s: float = DEFAULT_TMP_MAX_AGE_S,
        now: float,
    ) -> None:
        self.name = name
        self.path = path
        self.tmp_dir = os.path.join(path, "tmp")
        self.quarantine_dir = os.path.join(path, "quarantined", "objects")
        self._durable_dirs: set[str] = set()
        env_path = os.path.join(path, "objects.lmdb")
        try:
            os.makedirs(self.tmp_dir, exist_ok=True)
            self.env = lmdb.open(
                env_path,
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
            raise DiskFull(name, str(exc)) from exc
        except lmdb.Error as exc:
            raise DeviceUnavailable(name, str(exc)) from exc
        try:
            self.reader_check()
            # The entries of objects.lmdb (in the device dir) and of its files (in the env
            # dir) may be new: make them durable before any commit is acknowledged.
            fsync_dir(env_path)
            fsync_dir(path)
            sweep_temp_files(self.tmp_dir, now - tmp_max_age_s)
            # Opened before the writer starts: open_db writes; writes belong to one thread.
            self.index = self.env.open_db(b"index")
            self.bodies = self.env.open_db(b"bodies")
            self.hashes = self.env.open_db(b"suffix_hashes")
            self.quarantine = self.env.open_db(b"quarantine")
            self.stats = self.env.open_db(b"stats")
            # Container updates that failed, for the updater (service/async_pending.py): in
            # this environment so that saving one costs no fsync beyond the group commit's.
            self.async_pending = async_pending.open_table(self.env)
        except BaseException as exc:
            self.env.close()
            if isinstance(exc, (lmdb.MapFullError, lmdb.DiskError)):
                raise DiskFull(name, str(exc)) from exc
            if isinstance(exc, (OSError, lmdb.Error)):
                raise DeviceUnavailable(name, str(exc)) from exc
            raise
        self.writer = GroupCommitWriter(self.env, max_batch=max_batch, name=name)

    async def submit(self, write: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``write`` in the device's write transaction; return once it is durable."""
        try:
            return await self.writer.submit(write)
        except (OSError, lmdb.Error) as exc:
            if lmdb_devices.is_no_space(exc, self.path):
                raise DiskFull(self.name, str(exc)) from exc
            raise

    def reader_check(self) -> int:
        """Free the reader slots of dead processes; how many were freed."""
        cleared = self.env.reader_check()
        if cleared:
            log.warning(
                "device %s: freed %d LMDB reader slots of dead processes", self.name, cleared
            )
        return cleared

    def make_dirs_durable(self, path: str) -> None:
        """``os.makedirs(path)`` (under the device), returning once every component of it
        has a durable entry in its parent."""
        for attempt in range(3):
            try:
                self._make_dirs_durable(path)
                return
            except FileNotFoundError:
                # A DELETE's clean-up removed an empty parent between our mkdirs (or someone
                # removed a directory we remembered): start again, remembering nothing.
                self._durable_dirs.clear()
                if attempt == 2:
                    raise

    def _make_dirs_durable(self, path: str) -> None:
        relative = os.path.relpath(path, self.path)
        if relative.startswith(".."):
            raise ValueError(f"{path} is not under device {self.path}")
        parent = self.path
        for depth, name in enumerate(relative.split(os.sep), 1):
            directory = os.path.join(parent, name)
            if directory not in self._durable_dirs:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(directory)
                # Whether we made it or found it: its maker (a concurrent PUT, perhaps in
                # another worker) may not have fsynced the parent yet.
                fsync_dir(parent)
                if depth <= _KEPT_DEPTH:
                    if len(self._durable_dirs) >= _KEPT_MAX:
                        self._durable_dirs.clear()
                    self._durable_dirs.add(directory)
            parent = directory

    def close(self) -> None:
        self.writer.close()
        self.env.close()


def raise_if_no_space(exc: OSError, what: str) -> None:
    if exc.errno in NO_SPACE_ERRNOS:
        raise DiskFull(what, exc.strerror or str(exc)) from exc


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temp_files(tmp_dir: str, older_than: float) -> int:
    """Unlink the files in ``tmp_dir`` last modified before ``older_than``; how many.

    A PUT in progress writes its temp file at least every ``client_timeout_s``, so only the
    bodies of PUTs that died before their commit (a crash, a kill) are this old.
    """
    removed = 0
    with os.scandir(tmp_dir) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("could not sweep temp file %s: %s", entry.path, exc)
    if removed:
        log.info("swept %d stale temp files from %s", removed, tmp_dir)
    return removed


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
