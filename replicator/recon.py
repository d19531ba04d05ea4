"""Recon records: each daemon's last pass, in a small file that `torus status` reads.

Swift's daemons dump their last pass into recon cache files (``/var/cache/swift/object.recon``)
and ``swift-recon`` reads them.  Here every daemon keeps one file per daemon and devices
directory: ``<devices>/<daemon>.recon`` (``DATA/node1/object-updater.recon`` in the
all-in-one), rewritten after each pass.

Why there: a daemon is configured with a devices directory and nothing else of the host's, so
the file needs no new setting and is found from the same directory by `torus status`.  It is a
*file* beside the device directories, never a directory: the object server opens every
directory under ``devices`` as a device at start-up (objectd/devices.py) and the daemons walk
them all (replicator/devices.py); both skip anything that is not a directory.  One file per
daemon, not one shared file as Swift's: no lock between daemons, and a daemon that stops
writing shows as an old record rather than being overwritten by its neighbours.

Format, version 1 (this docstring is its spec): UTF-8 JSON object ``{"v": 1, "daemon",
"devices", "host", "pid", "started_at" (wall clock, seconds since the epoch), "duration_s",
"ok" (false: the pass raised), "error" (null, or the exception's text), "stats" ({counter:
number} of the pass's stats dataclass; {} for a failed pass)}``.

Written to a temp file named with the writer's pid (two instances of one daemon may run on
the same devices, e.g. a ``--once`` run beside the running daemon), then renamed into place,
so a reader sees a whole record or the previous one.  Not fsynced: after a crash the record
may be the previous one, or missing, which only makes the daemon look older than it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
SUFFIX = ".recon"


def recon_path(devices: Path, daemon: str) -> Path:
    """``<devices>/<daemon>.recon``."""
    return Path(devices) / f"{daemon}{SUFFIX}"


@dataclass(frozen=True)
class PassRecord:
    daemon: str  # "object-updater"
    devices: str  # the devices directory it walked
    host: str
    pid: int
    started_at: float  # wall clock, seconds since the epoch
    duration_s: float
    ok: bool  # False: the pass raised
    error: str | None = None  # the exception, for a failed pass
    stats: dict[str, Any] = field(default_factory=dict)  # counter name -> value


def stats_fields(stats: Any) -> dict[str, Any]:
    """A stats dataclass's counters as JSON values (anything else as text)."""
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        items = dataclasses.asdict(stats).items()
    elif isinstance(stats, dict):
        items = stats.items()
    else:
        return {"value": repr(stats)}
    plain = (int, float, str, bool, type(None))
    return {str(name): value if isinstance(value, plain) else repr(value) for name, value in items}


def encode(record: PassRecord) -> bytes:
    document = {"v": FORMAT_VERSION, **dataclasses.asdict(record)}
    return json.dumps(document, sort_keys=True, allow_nan=False).encode("utf-8")


def decode(data: bytes) -> PassRecord:
    """The record; ValueError for anything this code cannot read."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("v") != FORMAT_VERSION:
            raise ValueError(f"not a version {FORMAT_VERSION} recon record")
        stats = doc["stats"]
        if not isinstance(stats, dict):
            raise TypeError("stats is not an object")
        return PassRecord(
            daemon=str(doc["daemon"]),
            devices=str(doc["devices"]),
            host=str(doc["host"]),
            pid=int(doc["pid"]),
            started_at=float(doc["started_at"]),
            duration_s=float(doc["duration_s"]),
            ok=bool(doc["ok"]),
            error=None if doc["error"] is None else str(doc["error"]),
            stats=stats,
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad recon record: {exc}") from exc


def write(path: Path, record: PassRecord) -> None:
    """Replace ``path`` with ``record`` atomically (temp file, rename); OSError if it cannot.

    Blocking (a failing disk can hang a write): call it in a worker thread.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(encode(record))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path) -> PassRecord | None:
    """The record at ``path``; None if there is none; ValueError if it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    return decode(data)


def find(devices: Path) -> dict[str, Path]:
    """Every recon file in ``devices``, by daemon name."""
    try:
        names = sorted(os.listdir(devices))
    except OSError:
        return {}
    return {
        name[: -len(SUFFIX)]: Path(devices) / name
        for name in names
        if name.endswith(SUFFIX) and not name.startswith(".")
    }
