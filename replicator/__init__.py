"""Background daemons (DESIGN.md, "Background daemons"): the updaters, and later the
replicators, auditors, expirer and reaper.

Each daemon is an ``async run_once() -> stats`` plus ``run_forever(interval_s)``
(replicator/daemon.py), run as its own process by ``torus serve <daemon> --config FILE``
(replicator/process.py).  Nothing of ours imports this package except tools/ (and tests).
"""
