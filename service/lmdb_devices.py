"""One LMDB environment per device, opened on first use and kept open, each with its writer.

The container and account brokers keep every container (account) of a device in one
environment, ``<devices_root>/<device>/<filename>``, not a file per database as Swift does.
Reads run in the caller's thread in a read transaction; writes go through the device's
``GroupCommitWriter``, so one fsync serves every write queued at that moment.

``DeviceUnavailable`` (Swift's check_drive failing: 507) and ``DiskFull`` (ENOSPC or a full
LMDB map: 507) are defined here once and re-exported by each server's ``errors`` module.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import lmdb

from service.lmdb_writer import GroupCommitWriter

T = TypeVar("T")
DEFAULT_MAP_SIZE_BYTES = 1 << 40  # address space, not disk: the file grows as it is used
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


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


def check_device_name(device: str) -> str:
    if not isinstance(device, str) or not device or "/" in device or device in (".", ".."):
        raise ValueError(f"invalid device name {device!r}")
    return device


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
    ) -> None:
        self._root = devices_root
        self._filename = filename
        self._tables = tables
        self._max_batch = max_batch
        self._map_size_bytes = map_size_bytes
        self._mount_check = mount_check
        self._open: dict[str, DeviceEnv] = {}
        self._lock = threading.Lock()  # two threads' first use must not open one env twice
        self._closed = False

    def get(self, device: str) -> DeviceEnv:
        """The device's environment, after Swift's check_drive (on every call: cheap stats)."""
        path = os.path.join(self._root, check_device_name(device))
        if self._mount_check and not os.path.ismount(path):
            raise DeviceUnavailable(device, "not mounted")
        if not os.path.isdir(path):
            raise DeviceUnavailable(device, "no such directory")
        found = self._open.get(device)
        if found is not None:
            return found
        with self._lock:
            if self._closed:
                raise RuntimeError("the broker is closed")
            if device not in self._open:
                self._open[device] = self._open_env(device, os.path.join(path, self._filename))
            return self._open[device]

    @contextmanager
    def reading(self, device: str) -> Iterator[tuple[lmdb.Transaction, DeviceEnv]]:
        opened = self.get(device)
        with opened.env.begin() as txn:
            yield txn, opened

    async def write(self, device: str, write: Callable[[lmdb.Transaction, DeviceEnv], T]) -> T:
        """Run ``write`` in the device's next group commit; return once it is durable."""
        opened = self.get(device)
        try:
            return await opened.writer.submit(lambda txn: write(txn, opened))
        except (lmdb.MapFullError, lmdb.DiskError) as exc:
            raise DiskFull(device, str(exc)) from exc
        except OSError as exc:
            if exc.errno in NO_SPACE_ERRNOS:
                raise DiskFull(device, exc.strerror or "") from exc
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            opened, self._open = list(self._open.values()), {}
        for device_env in opened:
            device_env.writer.close()  # finishes what is queued first
            device_env.env.close()

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
        # Opened before the writer starts: open_db writes, and writes belong to its thread.
        tables = {name: env.open_db(name.encode("ascii")) for name in self._tables}
        name = f"{self._filename.partition('.')[0]}-{device}"
        return DeviceEnv(env, tables, GroupCommitWriter(env, max_batch=self._max_batch, name=name))
