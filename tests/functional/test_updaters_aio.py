"""`torus up` runs each storage node's updaters, and `torus down` stops them.

An all-in-one cluster (tests/aio_cluster.py) on free ports: its DATA/run/cluster.json lists
the daemons, each running; an object uploaded with python-swiftclient shows in the account's
totals once a container updater pass has run (``interval_s`` is 15 s in the all-in-one), with
no test calling any daemon; `down` leaves none of them running.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aio_cluster import running_cluster
from swiftclient import client as swiftclient

from tools.aio_layout import ALL_NODE_DAEMONS, NODES, UPDATER_INTERVAL_S
from tools.aio_pids import group_members

WAIT_S = 3 * UPDATER_INTERVAL_S + 10  # a pass or two, on a busy two-core machine


@pytest.mark.slow
def test_up_runs_the_updaters_that_bring_account_totals_up_to_date(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_cluster(data) as cluster:
        summary = json.loads((data / "run" / "cluster.json").read_text())
        daemons = summary["daemons"]
        assert sorted(daemons) == sorted(
            f"{daemon}-{node}" for daemon in ALL_NODE_DAEMONS for node in range(1, NODES + 1)
        )
        assert all(group_members(info["pid"]) for info in daemons.values()), daemons
        assert all(info["port"] is None for info in daemons.values())

        url, token = swiftclient.get_auth(cluster.auth_url, "test:tester", "testing")
        swiftclient.put_container(url, token, "totals")
        swiftclient.put_object(url, token, "totals", "a", b"x" * 10)
        swiftclient.put_object(url, token, "totals", "b", b"y" * 32)
        deadline = time.monotonic() + WAIT_S
        while True:
            headers = swiftclient.head_account(url, token)
            counts = headers["x-account-object-count"], headers["x-account-bytes-used"]
            if counts == ("2", "42") or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert counts == ("2", "42")
        _, listing = swiftclient.get_account(url, token)
        assert [(c["name"], c["count"], c["bytes"]) for c in listing] == [("totals", 2, 42)]
        log = (data / "log" / "container-updater-1.log").read_text()
        assert "container-updater pass completed" in log
    assert not [name for name, info in daemons.items() if group_members(info["pid"])]
    assert sorted(p.name for p in (data / "run").iterdir()) == ["up.lock"]
