"""Where the container and account auditors keep the entries they remove: Swift's
``<device>/quarantined/containers/<hash>/``, one small file per entry.

Swift quarantines a whole database file; here a database is some entries of an environment
every container of the device shares, so what is moved aside is each bad entry's bytes,
written here (and fsynced, with the directory) *before* the auditor's transaction removes it
from LMDB: a crash between the two leaves both, never neither.  Nothing reads these files
back; they are for an operator, as Swift's quarantined databases are.

Format, version 1 (this docstring is its spec): ``<device>/quarantined/<kind>s/<db id
hex>/<table>-<xxh3-64 of key and name, hex>-<ns since the epoch>.json``, a UTF-8 JSON object
``{"v": 1, "kind", "path" (the database's, or null if its record is bad), "table", "key"
(hex), "name" (hex, or null for a record or a whole bucket), "value" (hex), "reason",
"quarantined_at" (seconds since the epoch)}``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import xxhash

from .db_audit_checks import BadEntry, DbAudit

FORMAT_VERSION = 1
QUARANTINE_DIR = "quarantined"


def database_dir(device_path: Path, kind: str, db_id: bytes) -> Path:
    """``<device>/quarantined/containers/<id hex>`` for ``kind`` "container"."""
    return Path(device_path) / QUARANTINE_DIR / f"{kind}s" / db_id.hex()


def save(
    device_path: Path, kind: str, found: DbAudit, *, now: Callable[[], float] = time.time
) -> list[Path]:
    """Write every bad entry of ``found`` durably; the files written.  Blocking: call it in a
    worker thread."""
    directory = database_dir(device_path, kind, found.db_id)
    directory.mkdir(parents=True, exist_ok=True)
    written = [_save_entry(directory, kind, found.path, entry, now()) for entry in found.bad]
    # The files' entries, then each new directory's entry in its parent, up to the device.
    for path in (directory, directory.parent, directory.parent.parent, Path(device_path)):
        _fsync_dir(path)
    return written


def _save_entry(directory: Path, kind: str, path: str | None, entry: BadEntry, at: float) -> Path:
    digest = xxhash.xxh3_64_hexdigest(entry.key + b"\x00" + (entry.name or b""))
    target = directory / f"{entry.table}-{digest}-{time.time_ns()}.json"
    record = {
        "v": FORMAT_VERSION,
        "kind": kind,
        "path": path,
        "table": entry.table,
        "key": entry.key.hex(),
        "name": None if entry.name is None else entry.name.hex(),
        "value": entry.value.hex(),
        "reason": entry.reason,
        "quarantined_at": at,
    }
    temp = directory / f".{target.name}.{os.getpid()}.tmp"
    with open(temp, "wb") as file:
        file.write(json.dumps(record, separators=(",", ":")).encode("utf-8"))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, target)
    return target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
