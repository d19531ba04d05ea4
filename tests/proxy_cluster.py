"""A small cluster as real processes, with the proxy in front, for proxy tests.

Four object servers (one device each: a PUT has a handoff to go to when a primary is down),
one container server and one account server (three devices each), 3-replica rings built
with ``ring.builder.RingBuilder``, and ``torus serve proxy`` with tempauth-style users
(``test:tester`` / ``testing``, an admin of ``AUTH_test``).  Every process is
tests/server_process.py's ``ServerProcess``, so a test can kill or stop one and start it
again.  The lead may fold this into tests/aio_cluster.py later.

    with ProxyCluster(tmp_path) as cluster:
        token, url = cluster.auth()
        ...
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from server_process import ServerProcess, _toml_value

from ring import ringfile
from ring.builder import RingBuilder

SECRET = "proxy-cluster-test-secret"
TOKEN_SECRET = "proxy-cluster-token-secret-0123456789"
USERS = {"test:tester": "testing .admin", "test2:tester2": "testing2 .admin"}
PART_POWER = 6
REPLICAS = 3
OBJECT_NODES = 4
DB_DEVICES = ("sda", "sdb", "sdc")


class ProxyCluster:
    def __init__(
        self,
        root: Path,
        *,
        proxy_options: Mapping[str, Any] | None = None,
        object_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.ring_dir = root / "rings"
        self.ring_dir.mkdir(parents=True, exist_ok=True)
        common = {"shutdown_grace_s": 2.0}
        self.object_servers = [
            ServerProcess(
                "object",
                root / f"object-{i}",
                options={**common, **(object_options or {})},
                secret=SECRET,
            )
            for i in range(1, OBJECT_NODES + 1)
        ]
        for i, server in enumerate(self.object_servers, 1):
            (server.devices / f"d{i}").mkdir(exist_ok=True)
        self.container_server = ServerProcess(
            "container", root / "container", options=common, secret=SECRET
        )
        self.account_server = ServerProcess(
            "account", root / "account", options=common, secret=SECRET
        )
        for server in (self.container_server, self.account_server):
            for device in DB_DEVICES:
                (server.devices / device).mkdir(exist_ok=True)
        (root / "proxy").mkdir(exist_ok=True)
        self.proxy = ServerProcess("proxy", root / "proxy", options={}, secret=SECRET)
        self._write_proxy_config(proxy_options or {})
        self._build_rings()

    # -- setup ---------------------------------------------------------------------------

    def _write_proxy_config(self, options: Mapping[str, Any]) -> None:
        proxy = {
            "bind_ip": "127.0.0.1",
            "bind_port": self.proxy.port,
            "shutdown_grace_s": 2.0,
            **options,
        }
        lines = [
            "[cluster]",
            f"hash_path_secret = {_toml_value(SECRET)}",
            f"ring_dir = {_toml_value(str(self.ring_dir))}",
            "",
            "[proxy]",
            *(f"{k} = {_toml_value(v)}" for k, v in proxy.items()),
            "",
            "[identity]",
            f"token_secret = {_toml_value(TOKEN_SECRET)}",
            "",
            "[identity.users]",
            *(f'"{k}" = {_toml_value(v)}' for k, v in USERS.items()),
        ]
        self.proxy.config_path.write_text("\n".join(lines) + "\n")

    def _build_rings(self) -> None:
        object_devices = [
            (i, server.port, f"d{i}") for i, server in enumerate(self.object_servers, 1)
        ]
        self._write_ring("object", object_devices)
        for name, server in (
            ("container", self.container_server),
            ("account", self.account_server),
        ):
            self._write_ring(name, [(i, server.port, d) for i, d in enumerate(DB_DEVICES, 1)])

    def _write_ring(self, name: str, devices: list[tuple[int, int, str]]) -> None:
        builder = RingBuilder(PART_POWER, REPLICAS, 0)
        for zone, port, device in devices:
            builder.add_dev(
                region=1, zone=zone, ip="127.0.0.1", port=port, device=device, weight=1.0
            )
        builder.rebalance(seed=1)
        ringfile.write(self.ring_dir / f"{name}.ring", builder.get_ring())

    # -- life ----------------------------------------------------------------------------

    @property
    def servers(self) -> list[ServerProcess]:
        return [*self.object_servers, self.container_server, self.account_server, self.proxy]

    def start(self) -> ProxyCluster:
        try:
            for server in self.servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> ProxyCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {s.service} {s.workdir.name} ---\n{s.log()}" for s in self.servers)

    # -- client side ---------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.endpoint}/auth/v1.0"

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

    def connection(self, timeout_s: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=timeout_s)

    def object_server_for(self, port: int) -> ServerProcess:
        return next(s for s in self.object_servers if s.port == port)

    def object_primaries(self, account: str, container: str, obj: str) -> list[ServerProcess]:
        """The object servers holding the primaries of ``/account/container/object``."""
        from ring.ring import Ring

        ring = Ring.load(self.ring_dir / "object.ring", SECRET.encode())
        _, nodes = ring.get_nodes(account, container, obj)
        return [self.object_server_for(node.port) for node in nodes]


class ThreeContainerServers(ProxyCluster):
    """ProxyCluster with three container servers (one device each) in place of one."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        common = {"shutdown_grace_s": 2.0}
        self.container_servers = [
            ServerProcess("container", root / f"container-{i}", options=common, secret=SECRET)
            for i in range(1, 4)
        ]
        for server in self.container_servers:
            (server.devices / "sda").mkdir(exist_ok=True)
        self.container_server = self.container_servers[0]
        devices = [(i, s.port, "sda") for i, s in enumerate(self.container_servers, 1)]
        self._write_ring("container", devices)

    @property
    def servers(self) -> list[ServerProcess]:
        return [*self.object_servers, *self.container_servers, self.account_server, self.proxy]


def dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@pytest.fixture(scope="module")
def proxy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyCluster]:
    """One cluster per test module (starting seven processes takes a few seconds)."""
    cluster = ProxyCluster(tmp_path_factory.mktemp("proxy-cluster"))
    with cluster:
        yield cluster
