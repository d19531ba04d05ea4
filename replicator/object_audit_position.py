"""Where the object auditor stopped on a device, so that a restarted auditor resumes there.

At the default rate (10 MB/s) a pass over a full disk takes days; an auditor restarted more
often than that (a deploy, a reboot) and starting over each time would never reach the end of
the disk.  So, as Swift's ``auditor_status_*.json``, the auditor keeps its position per device
in ``<device>/object_auditor.json``, saved every ``CHECKPOINT_S`` and when it is stopped, and
removes the file once the device's pass is complete.

Format, version 1 (this docstring is its spec): UTF-8 JSON ``{"v": 1, "after": HEX}``, HEX the
index key (objectd/layout.py) of the last version audited.  Written to a temp file and renamed,
not fsynced: losing it costs re-auditing part of the device, nothing more.  A file that cannot
be read counts as no position (the pass starts from the beginning).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

FILE = "object_auditor.json"
FORMAT_VERSION = 1
CHECKPOINT_S = 30.0  # how often a pass in progress saves its position

log = logging.getLogger("torus.object-auditor")


def encode(after: bytes) -> bytes:
    return json.dumps({"v": FORMAT_VERSION, "after": after.hex()}).encode()


def decode(data: bytes) -> bytes | None:
    """The key, or None for anything this code cannot read."""
    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and doc.get("v") == FORMAT_VERSION:
            return bytes.fromhex(doc["after"])
    except (ValueError, KeyError, TypeError):
        pass
    return None


def load(device_path: str) -> bytes:
    """The key after which the device's pass resumes; b"" to start from the beginning."""
    path = os.path.join(device_path, FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        log.warning("cannot read %s: %s; auditing from the start", path, exc)
        return b""
    after = decode(data)
    if after is None:
        log.warning("cannot decode %s; auditing from the start", path)
        return b""
    return after


def save(device_path: str, after: bytes) -> None:
    path = os.path.join(device_path, FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(encode(after))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot save the auditor's position in %s: %s", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def clear(device_path: str) -> None:
    path = os.path.join(device_path, FILE)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)
