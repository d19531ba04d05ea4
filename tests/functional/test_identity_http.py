"""The identity service over HTTP, as a real process (`torus serve identity`) on a loopback port.

One server (two workers sharing the port) serves the module.  Its tokens are checked here the
way a proxy checks them: a ``TokenCodec`` built from the same config, with no call to identity.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_process import REPO_ROOT, ServerProcess
from swiftclient import client as swiftclient

from identity.config import IdentityConfig
from identity.tokens import TokenCodec
from identity.users import TEST_USERS

TOKEN_SECRET = "functional-identity-token-secret"
TTL_S = 600


def write_identity_config(path: Path, options: Mapping[str, Any]) -> None:
    """The TOML for ``[identity]``, its users as the sub-table ``[identity.users]``."""
    lines = ["[cluster]", 'hash_path_secret = "functional-test-secret"', "", "[identity]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    lines += ["", "[identity.users]"]
    lines += [f"{json.dumps(name)} = {json.dumps(entry)}" for name, entry in TEST_USERS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess("identity", tmp_path_factory.mktemp("identity"))
    # ServerProcess writes the storage servers' devices and mount_check, which [identity] does
    # not have; this server's own file replaces it before the start.
    write_identity_config(
        server.config_path,
        {
            "bind_ip": "127.0.0.1",
            "bind_port": server.port,
            "workers": 2,
            "shutdown_grace_s": 2.0,
            "token_secret": TOKEN_SECRET,
            "token_ttl_s": TTL_S,
        },
    )
    server.start()
    yield server
    assert server.stop() == 0
    print(f"--- identity server log ---\n{server.log()}")


@pytest.fixture(scope="module")
def proxy_codec() -> TokenCodec:
    """What a proxy builds from the shared [identity] table."""
    return TokenCodec.from_config(IdentityConfig(token_secret=TOKEN_SECRET, token_ttl_s=TTL_S))


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def get(server: ServerProcess, path: str, headers: Mapping[str, str]) -> Reply:
    conn = server.connection()
    try:
        conn.request("GET", path, headers=dict(headers))
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def test_v1_0_token_validates_without_asking_identity(
    identity: ServerProcess, proxy_codec: TokenCodec
) -> None:
    before = time.time()
    reply = get(identity, "/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    assert reply.status == 200, reply
    token = reply.headers["X-Auth-Token"]
    assert reply.headers["X-Storage-Token"] == token
    assert reply.headers["X-Storage-Url"] == f"http://127.0.0.1:{identity.port}/v1/AUTH_test"
    assert TTL_S - 5 <= int(reply.headers["X-Auth-Token-Expires"]) <= TTL_S
    found = proxy_codec.validate(token)
    assert found is not None
    assert (found.account, found.user) == ("test", "tester")
    assert found.groups == {"test", "test:tester", "AUTH_test"}
    assert before + TTL_S - 5 <= found.expires_at <= time.time() + TTL_S
    other_secret = TokenCodec("some-other-secret-entirely", TTL_S)
    assert other_secret.validate(token) is None


def test_every_worker_issues_tokens_the_proxy_accepts(
    identity: ServerProcess, proxy_codec: TokenCodec
) -> None:
    headers = {"X-Storage-User": "test2:tester2", "X-Storage-Pass": "testing2"}
    for _ in range(8):  # new connections: the kernel spreads them over both workers
        reply = get(identity, "/auth/v1.0", headers)
        found = proxy_codec.validate(reply.headers["X-Auth-Token"])
        assert found is not None and found.is_account_admin("AUTH_test2")


def test_the_account_path_and_a_host_name(identity: ServerProcess) -> None:
    reply = get(
        identity,
        "/auth/v1/test/auth",
        {"X-Storage-User": "tester3", "X-Storage-Pass": "testing3", "Host": "saio:8080"},
    )
    assert reply.status == 200
    assert reply.headers["X-Storage-Url"] == "http://saio:8080/v1/AUTH_test"


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "wrong"}, 401),
        ("/auth/v1.0", {"X-Auth-User": "test:ghost", "X-Auth-Key": "testing"}, 401),
        ("/auth/v1/test/auth", {"X-Auth-User": "test2:tester2", "X-Auth-Key": "testing2"}, 401),
        ("/auth/v1.0", {"X-Auth-User": "test:tester"}, 400),
        ("/auth/v1.0", {"X-Auth-Key": "testing"}, 400),
        ("/auth/v1.0", {"X-Auth-User": "tester", "X-Auth-Key": "testing"}, 400),
    ],
)
def test_refusals(identity: ServerProcess, path: str, headers: dict[str, str], status: int) -> None:
    reply = get(identity, path, headers)
    assert reply.status == status
    assert reply.headers["X-Auth-Token"] is None
    if status == 401:
        assert reply.headers["Www-Authenticate"].startswith("Swift realm=")


def test_healthcheck(identity: ServerProcess) -> None:
    reply = get(identity, "/healthcheck", {})
    assert (reply.status, reply.body) == (200, b"OK")


def test_python_swiftclient_authenticates(identity: ServerProcess, proxy_codec: TokenCodec) -> None:
    auth_url = f"http://127.0.0.1:{identity.port}/auth/v1.0"
    url, token = swiftclient.get_auth(auth_url, "admin:admin", "admin")
    assert url == f"http://127.0.0.1:{identity.port}/v1/AUTH_admin"
    found = proxy_codec.validate(token)
    assert found is not None and found.is_reseller_admin
    with pytest.raises(swiftclient.ClientException) as refused:
        swiftclient.get_auth(auth_url, "admin:admin", "nope")
    assert refused.value.http_status == 401


def test_a_config_without_a_secret_does_not_start(tmp_path: Path) -> None:
    config = tmp_path / "identity.toml"
    config.write_text('[cluster]\nhash_path_secret = "s"\n\n[identity]\nbind_port = 0\n')
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "serve", "identity", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "[identity] token_secret is required" in done.stderr
