"""The files `torus ring` reads and writes: the builder, the ring, and their backups.

One rule keeps an operator able to undo any command: before this tool
replaces a builder or ring file it copies the current one to
``backups/<unix-time>.<name>`` next to it.  So ``backups/`` holds every
earlier state, and ``backups/<t>.*`` is what the files were before the
command run at time ``t``.

Writes are atomic (``ring.builderfile.write`` and ``ring.ringfile.write``
write a temp file, fsync and rename), so a failed command leaves the old
file whole.  The builder is saved before the ring: the builder is the source
of truth, and a ring left behind by a crash in between is reported as
obsolete by the summary and fixed by ``write_ring``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ring import ringfile
from ring.builder import RingBuilder
from ring.fileformat import atomic_write

BACKUP_DIR = "backups"


def ring_path_for(builder_path: str) -> str:
    """``object.builder`` -> ``object.ring``, in the same directory."""
    stem = builder_path.removesuffix(".builder")
    return stem + ".ring"


class BuilderFiles:
    """One command's view of a builder file: loaded once, saved with a backup."""

    def __init__(self, builder_path: str, clock: Callable[[], float] = time.time) -> None:
        self.builder_path = builder_path
        self.ring_path = ring_path_for(builder_path)
        self.clock = clock
        self._builder: RingBuilder | None = None
        self._stamp: int | None = None  # one timestamp per command, shared by its backups

    @property
    def builder(self) -> RingBuilder:
        if self._builder is None:
            if not os.path.exists(self.builder_path):
                raise ValueError(
                    f"builder file {self.builder_path} does not exist "
                    f"(make one with: torus ring {self.builder_path} create ...)"
                )
            self._builder = RingBuilder.load(self.builder_path, clock=self.clock)
        return self._builder

    def create(self, builder: RingBuilder) -> None:
        """Save a new builder; refuses to replace an existing file."""
        if os.path.exists(self.builder_path):
            raise ValueError(f"builder file {self.builder_path} already exists; not replacing it")
        os.makedirs(self.backup_dir, exist_ok=True)
        self._builder = builder
        builder.save(self.builder_path)

    def save_builder(self) -> None:
        self.backup(self.builder_path)
        self.builder.save(self.builder_path)

    def write_ring(self) -> None:
        ring_data = self.builder.get_ring()  # raises before any file is touched
        self.backup(self.ring_path)
        ringfile.write(self.ring_path, ring_data)

    @property
    def backup_dir(self) -> str:
        return os.path.join(os.path.dirname(self.builder_path), BACKUP_DIR)

    def backup(self, path: str) -> str | None:
        """Copy ``path`` into backups/ unless it does not exist yet; return the copy's path."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        os.makedirs(self.backup_dir, exist_ok=True)
        target = self._free_backup_name(os.path.basename(path))
        atomic_write(target, data)
        return target

    def _free_backup_name(self, name: str) -> str:
        if self._stamp is None:
            self._stamp = int(self.clock())
        target = os.path.join(self.backup_dir, f"{self._stamp}.{name}")
        # Two commands within one second must not overwrite each other's backup.
        serial = 1
        while os.path.exists(target):
            target = os.path.join(self.backup_dir, f"{self._stamp}-{serial}.{name}")
            serial += 1
        return target
