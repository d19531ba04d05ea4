"""`torus status`, per device: what the device holds, read from disk without a server's help.

Everything here reads only, and never blocks a running server:

- **async_pendings**: the entries of the ``async_pending`` table (service/async_pending.py) in
  ``objects.lmdb`` (container updates an object server could not deliver) and in
  ``containers.lmdb`` (account reports a container server could not deliver).  The
  environments are opened read-only with ``lock=False``: no reader slot in the servers' lock
  file, nothing written, no file created.  The price: without a reader slot, a writer may
  reuse the pages being read.  A count is one read of the table's record and a partition walk
  a few hundred cursor seeks, so the window is small; a read that fails or walks backwards is
  reported as unreadable rather than trusted.
- **quarantined bodies**: what quarantine leaves on the device (objectd/reader.py): data files
  under ``quarantined/objects/<hash>/`` and inline bodies in the ``quarantine`` table.
- **partitions and handoffs**: the partitions the object index holds (its keys start with the
  partition, objectd/layout.py, so each is one ``set_range``), and those of them for which this
  device is not a primary in the object ring: data a replicator should push home.
- **disk use**: the filesystem's size and free space (``statvfs``) and the bytes the device
  directory takes (``du``: allocated blocks, so LMDB's sparse files count what they use).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import lmdb

OBJECT_INDEX = "objects.lmdb"  # objectd/device.py
CONTAINER_DB = "containers.lmdb"  # containerd_/broker.py
ASYNC_PENDING_TABLE = b"async_pending"  # service/async_pending.py
INDEX_TABLE = b"index"  # objectd/device.py
QUARANTINE_TABLE = b"quarantine"  # objectd/device.py: inline bodies that failed
QUARANTINE_DIR = os.path.join("quarantined", "objects")  # objectd/device.py
_PARTITION = struct.Struct(">I")  # objectd/layout.py: an index key's first four bytes
_MAX_DBS = 16


@dataclass
class DeviceStatus:
    name: str
    path: str
    async_pendings: int | None = None  # objects.lmdb's; None: no such environment
    container_async_pendings: int | None = None  # containers.lmdb's
    quarantined: int = 0  # data files plus inline bodies kept aside
    partitions: int | None = None  # object partitions held
    handoff_partitions: int | None = None  # ...of which this device is no primary
    used_bytes: int = 0  # allocated under the device directory
    fs_size_bytes: int = 0
    fs_avail_bytes: int = 0
    errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def open_readonly(path: str) -> Iterator[lmdb.Environment]:
    """An LMDB environment, read-only and without the lock file (see the module docstring)."""
    env = lmdb.open(path, readonly=True, lock=False, max_dbs=_MAX_DBS, readahead=False)
    try:
        yield env
    finally:
        env.close()


def table_entries(env: lmdb.Environment, table: bytes) -> int:
    """How many entries ``table`` holds (0 if it does not exist)."""
    with env.begin() as txn:
        if txn.get(table) is None:  # a named table is a key of the main one
            return 0
    db = env.open_db(table, create=False)
    with env.begin() as txn:
        return int(txn.stat(db)["entries"])


def held_partitions(env: lmdb.Environment) -> list[int]:
    """The partitions the object index has keys in, in order."""
    with env.begin() as txn:
        if txn.get(INDEX_TABLE) is None:
            return []
    db = env.open_db(INDEX_TABLE, create=False)
    found: list[int] = []
    with env.begin(db=db) as txn:
        cursor = txn.cursor()
        ok = cursor.first()
        while ok:
            partition = _PARTITION.unpack_from(cursor.key())[0]
            if found and partition <= found[-1]:  # pages reused under us (lock=False)
                raise lmdb.Error("the index changed while it was read; try again")
            found.append(partition)
            if partition == 0xFFFFFFFF:
                break
            ok = cursor.set_range(_PARTITION.pack(partition + 1))
    return found


def quarantined_files(device_path: str) -> int:
    """Data files quarantine moved under ``quarantined/objects/<hash>/``."""
    count = 0
    root = os.path.join(device_path, QUARANTINE_DIR)
    for _dirpath, _dirnames, filenames in os.walk(root):
        count += len(filenames)
    return count


def du_bytes(path: str) -> int:
    """Bytes allocated to the files under ``path`` (as ``du``)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):  # gone since the listing
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def device_status(
    name: str, path: str, is_primary: Callable[[int], bool] | None = None
) -> DeviceStatus:
    """One device's figures.  ``is_primary(partition)``: whether this device is a primary of
    the object partition (None: no object ring, handoffs unknown).  A figure that cannot be
    read stays None (or 0) and says why in ``errors``."""
    status = DeviceStatus(name, path)
    index_path = os.path.join(path, OBJECT_INDEX)
    if os.path.isdir(index_path):
        try:
            with open_readonly(index_path) as env:
                status.async_pendings = table_entries(env, ASYNC_PENDING_TABLE)
                status.quarantined += table_entries(env, QUARANTINE_TABLE)
                partitions = held_partitions(env)
            status.partitions = len(partitions)
            if is_primary is not None:
                status.handoff_partitions = sum(1 for p in partitions if not is_primary(p))
        except (lmdb.Error, struct.error) as exc:
            status.errors.append(f"{OBJECT_INDEX} unreadable: {exc}")
    container_path = os.path.join(path, CONTAINER_DB)
    if os.path.isdir(container_path):
        try:
            with open_readonly(container_path) as env:
                status.container_async_pendings = table_entries(env, ASYNC_PENDING_TABLE)
        except lmdb.Error as exc:
            status.errors.append(f"{CONTAINER_DB} unreadable: {exc}")
    try:
        status.quarantined += quarantined_files(path)
        fs = os.statvfs(path)
        status.fs_size_bytes = fs.f_blocks * fs.f_frsize
        status.fs_avail_bytes = fs.f_bavail * fs.f_frsize
        status.used_bytes = du_bytes(path)
    except OSError as exc:
        status.errors.append(f"{path}: {exc.strerror}")
    return status
