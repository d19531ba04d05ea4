"""The daemons' last passes as gauges, from the recon records in a devices directory.

Every daemon rewrites ``<devices>/<daemon>.recon`` after each pass (replicator/recon.py, which
specifies the format: a version 1 JSON object with ``daemon``, ``started_at``, ``duration_s``,
``ok`` and ``stats``).  A server with a devices directory exposes, per daemon found there:

- ``torus_daemon_last_pass_<counter>{daemon}`` for each numeric counter of the pass's stats
  (``objects``, ``quarantined``, ``bytes_verified``...; a boolean as 0/1);
- ``torus_daemon_last_pass_duration_seconds``, ``torus_daemon_last_pass_age_seconds`` (since
  the pass ended: an alert on it finds a stuck or stopped daemon), and
  ``torus_daemon_last_pass_ok`` (0: the pass raised; its counters are then absent);
- ``torus_daemon_recon_unreadable``: records that could not be read (0 normally).

The record is decoded here rather than by replicator/recon.py because ``service`` imports
none of our other packages (tests/unit/test_import_direction.py) and the servers must not
depend on the daemons' package; only the fields named above are read, so a later format
version that keeps them still works, and one that does not is counted as unreadable.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .metrics import Family, Sample

RECON_SUFFIX = ".recon"
PREFIX = "torus_daemon_last_pass_"
_FIXED = ("duration_seconds", "age_seconds", "ok")  # ours; a counter of these names is dropped
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class LastPass:
    daemon: str
    ended_at: float  # wall clock
    duration_s: float
    ok: bool
    counters: dict[str, float] = field(default_factory=dict)  # metric-safe name -> value


def read_last_passes(devices: Path) -> tuple[list[LastPass], int]:
    """Each daemon's last pass found in ``devices``, by daemon name; and how many records could
    not be read.  Blocking (a failing disk can hang a read): call it in a thread."""
    try:
        names = sorted(os.listdir(devices))
    except OSError:
        return [], 0
    passes, unreadable = [], 0
    for name in names:
        if not name.endswith(RECON_SUFFIX) or name.startswith("."):
            continue
        try:
            passes.append(decode((Path(devices) / name).read_bytes()))
        except (OSError, ValueError):
            unreadable += 1
    return passes, unreadable


def decode(data: bytes) -> LastPass:
    """The fields this module uses of one record; ValueError if they are not there."""
    try:
        doc = json.loads(data)
        stats = doc["stats"]
        if not isinstance(stats, dict):
            raise TypeError("stats is not an object")
        started_at, duration_s = float(doc["started_at"]), float(doc["duration_s"])
        counters = {
            _NOT_NAME.sub("_", str(key)): float(value)
            for key, value in stats.items()
            if isinstance(value, int | float)  # bool is an int
        }
        return LastPass(
            daemon=str(doc["daemon"]),
            ended_at=started_at + duration_s,
            duration_s=duration_s,
            ok=bool(doc["ok"]),
            counters=counters,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"bad recon record: {exc}") from exc


def families(passes: list[LastPass], unreadable: int, now: float) -> list[Family]:
    """The gauges of ``passes``; ``now`` is the wall clock (the records' clock)."""
    fixed: dict[str, list[Sample]] = {name: [] for name in _FIXED}
    counters: dict[str, list[Sample]] = {}
    for last in sorted(passes, key=lambda p: p.daemon):
        labels = (("daemon", last.daemon),)
        fixed["duration_seconds"].append(
            Sample(PREFIX + "duration_seconds", labels, last.duration_s)
        )
        fixed["age_seconds"].append(Sample(PREFIX + "age_seconds", labels, now - last.ended_at))
        fixed["ok"].append(Sample(PREFIX + "ok", labels, 1.0 if last.ok else 0.0))
        for counter, value in last.counters.items():
            if counter not in _FIXED:
                counters.setdefault(counter, []).append(Sample(PREFIX + counter, labels, value))
    helps = {
        "duration_seconds": "How long the daemon's last pass took.",
        "age_seconds": "Seconds since the daemon's last pass ended.",
        "ok": "1 if the daemon's last pass completed, 0 if it raised.",
    }
    out = [Family(PREFIX + name, "gauge", helps[name], tuple(fixed[name])) for name in _FIXED]
    out += [
        Family(PREFIX + name, "gauge", f"The daemon's last pass: {name}.", tuple(samples))
        for name, samples in sorted(counters.items())
    ]
    out.append(
        Family(
            "torus_daemon_recon_unreadable",
            "gauge",
            "Recon records in the devices directory that could not be read.",
            (Sample("torus_daemon_recon_unreadable", (), float(unreadable)),),
        )
    )
    return out
