"""identity.v1 in-process: tempauth's GET /auth/v1.0 and its variants, 200/400/401.

Each test runs its own event loop (asyncio.run) with aiohttp's TestServer/TestClient.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from identity.config import IdentityConfig
from identity.server import build_app
from identity.tokens import Identity, TokenCodec
from identity.users import TEST_USERS, UserDirectory
from identity.v1 import add_v1_routes
from service.config import ClusterConfig

T0 = 1_700_000_000.0
SECRET = "v1-unit-token-secret"
CONFIG = IdentityConfig(token_secret=SECRET, token_ttl_s=3600, users=TEST_USERS)
HOST = "swift.example.com:8080"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: str


def fetch(
    path: str,
    headers: Mapping[str, str],
    *,
    config: IdentityConfig = CONFIG,
    method: str = "GET",
    app: Callable[[], web.Application] | None = None,
) -> Reply:
    async def main() -> Reply:
        served = (
            app() if app is not None else build_app(config, ClusterConfig("x"), clock=lambda: T0)
        )
        async with TestClient(TestServer(served)) as client:
            sent = {"Host": HOST, **headers}
            async with client.request(method, path, headers=sent) as response:
                return Reply(response.status, response.headers.copy(), await response.text())

    return asyncio.run(main())


def identity_of(reply: Reply, config: IdentityConfig = CONFIG) -> Identity | None:
    """What a proxy sharing the config makes of the token: no call to identity."""
    assert reply.status == 200, reply
    return TokenCodec.from_config(config, clock=lambda: T0).validate(reply.headers["X-Auth-Token"])


def test_auth_v1_0_gives_a_token_a_storage_url_and_its_lifetime() -> None:
    reply = fetch("/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    assert reply.status == 200
    token = reply.headers["X-Auth-Token"]
    assert token.startswith("AUTH_tk") and reply.headers["X-Storage-Token"] == token
    assert reply.headers["X-Storage-Url"] == f"http://{HOST}/v1/AUTH_test"
    assert reply.headers["X-Auth-Token-Expires"] == "3600"
    assert reply.headers["Cache-Control"] == "no-store"
    assert identity_of(reply) == Identity(
        "test", "tester", frozenset({"test", "test:tester", "AUTH_test"}), T0 + 3600
    )


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/auth/v1.0", {"X-Storage-User": "test:tester", "X-Storage-Pass": "testing"}),
        ("/auth/v1.0", {"X-Auth-User": "test:tester", "X-Storage-Pass": "testing"}),
        ("/auth/v1.0", {"X-Storage-User": "test:tester", "X-Auth-Key": "testing"}),
        ("/auth/v1.0/", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}),
        ("/auth/auth", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}),
        ("/auth/v1/test/auth", {"X-Storage-User": "tester", "X-Storage-Pass": "testing"}),
        ("/auth/v1/test/auth", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}),
        ("/auth/v1/test/auth", {"X-Storage-User": "tester", "X-Auth-Key": "testing"}),
        # Header names are case-insensitive.
        ("/auth/v1.0", {"x-auth-user": "test:tester", "X-AUTH-KEY": "testing"}),
    ],
)
def test_tempauths_header_and_path_variants(path: str, headers: dict[str, str]) -> None:
    reply = fetch(path, headers)
    assert reply.status == 200, reply
    assert reply.headers["X-Storage-Url"] == f"http://{HOST}/v1/AUTH_test"
    identity = identity_of(reply)
    assert identity is not None and (identity.account, identity.user) == ("test", "tester")


def test_x_auth_headers_win_over_x_storage_headers_on_v1_0() -> None:
    headers = {
        "X-Auth-User": "test:tester3",
        "X-Storage-User": "test:tester",
        "X-Auth-Key": "testing3",
        "X-Storage-Pass": "testing",
    }
    identity = identity_of(fetch("/auth/v1.0", headers))
    assert identity is not None and identity.user == "tester3"


def test_x_storage_headers_win_on_the_account_path() -> None:
    headers = {
        "X-Storage-User": "tester3",
        "X-Auth-User": "test:tester",
        "X-Storage-Pass": "testing3",
        "X-Auth-Key": "testing",
    }
    identity = identity_of(fetch("/auth/v1/test/auth", headers))
    assert identity is not None and identity.user == "tester3"


def test_groups_follow_tempauth() -> None:
    tester3 = identity_of(
        fetch("/auth/v1.0", {"X-Auth-User": "test:tester3", "X-Auth-Key": "testing3"})
    )
    assert tester3 is not None and tester3.groups == {"test", "test:tester3"}
    assert not tester3.is_account_admin("AUTH_test") and not tester3.is_reseller_admin
    admin = identity_of(fetch("/auth/v1.0", {"X-Auth-User": "admin:admin", "X-Auth-Key": "admin"}))
    assert admin is not None and admin.is_reseller_admin and admin.is_account_admin("AUTH_admin")
    other = fetch("/auth/v1.0", {"X-Auth-User": "test2:tester2", "X-Auth-Key": "testing2"})
    assert other.headers["X-Storage-Url"] == f"http://{HOST}/v1/AUTH_test2"
    identity = identity_of(other)
    assert identity is not None and identity.is_account_admin("AUTH_test2")
    assert not identity.is_account_admin("AUTH_test")


@pytest.mark.parametrize(
    ("path", "headers", "realm"),
    [
        ("/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "wrong"}, "test"),
        ("/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing2"}, "test"),
        ("/auth/v1.0", {"X-Auth-User": "test:nobody", "X-Auth-Key": "testing"}, "test"),
        ("/auth/v1.0", {"X-Auth-User": "nope:tester", "X-Auth-Key": "testing"}, "nope"),
        ("/auth/v1.0", {"X-Auth-User": 'q"uote:x', "X-Auth-Key": "k"}, 'q\\"uote'),
        ("/auth/v1/test/auth", {"X-Storage-User": "tester", "X-Storage-Pass": "bad"}, "test"),
        ("/auth/v1/test/auth", {"X-Auth-User": "test2:tester2", "X-Auth-Key": "testing2"}, "test"),
        (
            "/auth/v1/test2/auth",
            {"X-Storage-User": "tester3", "X-Storage-Pass": "testing3"},
            "test2",
        ),
    ],
)
def test_a_wrong_key_or_unknown_user_is_401(path: str, headers: dict[str, str], realm: str) -> None:
    reply = fetch(path, headers)
    assert reply.status == 401
    assert reply.headers["Www-Authenticate"] == f'Swift realm="{realm}"'
    assert "X-Auth-Token" not in reply.headers and "X-Storage-Url" not in reply.headers


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/auth/v1.0", {}),
        ("/auth/v1.0", {"X-Auth-Key": "testing"}),
        ("/auth/v1.0", {"X-Auth-User": "test:tester"}),
        ("/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": ""}),
        ("/auth/v1.0", {"X-Auth-User": "tester", "X-Auth-Key": "testing"}),
        ("/auth/v1.0", {"X-Storage-User": "tester", "X-Storage-Pass": "testing"}),
        ("/auth/v1.0", {"X-Auth-User": ":tester", "X-Auth-Key": "testing"}),
        ("/auth/v1.0", {"X-Auth-User": "test:", "X-Auth-Key": "testing"}),
        ("/auth/auth", {"X-Auth-User": "tester", "X-Auth-Key": "testing"}),
        ("/auth/v1/test/auth", {"X-Storage-Pass": "testing"}),
        ("/auth/v1/test/auth", {"X-Storage-User": "tester"}),
        ("/auth/v1/test/auth", {"X-Auth-User": "tester", "X-Auth-Key": "testing"}),
    ],
)
def test_missing_or_malformed_credentials_are_400(path: str, headers: dict[str, str]) -> None:
    reply = fetch(path, headers)
    assert reply.status == 400, reply
    assert reply.body.startswith("Bad Request: ")
    assert "X-Auth-Token" not in reply.headers


def test_only_get_and_head_are_served() -> None:
    headers = {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}
    assert fetch("/auth/v1.0", headers, method="POST").status == 405
    assert fetch("/auth/v1.0", headers, method="HEAD").status == 200
    assert fetch("/auth/v2.0", headers).status == 404


def test_a_configured_storage_url_base_wins_over_host() -> None:
    config = IdentityConfig(
        token_secret=SECRET, users=TEST_USERS, storage_url_base="https://swift.example.org/s/"
    )
    reply = fetch(
        "/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}, config=config
    )
    assert reply.headers["X-Storage-Url"] == "https://swift.example.org/s/v1/AUTH_test"
    assert reply.headers["X-Auth-Token-Expires"] == "86400"


def test_the_reseller_prefix_shapes_url_token_and_groups() -> None:
    config = IdentityConfig(token_secret=SECRET, users=TEST_USERS, reseller_prefix="KEY_")
    reply = fetch(
        "/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}, config=config
    )
    assert reply.headers["X-Storage-Url"] == f"http://{HOST}/v1/KEY_test"
    assert reply.headers["X-Auth-Token"].startswith("KEY_tk")
    identity = identity_of(reply, config)
    assert identity is not None and identity.is_account_admin("KEY_test")
    assert identity_of(reply, CONFIG) is None  # an AUTH_ proxy does not take it


def test_account_names_are_quoted_in_the_storage_url() -> None:
    config = IdentityConfig(token_secret=SECRET, users={"my acct%:ann": "k .admin"})
    reply = fetch("/auth/v1.0", {"X-Auth-User": "my acct%:ann", "X-Auth-Key": "k"}, config=config)
    assert reply.headers["X-Storage-Url"] == f"http://{HOST}/v1/AUTH_my%20acct%25"


def test_healthcheck() -> None:
    reply = fetch("/healthcheck", {})
    assert (reply.status, reply.body) == (200, "OK")


def test_the_routes_mount_on_another_app_before_its_catch_all() -> None:
    """As the proxy mounts them: its own routes stay its own."""

    async def catch_all(request: web.Request) -> web.Response:
        return web.Response(status=418, text="proxy")

    def proxy_app() -> web.Application:
        app = web.Application()
        directory = UserDirectory.from_config(TEST_USERS)
        add_v1_routes(app, directory, TokenCodec.from_config(CONFIG), CONFIG)
        app.router.add_route("*", "/{path:.*}", catch_all)
        return app

    reply = fetch(
        "/auth/v1.0", {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}, app=proxy_app
    )
    assert reply.status == 200
    assert TokenCodec.from_config(CONFIG).validate(reply.headers["X-Auth-Token"]) is not None
    assert fetch("/v1/AUTH_test", {}, app=proxy_app).status == 418
