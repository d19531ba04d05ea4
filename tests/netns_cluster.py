"""A Torus cluster whose storage hosts are network namespaces, for probe tests (root only).

Each of four hosts is a namespace with one veth and one IP (10.77.S.N/24, host N), running
its object, container and account servers on Swift's ports (6200, 6201, 6202: every host has
its own port space, as on real hosts), each as ``ip netns exec NS torus serve SERVICE``.  The
veths' other ends are ports of a bridge in the root namespace, which holds 10.77.S.100: the
proxy listens there, and the test process reaches the proxy and every host through it.  The
rings name the hosts' IPs (4 hosts, 3 replicas), so every backend call crosses the bridge.

``cut(host)`` sets the host's veth down on the bridge side: its frames are dropped, nothing
answers, so a connect to it times out (a black hole, not a refusal).  ``heal(host)`` sets it up.

Every run has its own names (``tnp<tag>`` namespaces and links, a random tag) and its own
subnet S (the first 10.77.S.0/24 no address of this machine is in, picked under a lock file),
so parallel runs do not collide.  Leaving the block tears everything down even after a
failure: every process group, then whatever is left in the namespaces, the namespaces, the
veths and the bridge.  A run killed outright (SIGKILL) leaves them behind; ``ip netns list |
grep tnp`` and ``ip link | grep tnp`` find them.

    with NetnsCluster(tmp_path) as cluster:
        token, storage_url = cluster.auth()
        cluster.cut(2)
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ring import ringfile
from ring.builder import RingBuilder
from ring.ring import Ring

REPO_ROOT = Path(__file__).resolve().parents[1]
HOSTS = 4
REPLICAS = 3
PART_POWER = 6  # 64 partitions: a replication pass over them takes well under a second
PORTS = {"object": 6200, "container": 6201, "account": 6202}  # Swift's, on every host
PROXY_OCTET = 100  # the bridge's (and the proxy's) address: 10.77.S.100
SUBNET_LOCK = Path("/run/lock/torus-netns-cluster.lock")
SECRET = "netns-cluster-secret"
TOKEN_SECRET = "netns-cluster-token-secret-0123456789"
USERS = {"test:tester": "testing .admin"}
START_TIMEOUT_S = 60.0  # thirteen interpreters starting at once on two shared cores
STOP_GRACE_S = 5.0  # then SIGKILL; the servers themselves give in-flight requests 2 s
ONCE_TIMEOUT_S = 60.0  # one replication pass on every host, all at once


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here (not root, no ``ip netns``), or None if they can."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, veths and a bridge"
    name = f"tnp{secrets.token_hex(3)}probe"
    try:
        done = _ip("netns", "add", name, check=False)
    except OSError as exc:
        return f"no `ip` command: {exc}"
    if done.returncode != 0:
        return f"`ip netns add` failed: {done.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _pick_subnet() -> int:
    """The first S with no address of this machine in 10.77.S.0/24 (call under the lock)."""
    shown = _ip("-4", "-o", "addr", "show").stdout.split()
    taken = set()
    for word in shown:
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_interface(word).ip
            if address in ipaddress.ip_network("10.77.0.0/16"):
                taken.add(address.packed[2])
    free = [s for s in range(256) if s not in taken]
    if not free:
        raise RuntimeError("every 10.77.S.0/24 is in use")
    return free[0]


@dataclass(frozen=True)
class Network:
    """The names and addresses of one run's bridge, namespaces and veths."""

    tag: str  # random, so that parallel runs differ; names stay within IFNAMSIZ (15)
    subnet: int  # S of 10.77.S.0/24

    @property
    def bridge(self) -> str:
        return f"tnp{self.tag}br"

    def namespace(self, host: int) -> str:
        return f"tnp{self.tag}h{host}"

    def veth(self, host: int) -> str:
        """The bridge's end of host ``host``'s veth (the host's end is its ``eth0``)."""
        return f"tnp{self.tag}v{host}"

    def host_ip(self, host: int) -> str:
        return f"10.77.{self.subnet}.{host}"

    @property
    def proxy_ip(self) -> str:
        return self.host_ip(PROXY_OCTET)


