"""Where an all-in-one cluster keeps everything, and which ports it uses by default.

One data directory holds the whole cluster (docs/design/all-in-one.md)::

    DATA/torus.toml          the config every server reads (written once, then reused)
    DATA/rings/              object, container and account .builder and .ring files
    DATA/nodeN/dN/           storage node N's one device (N = 1..4)
    DATA/log/NAME.log        each server's output
    DATA/run/NAME.pid        each running server's and daemon's pid (and `up`'s own, in the
                         foreground); daemons: <daemon>-N, e.g. object-updater-N
    DATA/run/cluster.json    what runs: endpoint, auth URL, users, servers, ports

Default ports: the proxy on 8080, identity on 5000 (Keystone's), storage node N's object,
container and account servers on 63N0, 63N1, 63N2.  Swift's SAIO uses 62N0..62N2, and the
benchmarks run one beside Torus on the same machine.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
DEFAULT_DATA_DIR = "./data"
NODES = 4
PART_POWER = 10
REPLICAS = 3.0
MIN_PART_HOURS = 1  # as Swift's SAIO: a developer may rebalance again soon
STORAGE_SERVICES = ("object", "container", "account")  # each also names its ring
# The background daemons each storage node runs on its devices (`torus serve object-updater`),
# and the pause between their passes.
NODE_DAEMONS = (
    "object-updater",
    "container-updater",
    "object-auditor",
    "container-auditor",
    "account-auditor",
)
UPDATER_INTERVAL_S = 15.0  # a developer's listings catch up within seconds (Swift: 300)
AUDITOR_INTERVAL_S = 300.0  # a pass is throttled to 10 MB/s anyway; no need to start it often
REPLICATOR_INTERVAL_S = 30.0  # Swift's run_pause
REAPER_INTERVAL_S = 60.0  # a developer's deleted account empties within a minute (Swift: 3600)
EXPIRER_INTERVAL_S = 15.0  # an expired object leaves listings within seconds (Swift: 300)
# Daemons that find their own devices in a ring, by this node's port for that ring (Swift's
# bind_ip/bind_port matching): the ring each reads.  Apart from NODE_DAEMONS because they need
# that one setting more.
NODE_RING_DAEMONS = {
    "object-replicator": "object",
    "container-replicator": "container",
    "account-replicator": "account",
    "object-expirer": "container",  # its queue lives in the container servers
    "account-reaper": "account",
}
ALL_NODE_DAEMONS = (*NODE_DAEMONS, *NODE_RING_DAEMONS)
DAEMON_INTERVALS_S = {
    "object-updater": UPDATER_INTERVAL_S,
    "container-updater": UPDATER_INTERVAL_S,
    "object-auditor": AUDITOR_INTERVAL_S,
    "container-auditor": AUDITOR_INTERVAL_S,
    "account-auditor": AUDITOR_INTERVAL_S,
    "object-replicator": REPLICATOR_INTERVAL_S,
    "container-replicator": REPLICATOR_INTERVAL_S,
    "account-replicator": REPLICATOR_INTERVAL_S,
    "object-expirer": EXPIRER_INTERVAL_S,
    "account-reaper": REAPER_INTERVAL_S,
}
DEFAULT_PROXY_PORT = 8080
DEFAULT_IDENTITY_PORT = 5000
STORAGE_BASE_PORT = 6300
PROXY_WORKERS = 2  # one per core of the machine the project is developed on
SHUTDOWN_GRACE_S = 10.0  # each server's in-flight requests get this long on SIGTERM
STOP_GRACE_S = 15.0  # then `down` (or a stopping `up`) sends SIGKILL to what is left


def storage_port(service: str, node: int) -> int:
    """The default port of ``service`` on storage node ``node``: 6310 is node 1's object server."""
    return STORAGE_BASE_PORT + 10 * node + STORAGE_SERVICES.index(service)


def device_name(node: int) -> str:
    return f"d{node}"


def free_port() -> int:
    """A loopback port nobody listens on now (another process may take it before we do)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """Whether something is bound to ``LOOPBACK:port`` (or to every address on it).

    Binds without SO_REUSEPORT: the servers bind with it, so two of them would share a port
    silently; a plain bind fails if anything holds the port.  SO_REUSEADDR only ignores
    connections in TIME_WAIT left by a server that just stopped.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


@dataclass(frozen=True)
class DataDir:
    """The paths of one all-in-one cluster's data directory (absolute)."""

    root: Path

    @classmethod
    def at(cls, path: str | Path) -> DataDir:
        return cls(Path(path).resolve())

    @property
    def config(self) -> Path:
        return self.root / "torus.toml"

    @property
    def rings(self) -> Path:
        return self.root / "rings"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def cluster_file(self) -> Path:
        return self.run / "cluster.json"

    @property
    def lock_file(self) -> Path:
        return self.run / "up.lock"

    def node(self, node: int) -> Path:
        """Storage node ``node``'s devices directory (its servers' ``devices``)."""
        return self.root / f"node{node}"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def make(self) -> None:
        for path in (self.root, self.rings, self.run, self.logs):
            path.mkdir(parents=True, exist_ok=True)
