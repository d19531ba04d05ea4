"""A ring file, reloaded when it changes (Swift's rings reload when their mtime moves).

A daemon runs for weeks while operators rebalance; it calls ``get()`` once a pass.  A ring that
is missing or cannot be read is logged once per change and ``get()`` returns the last good one
(None if there never was one): the caller then keeps to what its records name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ring.ring import Ring

log = logging.getLogger("torus.replicator")


class RingFile:
    def __init__(self, path: Path, hash_secret: bytes) -> None:
        self.path = path
        self._secret = hash_secret
        self._ring: Ring | None = None
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) last loaded or refused

    def get(self) -> Ring | None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._seen != (0, 0):
                log.warning("ring %s unavailable: %s", self.path, exc.strerror)
                self._seen = (0, 0)
            return self._ring
        seen = (st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            self._seen = seen
            try:
                self._ring = Ring.load(self.path, self._secret)
            except Exception as exc:  # a half-written or foreign file: keep the last good one
                log.warning("ring %s cannot be loaded: %s", self.path, exc)
        return self._ring
