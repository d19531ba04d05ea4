"""proxy/authz.py: tempauth's decisions, with hand-made identities (no processes)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy

from identity.tokens import Identity
from proxy import infocache
from proxy.authz import PROXY_ITSELF, acl_kind, authorize, decide, is_owner
from proxy.context import IDENTITY
from proxy.paths import SwiftPath
from service.backend_client import BackendResponse

FAR = 4_000_000_000.0


def _user(account: str, user: str, *extra: str) -> Identity:
    return Identity(account, user, frozenset({account, f"{account}:{user}", *extra}), FAR)


TESTER = _user("test", "tester", "AUTH_test")  # .admin of test
TESTER3 = _user("test", "tester3")  # of test, not an admin
TESTER2 = _user("test2", "tester2", "AUTH_test2")
RESELLER = _user("admin", "admin", "AUTH_admin", ".reseller_admin")

ACCOUNT = SwiftPath("AUTH_test")
CONTAINER = SwiftPath("AUTH_test", "c")
OBJECT = SwiftPath("AUTH_test", "c", "o")


def _decide(identity, method, path, acl=None, referrer=None):
    return decide(identity, method, path, acl=acl, referrer=referrer)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", [CONTAINER, OBJECT])
def test_the_account_admin_may_do_anything_below_the_account(method, path) -> None:
    assert _decide(TESTER, method, path) is None
    assert is_owner(TESTER, method, path)


def test_the_account_admin_may_not_put_or_delete_the_account() -> None:
    for method in ("GET", "HEAD", "POST"):
        assert _decide(TESTER, method, ACCOUNT) is None
    for method in ("PUT", "DELETE"):
        assert _decide(TESTER, method, ACCOUNT) == 403
        assert not is_owner(TESTER, method, ACCOUNT)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE"])
def test_the_reseller_admin_may_do_anything(method) -> None:
    for path in (ACCOUNT, CONTAINER, OBJECT, SwiftPath("AUTH_other")):
        assert _decide(RESELLER, method, path) is None


def test_the_reseller_admin_does_not_own_dot_accounts_or_the_bare_prefix() -> None:
    assert _decide(RESELLER, "GET", SwiftPath("AUTH_.expiring")) == 403
    assert _decide(RESELLER, "GET", SwiftPath("AUTH_")) == 403


def test_accounts_outside_the_reseller_prefix_are_denied() -> None:
    assert _decide(RESELLER, "GET", SwiftPath("test")) == 403
    assert _decide(None, "GET", SwiftPath("test", "c", "o"), acl=".r:*") == 401


@pytest.mark.parametrize("path", [ACCOUNT, CONTAINER, OBJECT])
@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE", "HEAD"])
def test_others_without_an_acl_are_denied(path, method) -> None:
    assert _decide(None, method, path) == 401
    assert _decide(TESTER2, method, path) == 403
    assert _decide(TESTER3, method, path) == 403  # same account, not an admin


def test_group_acls() -> None:
    for acl in ("test2:tester2", "test2", "other,test2:tester2"):
        assert _decide(TESTER2, "GET", OBJECT, acl=acl) is None
        assert _decide(TESTER2, "GET", CONTAINER, acl=acl) is None
    assert _decide(TESTER2, "GET", OBJECT, acl="test2:someone") == 403
    assert _decide(TESTER3, "PUT", OBJECT, acl="test:tester3") is None
    assert _decide(None, "GET", OBJECT, acl="test2") == 401


def test_referrer_acls() -> None:
    assert _decide(None, "GET", OBJECT, acl=".r:*") is None
    assert _decide(TESTER2, "GET", OBJECT, acl=".r:*") is None
    # A listing needs .rlistings besides a referrer rule that matches.
    assert _decide(None, "GET", CONTAINER, acl=".r:*") == 401
    assert _decide(TESTER2, "GET", CONTAINER, acl=".r:*") == 403
    assert _decide(None, "GET", CONTAINER, acl=".r:*,.rlistings") is None
    assert _decide(None, "GET", CONTAINER, acl=".rlistings") == 401
    site = "http://www.example.com/page"
    assert _decide(None, "GET", OBJECT, acl=".r:.example.com", referrer=site) is None
    assert _decide(None, "GET", OBJECT, acl=".r:.example.com") == 401
    denied = ".r:*,.r:-www.example.com"
    assert _decide(None, "GET", OBJECT, acl=denied, referrer=site) == 401


def test_options_is_let_through() -> None:
    assert _decide(None, "OPTIONS", CONTAINER) is None
    assert _decide(None, "OPTIONS", OBJECT) is None


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", ACCOUNT, None),
        ("POST", ACCOUNT, None),
        ("GET", CONTAINER, "read"),
        ("HEAD", CONTAINER, "read"),
        ("PUT", CONTAINER, None),
        ("POST", CONTAINER, None),
        ("DELETE", CONTAINER, None),
        ("GET", OBJECT, "read"),
        ("HEAD", OBJECT, "read"),
        ("PUT", OBJECT, "write"),
        ("POST", OBJECT, "write"),
        ("DELETE", OBJECT, "write"),
        ("COPY", OBJECT, "write"),
    ],
)
def test_acl_kind(method, path, kind) -> None:
    assert acl_kind(method, path) == kind


def test_no_reseller_prefix_means_every_account() -> None:
    tester = _user("test", "tester", "test")
    path = SwiftPath("test", "c")
    assert decide(tester, "PUT", path, acl=None, referrer=None, reseller_prefix="") is None


# -- authorize(): the ACL looked up through the info cache -----------------------------------


class _Ring:
    def get_part(self, *names: str) -> int:
        return 7


class _Backend:
    """Stands in for backend.first_response: the container HEADs answered, counted."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers
        self.heads = 0

    async def first_response(self, proxy, ring, part, method, path_for_node, headers):
        self.heads += 1
        await asyncio.sleep(0)
        if self.status == 0:
            return None
        return BackendResponse(self.status, CIMultiDictProxy(CIMultiDict(self.headers)), b"")


