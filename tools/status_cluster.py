"""`torus status`, cluster-wide: which processes run and answer, and the rings each node reads.

Processes come from DATA/run/cluster.json (what `torus up` started: servers with ports,
daemons without); each counts as running when its pid file names a live process
(tools/aio_pids.py, start time checked), and a server must also answer HTTP on its port
(200 on ``/healthcheck`` for the proxy and identity, any answer for a storage server).

Rings: the md5 of each ``.ring`` file as each node reads it.  A node's processes read
``[cluster] ring_dir`` of torus.toml unless their command line overrides it
(``TORUS_CLUSTER_RING_DIR``), so the directory is taken per process from cluster.json.  No
server reports the md5 of the ring it *loaded* yet (Swift's ``/recon/ringmd5``): only the
files are compared, which in the all-in-one all nodes share.  The proxy reloads a ring whose
file changed (proxy/context.py) and the updaters re-read theirs every pass, so a file and
what its reader holds differ for seconds at most.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.aio_layout import ALL_NODE_DAEMONS, STORAGE_SERVICES, DataDir
from tools.aio_pids import is_running, read_pid_file
from tools.aio_servers import ServerSpec, answers

HEALTH_PATHS = {"proxy": "/healthcheck", "identity": "/healthcheck"}
RING_DIR_VARIABLE = "TORUS_CLUSTER_RING_DIR"
PROBE_THREADS = 8
_NODE_SUFFIX = re.compile(r"-(\d+)$")


@dataclass
class ProcessStatus:
    name: str  # "object-1", "object-updater-1", "proxy"
    service: str
    node: int | None  # None: not a storage node's (proxy, identity)
    pid: int | None
    port: int | None  # None: a daemon
    running: bool = False
    answers: bool | None = None  # None: a daemon, which serves no HTTP
    ring_dir: str | None = None  # the rings it reads

    @property
    def up(self) -> bool:
        return self.running and self.answers is not False


def node_of(name: str) -> int | None:
    match = _NODE_SUFFIX.search(name)
    return int(match.group(1)) if match else None


def read_cluster_file(data: DataDir) -> dict[str, Any] | None:
    """DATA/run/cluster.json, or None if no cluster runs (or it cannot be read)."""
    try:
        document = json.loads(data.cluster_file.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def command_env(command: str) -> dict[str, str]:
    """The ``NAME=value`` words that start a cluster.json command line."""
    env = {}
    try:
        words = shlex.split(command)
    except ValueError:
        return {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name.isidentifier():
            break
        env[name] = value
    return env


def processes(
    data: DataDir, cluster: Mapping[str, Any] | None, default_ring_dir: Path, nodes: list[int]
) -> list[ProcessStatus]:
    """Every process the cluster should have, running or not, each checked."""
    found: list[ProcessStatus] = []
    if cluster is not None:
        for kind in ("servers", "daemons"):
            for name, info in sorted(cluster.get(kind, {}).items()):
                env = command_env(str(info.get("command", "")))
                found.append(
                    ProcessStatus(
                        name=name,
                        service=str(info.get("service", "")),
                        node=node_of(name),
                        pid=info.get("pid"),
                        port=info.get("port"),
                        ring_dir=env.get(RING_DIR_VARIABLE, str(default_ring_dir)),
                    )
                )
    else:  # nothing runs: what `up` would start, each down
        for node in nodes:
            for service in STORAGE_SERVICES:
                found.append(ProcessStatus(f"{service}-{node}", service, node, None, 0))
            for daemon in ALL_NODE_DAEMONS:
                found.append(ProcessStatus(f"{daemon}-{node}", daemon, node, None, None))
        for name in ("identity", "proxy"):
            found.append(ProcessStatus(name, name, None, None, 0))
        for status in found:
            status.ring_dir = str(default_ring_dir)
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        list(pool.map(lambda status: _check(data, status), found))
    return found


def _check(data: DataDir, status: ProcessStatus) -> None:
    record = read_pid_file(data.pid_file(status.name))
    status.running = record is not None and is_running(record)
    if status.port is None:
        return
    if not status.running or not status.port:
        status.answers = False
        return
    spec = ServerSpec(status.name, status.service, status.port, {}, HEALTH_PATHS.get(status.name))
    status.answers = answers(spec)


def file_md5(path: Path) -> str | None:
    try:
        return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    except OSError:
        return None


def ring_md5s(processes: list[ProcessStatus]) -> dict[str, dict[str, str | None]]:
    """``{ring: {reader: md5}}``, a reader being a node ("1") or the proxy; None: no file."""
    by_reader: dict[str, set[str]] = {}
    for status in processes:
        if status.ring_dir is None:
            continue
        reader = str(status.node) if status.node is not None else status.name
        if status.node is None and status.name != "proxy":
            continue  # identity reads no ring
        by_reader.setdefault(reader, set()).add(status.ring_dir)
    md5s: dict[str, dict[str, str | None]] = {}
    cache: dict[Path, str | None] = {}
    for ring in STORAGE_SERVICES:
        seen: dict[str, str | None] = {}
        for reader, directories in sorted(by_reader.items()):
            for directory in sorted(directories):
                path = Path(directory) / f"{ring}.ring"
                if path not in cache:
                    cache[path] = file_md5(path)
                key = reader if len(directories) == 1 else f"{reader}:{directory}"
                seen[key] = cache[path]
        md5s[ring] = seen
    return md5s
