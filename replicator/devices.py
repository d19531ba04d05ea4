"""Which local devices a daemon visits: the directories under ``devices`` that hold its file.

A device with no ``objects.lmdb`` (``containers.lmdb``) has nothing for the daemon, and opening
one would create it: skipped, quietly.  Under ``mount_check``, a device that is not a mount
point is skipped and counted as unusable, as Swift's daemons skip an unmounted drive.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from service.lmdb_devices import device_problem

log = logging.getLogger("torus.replicator")


def local_devices(root: Path, filename: str, *, mount_check: bool) -> tuple[list[str], int]:
    """(devices holding ``filename``, in name order; how many could not be used).

    Blocking (a failing disk can hang a stat): call it in a worker thread.
    """
    try:
        names = sorted(os.listdir(root))
    except OSError as exc:
        log.warning("cannot list the devices in %s: %s", root, exc.strerror)
        return [], 1
    found, unusable = [], 0
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        problem = device_problem(path, mount_check)
        if problem is not None:
            log.warning("skipping device %s: %s", name, problem)
            unusable += 1
        elif os.path.exists(os.path.join(path, filename)):
            found.append(name)
    return found, unusable