def _proxy() -> Any:
    config = SimpleNamespace(info_cache_ttl_s=5.0, allow_account_autocreate=True)
    return SimpleNamespace(
        config=config,
        container_ring=_Ring(),
        account_ring=_Ring(),
        tokens=SimpleNamespace(prefix="AUTH_tk"),
        info_cache={},
    )


def _request(method: str, path: str, identity: Identity | None, **headers: str) -> web.Request:
    request = make_mocked_request(method, path, headers=CIMultiDict(headers))
    request[IDENTITY] = identity
    return request


@pytest.fixture
def container_acls(monkeypatch: pytest.MonkeyPatch) -> _Backend:
    fake = _Backend(204, {"X-Container-Read": ".r:*", "X-Container-Write": "test2:tester2"})
    monkeypatch.setattr(infocache.backend, "first_response", fake.first_response)
    return fake


def _authorize(proxy: Any, request: web.Request, path: SwiftPath) -> int | None:
    async def run() -> int | None:
        try:
            await authorize(request, proxy, path)
        except web.HTTPException as exc:
            return exc.status
        return None

    return asyncio.run(run())


def test_authorize_owner_needs_no_container_info(container_acls: _Backend) -> None:
    proxy = _proxy()
    assert _authorize(proxy, _request("PUT", "/v1/AUTH_test/c/o", TESTER), OBJECT) is None
    assert container_acls.heads == 0


def test_authorize_reads_the_acls_once(container_acls: _Backend) -> None:
    proxy = _proxy()
    assert _authorize(proxy, _request("GET", "/v1/AUTH_test/c/o", None), OBJECT) is None
    assert _authorize(proxy, _request("PUT", "/v1/AUTH_test/c/o", None), OBJECT) == 401
    assert _authorize(proxy, _request("PUT", "/v1/AUTH_test/c/o", TESTER2), OBJECT) is None
    assert _authorize(proxy, _request("DELETE", "/v1/AUTH_test/c/o", TESTER3), OBJECT) == 403
    assert _authorize(proxy, _request("GET", "/v1/AUTH_test/c", None), CONTAINER) == 401
    assert container_acls.heads == 1  # cached
    infocache.invalidate(proxy, "AUTH_test", "c")
    assert _authorize(proxy, _request("GET", "/v1/AUTH_test/c/o", None), OBJECT) is None
    assert container_acls.heads == 2


def test_authorize_container_writes_need_no_acl(container_acls: _Backend) -> None:
    proxy = _proxy()
    for method in ("PUT", "POST", "DELETE"):
        request = _request(method, "/v1/AUTH_test/c", TESTER2)
        assert _authorize(proxy, request, CONTAINER) == 403
    assert _authorize(proxy, _request("GET", "/v1/AUTH_test", TESTER2), ACCOUNT) == 403
    assert container_acls.heads == 0


def test_a_401_names_the_realm(container_acls: _Backend) -> None:
    async def run() -> web.HTTPException:
        with pytest.raises(web.HTTPUnauthorized) as info:
            await authorize(_request("GET", "/v1/AUTH_test", None), _proxy(), ACCOUNT)
        return info.value

    assert asyncio.run(run()).headers["Www-Authenticate"] == 'Swift realm="AUTH_test"'


def test_a_missing_container_grants_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Backend(404, {})
    monkeypatch.setattr(infocache.backend, "first_response", fake.first_response)
    proxy = _proxy()
    assert _authorize(proxy, _request("GET", "/v1/AUTH_test/c/o", None), OBJECT) == 401
    assert _authorize(proxy, _request("GET", "/v1/AUTH_test/c/o", TESTER2), OBJECT) == 403
    assert fake.heads == 1  # a 404 is cached too (for a tenth of the TTL)


def test_no_answer_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Backend(0, {})
    monkeypatch.setattr(infocache.backend, "first_response", fake.first_response)
    proxy = _proxy()
    for _ in range(2):
        assert _authorize(proxy, _request("GET", "/v1/AUTH_test/c/o", None), OBJECT) == 401
    assert fake.heads == 2
    assert proxy.info_cache == {}


def test_concurrent_misses_share_one_head(container_acls: _Backend) -> None:
    proxy = _proxy()

    async def run() -> list[infocache.ContainerInfo]:
        calls = [infocache.get_container_info(proxy, "AUTH_test", "c") for _ in range(5)]
        return await asyncio.gather(*calls)

    infos = asyncio.run(run())
    assert container_acls.heads == 1
    assert {info.read_acl for info in infos} == {".r:*"}


def test_the_proxy_itself_owns_hidden_accounts_only() -> None:
    registry = SwiftPath(".s3", "buckets", "name")
    assert decide(PROXY_ITSELF, "PUT", registry, acl=None, referrer=None) is None
    assert decide(PROXY_ITSELF, "GET", SwiftPath("AUTH_test", "c"), acl=None, referrer=None) == 403
    # A token's identity with the same fields is another object: never the proxy's.
    lookalike = Identity(
        account=PROXY_ITSELF.account,
        user=PROXY_ITSELF.user,
        groups=PROXY_ITSELF.groups,
        expires_at=PROXY_ITSELF.expires_at,
    )
    assert lookalike == PROXY_ITSELF
    assert decide(lookalike, "PUT", registry, acl=None, referrer=None) == 403
