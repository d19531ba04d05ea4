"""Measurements both sides of the ring benchmark take the same way.

Imported by torus_side.py and swift_side.py, which run under different
interpreters (the repo's venv, Swift's bench venv): stdlib only here.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from typing import Any


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``call()``'s result, wall seconds and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def load_and_look_up(load_ring: Callable[[], Any], names_path: str) -> dict:
    """Load the ring as a server would, then time get_nodes over the names in ``names_path``."""
    ring, load_s, _cpu = timed(load_ring)
    with open(names_path) as f:
        names = [tuple(name) for name in json.load(f)]
    get_nodes = ring.get_nodes
    started = time.perf_counter()
    for account, container, obj in names:
        get_nodes(account, container, obj)
    return {
        "ring_load_s": load_s,
        "lookups_per_s": len(names) / (time.perf_counter() - started),
        "peak_rss_mib": peak_rss_mib(),
    }
