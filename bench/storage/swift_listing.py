"""Swift's side of the listing benchmark: a real swift-container-server over SQLite.

    SWIFT_VENV/bin/python bench/storage/swift_listing.py WORKDIR ROWS [ROWS ...]

For each size, fills one container database with ROWS object rows through Swift's own
ContainerBroker (as replication would), starts swift-container-server on a free loopback port,
and times GET listings of a 10,000-row page starting from the middle of the container.
Prints one JSON line per size.  Uses stdlib + Swift only (runs in Swift's bench venv).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

PAGE = 10_000
REQUESTS = 7
ACCOUNT = "AUTH_bench"
HASH_CONF = "[swift-hash]\nswift_hash_path_prefix = torus-bench\nswift_hash_path_suffix = ls\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def object_name(index: int) -> str:
    # Names shared with the Torus side: the same rows, the same middle marker.
    return f"photos/{index % 97:02d}/{index:09d}.jpg"


def fill(devices: str, container: str, rows: int) -> None:
    from swift.common.utils import Timestamp, hash_path
    from swift.container.backend import ContainerBroker

    name_hash = hash_path(ACCOUNT, container)
    part = 0  # the server takes the partition from the URL; any fixed one works
    db_dir = os.path.join(devices, "sdb1", "containers", str(part), name_hash[-3:], name_hash)
    os.makedirs(db_dir, exist_ok=True)
    broker = ContainerBroker(
        os.path.join(db_dir, name_hash + ".db"), account=ACCOUNT, container=container
    )
    broker.initialize(Timestamp.now().internal, storage_policy_index=0)
    now = Timestamp.now().internal
    batch = []
    for index in range(rows):
        batch.append(
            {"name": object_name(index), "created_at": now, "size": 4096,
             "content_type": "image/jpeg", "etag": "d41d8cd98f00b204e9800998ecf8427e",
             "deleted": 0, "storage_policy_index": 0}
        )  # fmt: skip
        if len(batch) == 10_000:
            broker.merge_items(batch)
            batch = []
    if batch:
        broker.merge_items(batch)


def server_conf(workdir: str, devices: str, port: int) -> str:
    path = os.path.join(workdir, "container-server.conf")
    with open(path, "w") as f:
        f.write(
            f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\n"
            f"devices = {devices}\nmount_check = false\nlog_level = WARNING\n"
            f"swift_dir = {workdir}\n\n"
            "[pipeline:main]\npipeline = container-server\n\n"
            "[app:container-server]\nuse = egg:swift#container\n"
        )
    return path


def wait_ready(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered: a 4xx for "/" means it is up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("swift-container-server did not come up")


def time_page(port: int, container: str, rows: int) -> list[float]:
    marker = urllib.request.quote(object_name_sorted_middle(rows))
    url = (f"http://127.0.0.1:{port}/sdb1/0/{ACCOUNT}/{container}"
           f"?format=json&limit={PAGE}&marker={marker}")  # fmt: skip
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            body = response.read()
        times.append(time.perf_counter() - started)
        assert len(json.loads(body)) == min(PAGE, rows - rows // 2), len(json.loads(body))
    return times


def object_name_sorted_middle(rows: int) -> str:
    return sorted(object_name(i) for i in range(rows))[rows // 2 - 1]


def main(workdir: str, sizes: list[int]) -> None:
    with open(os.path.join(workdir, "swift.conf"), "w") as f:
        f.write(HASH_CONF)
    from swift.common import utils

    utils.set_swift_dir(workdir)
    devices = os.path.join(workdir, "srv")
    os.makedirs(os.path.join(devices, "sdb1"), exist_ok=True)
    port = free_port()
    for rows in sizes:
        container = f"c{rows}"
        started = time.perf_counter()
        fill(devices, container, rows)
        fill_s = time.perf_counter() - started
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "swift-container-server"),
             server_conf(workdir, devices, port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_ready(port)
            times = sorted(time_page(port, container, rows))
        finally:
            server.terminate()
            server.wait(30)
        print(json.dumps({"side": "swift", "rows": rows, "fill_s": fill_s,
                          "page_s_median": times[len(times) // 2], "page_s": times}))  # fmt: skip
        sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], [int(n) for n in sys.argv[2:]])
