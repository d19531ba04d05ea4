"""The engine's devices by name: whether each may be used, and its open Device.

Whether a device may be used (Swift's check_drive: a directory, or a mount point) is checked
at most once a second per device, not per request.  A device is opened once per process: at
start-up for every device present (``open_present``, in a worker thread), else on first use —
from an async caller in a worker thread, so that neither LMDB's open nor the temp-file sweep
runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

from service.lmdb_devices import check_device_name, device_problem

from .device import Device
from .errors import DeviceUnavailable, DiskFull

log = logging.getLogger("torus.objectd")
CHECK_TTL_S = 1.0  # how long a device check holds


class DeviceSet:
    def __init__(
        self,
        root: str,
        *,
        mount_check: bool,
        opener: Callable[[str, str], Device],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self._mount_check = mount_check
        self._opener = opener  # (name, path) -> Device
        self._monotonic = monotonic
        self._checked: dict[str, tuple[float, str | None]] = {}  # name -> (when, problem)
        self._open: dict[str, Device] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, name: str) -> Device:
        """The open device; opened here if it is not yet (off the loop: see get_async)."""
        path = self.check(name)
        dev = self._open.get(name)
        return dev if dev is not None else self._opened(name, path)

    async def get_async(self, name: str) -> Device:
        path = self.check(name)
        dev = self._open.get(name)
        return dev if dev is not None else await asyncio.to_thread(self._opened, name, path)

    def check(self, name: str) -> str:
        """The device's path; DeviceUnavailable if it may not be used now."""
        path = os.path.join(self.root, check_device_name(name))
        now = self._monotonic()
        checked = self._checked.get(name)
        if checked is None or now - checked[0] >= CHECK_TTL_S:
            checked = (now, device_problem(path, self._mount_check))
            self._checked[name] = checked
        if checked[1] is not None:
            raise DeviceUnavailable(name, checked[1])
        return path

    def open_present(self) -> list[str]:
        """Open every usable device under the root (blocking: call it in a worker thread)."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError as exc:
            log.warning("cannot list the devices in %s: %s", self.root, exc)
            return []
        opened = []
        for name in names:
            try:
                path = self.check(name)
            except (DeviceUnavailable, ValueError):
                continue  # not a device (now): opened when first used
            try:
                self._opened(name, path)
            except (DeviceUnavailable, DiskFull) as exc:
                log.warning("cannot open device %s: %s", name, exc)
            else:
                opened.append(name)
        return opened

    def reader_check(self) -> int:
        """Free the LMDB reader slots of dead processes on every open device."""
        return sum(dev.reader_check() for dev in list(self._open.values()))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            devices, self._open = list(self._open.values()), {}
        for dev in devices:
            dev.close()

    def _opened(self, name: str, path: str) -> Device:
        with self._lock:  # opened once, even if threads race here
            if self._closed:
                raise RuntimeError("the object engine is closed")
            dev = self._open.get(name)
            if dev is None:
                dev = self._open[name] = self._opener(name, path)
            return dev
