"""One run of the ring benchmark with Torus's RingBuilder; prints one JSON line.

    python bench/ring/torus_side.py WORKLOAD.json NAMES.json WORKDIR

WORKLOAD.json (written by run.py) holds the ring parameters, the devices in add order (ids
0..n-1) and the ids to remove; NAMES.json holds the [account, container, object] names to look
up. The ring is written as a ring file and read back, as a server would load it. ``ring`` must be
importable: run.py puts the repo root on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from ring import ringfile
from ring.builder import RingBuilder
from ring.ring import Ring

HASH_SECRET = b"torus-bench-ring"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed_rebalance(builder: RingBuilder, seed: int) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    result = builder.rebalance(seed=seed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "balance": result.balance,
        "dispersion": result.dispersion,
        "moved": result.parts_moved,
        "plan_reached": result.plan_reached,
    }


def main(workload_path: str, names_path: str, workdir: str) -> dict:
    with open(workload_path) as f:
        work = json.load(f)
    builder = RingBuilder(work["part_power"], work["replicas"], work["min_part_hours"])
    for index, dev in enumerate(work["devices"]):
        dev_id = builder.add_dev(**dev)
        assert dev_id == index, (dev_id, index)
    out: dict = {"side": "torus", "python": sys.version.split()[0]}

    out["initial"] = timed_rebalance(builder, work["seed"])

    builder.pretend_min_part_hours_passed()
    held = builder.parts_held()
    out["must_move"] = sum(held[dev_id] for dev_id in work["remove_ids"])
    for dev_id in work["remove_ids"]:
        builder.remove_dev(dev_id)
    out["remove"] = timed_rebalance(builder, work["seed"] + 1)
    out["peak_rss_build_mib"] = peak_rss_mib()
    builder.validate()  # raises if a partition-replica is on no device or on one twice

    path = os.path.join(workdir, "object.ring")
    ringfile.write(path, builder.get_ring())
    started = time.perf_counter()
    ring = Ring.load(path, HASH_SECRET)
    out["ring_load_s"] = time.perf_counter() - started
    out["ring_file_bytes"] = os.path.getsize(path)
    del builder  # a server holds only the ring

    with open(names_path) as f:
        names = [tuple(name) for name in json.load(f)]
    get_nodes = ring.get_nodes
    started = time.perf_counter()
    for account, container, obj in names:
        get_nodes(account, container, obj)
    out["lookups_per_s"] = len(names) / (time.perf_counter() - started)
    out["peak_rss_mib"] = peak_rss_mib()
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(json.dumps(main(*sys.argv[1:])))