class NetnsCluster:
    """The cluster of the module docstring; ``start()``/``stop()``, or a ``with`` block."""

    def __init__(self, root: Path, *, proxy_options: Mapping[str, Any] | None = None) -> None:
        self.root = root
        self.ring_dir = root / "rings"
        self.config = root / "torus.toml"
        self.logs = root / "log"
        self.proxy_options = dict(proxy_options or {})
        self.net: Network | None = None
        self.proxy_port = 0
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._made_links: list[str] = []  # the bridge and the veths, as made
        self._made_namespaces: list[str] = []

    # -- the network ---------------------------------------------------------------------

    @property
    def network(self) -> Network:
        assert self.net is not None, "not started"
        return self.net

    def _make_network(self) -> None:
        tag = secrets.token_hex(3)
        SUBNET_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(SUBNET_LOCK, "a") as lock:
            # Held until the bridge has its address: a parallel run then sees S as taken.
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.net = net = Network(tag, _pick_subnet())
            _ip("link", "add", net.bridge, "type", "bridge")
            self._made_links.append(net.bridge)
            _ip("addr", "add", f"{net.proxy_ip}/24", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        for host in range(1, HOSTS + 1):
            ns, veth = net.namespace(host), net.veth(host)
            _ip("netns", "add", ns)
            self._made_namespaces.append(ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._made_links.append(veth)
            _ip("link", "set", veth, "master", net.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{net.host_ip(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, host: int) -> None:
        """Drop every frame to and from ``host``: its bridge port goes down."""
        _ip("link", "set", self.network.veth(host), "down")

    def heal(self, host: int) -> None:
        _ip("link", "set", self.network.veth(host), "up")
        for service in PORTS:
            self._wait_answering(f"{service}-{host}", self.network.host_ip(host), PORTS[service])

    # -- config and rings ----------------------------------------------------------------

    def _write_config(self) -> None:
        server = {"mount_check": False, "shutdown_grace_s": 2.0}
        proxy = {
            "bind_ip": self.network.proxy_ip,
            "bind_port": self.proxy_port,
            "workers": 1,  # one error-limit table: the test knows what the proxy has seen
            "shutdown_grace_s": 2.0,
            **self.proxy_options,
        }
        tables: dict[str, Mapping[str, Any]] = {
            "cluster": {"hash_path_secret": SECRET, "ring_dir": str(self.ring_dir)},
            "proxy": proxy,
            "identity": {"token_secret": TOKEN_SECRET},
            "identity.users": USERS,
            "object": server,
            "container": server,
            "account": server,
            # devices, bind_ip, bind_port: per host, from the environment
            "object_replicator": {"mount_check": False, "partitions_per_s": 0},
        }
        lines = []
        for name, table in tables.items():
            lines.append(f"[{name}]")
            lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in table.items()]
            lines.append("")
        self.config.write_text("\n".join(lines))

    def _build_rings(self) -> None:
        self.ring_dir.mkdir(parents=True, exist_ok=True)
        for service, port in PORTS.items():
            builder = RingBuilder(PART_POWER, REPLICAS, 0)
            for host in range(1, HOSTS + 1):
                ip = self.network.host_ip(host)
                builder.add_dev(
                    region=1, zone=host, ip=ip, port=port, device=f"d{host}", weight=1.0
                )
            builder.rebalance(seed=1)
            ringfile.write(self.ring_dir / f"{service}.ring", builder.get_ring())

    def devices(self, host: int) -> Path:
        """Host ``host``'s devices directory; its one device is ``d<host>``."""
        return self.root / f"h{host}"

    def host_env(self, host: int, table: str) -> dict[str, str]:
        """``TORUS_<TABLE>_*`` for ``table``'s process on ``host`` (the object replicator's
        bind address is the object server's: how it finds its devices in the ring)."""
        service = "object" if table == "OBJECT_REPLICATOR" else table.lower()
        return {
            f"TORUS_{table}_BIND_IP": self.network.host_ip(host),
            f"TORUS_{table}_BIND_PORT": str(PORTS[service]),
            f"TORUS_{table}_DEVICES": str(self.devices(host)),
        }

    # -- processes -----------------------------------------------------------------------

    def _argv(self, service: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "tools.cli", "serve", service, *extra]

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:
            self._procs[name] = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_clean_env(), **env},
                start_new_session=True,  # its own process group: a stop reaches its workers
            )

    def _start_servers(self) -> None:
        for host in range(1, HOSTS + 1):
            (self.devices(host) / f"d{host}").mkdir(parents=True, exist_ok=True)
            ns = ["ip", "netns", "exec", self.network.namespace(host)]
            for service in PORTS:
                env = self.host_env(host, service.upper())
                self._spawn(
                    f"{service}-{host}",
                    [*ns, *self._argv(service, "--config", str(self.config))],
                    env,
                )
        self._spawn("proxy", self._argv("proxy", "--config", str(self.config)), {})
        for host in range(1, HOSTS + 1):
            for service, port in PORTS.items():
                self._wait_answering(f"{service}-{host}", self.network.host_ip(host), port)
        self._wait_answering("proxy", self.network.proxy_ip, self.proxy_port, "/healthcheck")

    def _wait_answering(self, name: str, ip: str, port: int, path: str | None = None) -> None:
        """Until ``name`` answers HTTP (200 on ``path``, if given; any answer otherwise)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited at start:\n{self.log(name)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(ip, port, timeout=2)
                try:
                    conn.request("GET", path or "/")
                    response = conn.getresponse()
                    response.read()
                    if path is None or response.status == 200:
                        return
                finally:
                    conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer on {ip}:{port} in {START_TIMEOUT_S} s")

    def replicate_everywhere(self) -> dict[int, str]:
        """``torus serve object-replicator --once`` in every host's namespace at once, as
        each host runs its own; each host's output.  Raises if one fails or is not done in
        ONCE_TIMEOUT_S."""
        names = {host: f"object-replicator-{host}" for host in range(1, HOSTS + 1)}
        for host, name in names.items():
            (self.logs / f"{name}.log").unlink(missing_ok=True)  # this pass's output only
            argv = ["ip", "netns", "exec", self.network.namespace(host)]
            argv += self._argv("object-replicator", "--once", "--config", str(self.config))
            self._spawn(name, argv, self.host_env(host, "OBJECT_REPLICATOR"))
        deadline = time.monotonic() + ONCE_TIMEOUT_S
        failed = []
        try:
            for host, name in names.items():
                proc = self._procs[name]
                try:
                    status = proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    failed.append(f"host {host}: not done in {ONCE_TIMEOUT_S} s")
                    continue
                if status != 0 or "object-replicator pass completed" not in self.log(name):
                    failed.append(f"host {host}: exit {status}")
        finally:
            _stop_groups([self._procs.pop(name) for name in names.values()])
        outputs = {host: self.log(name) for host, name in names.items()}
        if failed:
            raise RuntimeError(
                f"object-replicator --once: {failed}\n" + "\n".join(outputs.values())
            )
        return outputs

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs_text(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)}" for name in self._procs)

    # -- life ----------------------------------------------------------------------------

    def start(self) -> NetnsCluster:
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            self._make_network()
            self.proxy_port = _free_port(self.network.proxy_ip)
            self._write_config()
            self._build_rings()
            self._start_servers()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Tear down whatever was made, each step even if an earlier one failed: processes,
        then the veths (deleting one end deletes both), the namespaces, the bridge."""
        _stop_groups(list(self._procs.values()))
        self._procs.clear()
        errors = []
        for link in reversed(self._made_links):  # the veths first, the bridge last
            done = _ip("link", "del", link, check=False)
            # A veth already gone with its namespace (the kernel removes it lazily) is fine.
            if done.returncode != 0 and "Cannot find device" not in done.stderr:
                errors.append(f"ip link del {link}: {done.stderr.strip()}")
        self._made_links.clear()
        for ns in reversed(self._made_namespaces):
            # Anything left in a namespace of this run is this run's (a worker that escaped
            # its group, say): it would keep the namespace alive after `ip netns del`.
            for pid in _ip("netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            done = _ip("netns", "del", ns, check=False)
            if done.returncode != 0:
                errors.append(f"ip netns del {ns}: {done.stderr.strip()}")
        self._made_namespaces.clear()
        if errors:
            raise RuntimeError("netns cluster teardown: " + "; ".join(errors))

    def __enter__(self) -> NetnsCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        except RuntimeError:
            if exc is None:  # a teardown failure must not hide the test's own
                raise

    # -- client side ---------------------------------------------------------------------

    def connection(self, timeout_s: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.network.proxy_ip, self.proxy_port, timeout=timeout_s)

    def host_connection(self, host: int, timeout_s: float = 10.0) -> http.client.HTTPConnection:
        """To host ``host``'s object server, directly."""
        ip = self.network.host_ip(host)
        return http.client.HTTPConnection(ip, PORTS["object"], timeout=timeout_s)

    def auth(self, user: str = "test:tester", key: str = "testing") -> tuple[str, str]:
        """(token, storage URL) from the proxy's v1 auth."""
        conn = self.connection()
        try:
            conn.request("GET", "/auth/v1.0", headers={"X-Auth-User": user, "X-Auth-Key": key})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            return response.headers["X-Auth-Token"], response.headers["X-Storage-Url"]
        finally:
            conn.close()

    def nodes(
        self, ring_name: str, account: str, container: str | None = None, obj: str | None = None
    ) -> tuple[int, list[int]]:
        """(partition, the hosts of its primaries in replica order) of a name in a ring."""
        ring = Ring.load(self.ring_dir / f"{ring_name}.ring", SECRET.encode())
        partition, nodes = ring.get_nodes(account, container, obj)
        hosts = {self.network.host_ip(host): host for host in range(1, HOSTS + 1)}
        return partition, [hosts[node.ip] for node in nodes]

    def object_nodes(self, account: str, container: str, obj: str) -> tuple[int, list[int]]:
        return self.nodes("object", account, container, obj)


def _stop_groups(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process group, wait up to STOP_GRACE_S, SIGKILL what is left."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        # Only a group whose leader still runs: a reaped leader's pid may be reused.  Each
        # server here runs one process (workers = 1), and what a namespace still holds is
        # killed when it is torn down.
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10.0)


def _clean_env() -> dict[str, str]:
    """This environment without TORUS_* overrides, which would reach every server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TORUS_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() else f'"{key}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
