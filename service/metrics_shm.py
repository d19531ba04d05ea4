"""Request metrics shared by the workers of one server: one mapped file per worker, summed.

A server with several workers (service/runner.py) has them share one port with
``SO_REUSEPORT``; a scrape reaches whichever worker the kernel picks.  So that any worker can
answer for the whole server, each keeps its slots (service/metrics.py) in a file of its own,
mapped ``MAP_SHARED``: ``<directory>/<pid>.slots``, where the directory is made by the
supervisor before it forks (``make_directory``:
``/dev/shm/torus-metrics-<port>-<supervisor pid>-XXXXXXXX``) and removed when it stops.  A
scrape reads every file in it and adds them up, slot by slot.

Why one file per worker, not one shared file: each slot then has a single writer, so an
update is a plain ``+=`` on mapped memory, with no lock and no atomic instruction (an aligned
8-byte store is not torn on the machines we run on; a scrape may see one request's counter
and not yet its histogram, which the next scrape corrects).  Why files are kept after their
worker dies: a restarted worker starts from zero in a new file, and keeping the dead one's
file keeps every sum monotonic, as a counter must be, for the life of the server.

A supervisor that is killed (SIGKILL) cannot remove its directory; the next supervisor on
the same port removes every one of that port whose supervisor pid no longer runs.  Known
weakness: one on a port never used again stays until reboot (a few KiB per worker).
"""

from __future__ import annotations

import logging
import mmap
import os
import shutil
import tempfile
from pathlib import Path

from .metrics import SLOT_BYTES

SHM_DIR = Path("/dev/shm")
SUFFIX = ".slots"
_log = logging.getLogger("torus.metrics")


def make_directory(bind_port: int) -> Path | None:
    """A fresh directory for one server's worker files; None where none can be made (the
    workers then each keep private counters, and a scrape sees one worker's)."""
    parent = SHM_DIR if SHM_DIR.is_dir() else Path(tempfile.gettempdir())
    _remove_orphans(parent, bind_port)
    prefix = f"torus-metrics-{bind_port}-{os.getpid()}-"
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as exc:
        _log.warning("no shared metrics directory in %s (%s): per-worker metrics", parent, exc)
        return None


def remove_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def _remove_orphans(parent: Path, bind_port: int) -> None:
    """Remove the directories of this port's killed supervisors (their pid runs no more)."""
    for path in parent.glob(f"torus-metrics-{bind_port}-*-*"):
        pid_text = path.name.split("-")[3]
        if pid_text.isdigit() and not _running(int(pid_text)):
            remove_directory(path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class WorkerSlots:
    """This worker's slots, in its own mapped file in ``directory``."""

    def __init__(self, directory: Path, size: int) -> None:
        self.path = directory / f"{os.getpid()}{SUFFIX}"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size * SLOT_BYTES)  # a new file reads as zeros
            self._map = mmap.mmap(fd, size * SLOT_BYTES, mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self.values = memoryview(self._map).cast("d")


def summed(directory: Path, size: int) -> tuple[list[float], int]:
    """Every worker file's slots added up, and how many files there were.

    A file of another size (a worker of other code) or one that cannot be read is skipped.
    Blocking, but on tmpfs: a few KiB per worker, read from memory.
    """
    totals = [0.0] * size
    files = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return totals, 0
    for name in names:
        if not name.endswith(SUFFIX):
            continue
        try:
            data = (directory / name).read_bytes()
        except OSError:
            continue
        if len(data) != size * SLOT_BYTES:
            continue
        for i, value in enumerate(memoryview(data).cast("d")):
            totals[i] += value
        files += 1
    return totals, files
