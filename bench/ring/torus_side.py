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
import sys

from measure import load_and_look_up, peak_rss_mib, timed

from ring import ringfile
from ring.builder import RingBuilder
from ring.ring import Ring

HASH_SECRET = b"torus-bench-ring"


def timed_rebalance(builder: RingBuilder, seed: int) -> dict:
    result, wall, cpu = timed(lambda: builder.rebalance(seed=seed))
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
    out["ring_file_bytes"] = os.path.getsize(path)
    del builder  # a server holds only the ring
    out.update(load_and_look_up(lambda: Ring.load(path, HASH_SECRET), names_path))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(json.dumps(main(*sys.argv[1:])))
