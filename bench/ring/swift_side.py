"""One run of the ring benchmark with OpenStack Swift's RingBuilder; prints one JSON line.

    SWIFT_VENV/bin/python bench/ring/swift_side.py WORKLOAD.json NAMES.json WORKDIR

The same steps as torus_side.py, through Swift's API: the ring is saved as ring.gz and loaded
with swift.common.ring.Ring, as Swift's servers load it. Swift reads its hash path prefix and
suffix from swift.conf; this writes one into WORKDIR and points Swift at it.
"""

from __future__ import annotations

import json
import os
import sys

from measure import load_and_look_up, peak_rss_mib, timed

HASH_CONF = "[swift-hash]\nswift_hash_path_prefix = torus-bench\nswift_hash_path_suffix = ring\n"


def timed_rebalance(builder, seed: int) -> dict:
    (moved, balance, _removed), wall, cpu = timed(lambda: builder.rebalance(seed=seed))
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "balance": balance,
        "dispersion": builder.dispersion,
        "moved": moved,
    }


def main(workload_path: str, names_path: str, workdir: str) -> dict:
    with open(os.path.join(workdir, "swift.conf"), "w") as f:
        f.write(HASH_CONF)
    import swift
    from swift.common import utils
    from swift.common.ring import Ring
    from swift.common.ring.builder import RingBuilder

    # Swift reads swift.conf from a module-level path (utils.SWIFT_CONF_FILE), not from the
    # environment; set_swift_dir() moves that path and validates the hash config there.
    utils.set_swift_dir(workdir)
    with open(workload_path) as f:
        work = json.load(f)
    builder = RingBuilder(work["part_power"], work["replicas"], work["min_part_hours"])
    for index, dev in enumerate(work["devices"]):
        dev_id = builder.add_dev(dict(dev))
        assert dev_id == index, (dev_id, index)
    out: dict = {"side": "swift", "python": sys.version.split()[0], "swift": swift.__version__}

    out["initial"] = timed_rebalance(builder, work["seed"])

    builder.pretend_min_part_hours_passed()
    out["must_move"] = sum(builder.devs[dev_id]["parts"] for dev_id in work["remove_ids"])
    for dev_id in work["remove_ids"]:
        builder.remove_dev(dev_id)
    out["remove"] = timed_rebalance(builder, work["seed"] + 1)
    out["peak_rss_build_mib"] = peak_rss_mib()
    builder.validate()  # raises if a partition-replica is on no device or on one twice

    path = os.path.join(workdir, "object.ring.gz")
    builder.get_ring().save(path)
    out["ring_file_bytes"] = os.path.getsize(path)
    del builder  # a server holds only the ring
    out.update(load_and_look_up(lambda: Ring(path), names_path))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(json.dumps(main(*sys.argv[1:])))
