"""Accounts, containers, ACLs, constraints and /info through the proxy, end to end.

Against the session's all-in-one cluster (tests/aio_cluster.py: 4 storage nodes, 3
replicas, a proxy with two workers), with plain HTTP (``requests``) so that every status and
header is seen as a client sees it.  Each test uses containers of its own (``new_name``).

The proxy's info cache is per worker (proxy/infocache.py): a test that changes an ACL and
then relies on another user seeing the change would depend on which worker answers; these
tests set ACLs before any other user looks, or wait out the cache.
"""

from __future__ import annotations

import os
import signal
import time
import tomllib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from aio_cluster import AioCluster, running_cluster

from ring.ring import Ring

TIMEOUT_S = 30


@dataclass(frozen=True)
class Client:
    """One user's token and storage URL."""

    endpoint: str
    token: str | None
    url: str  # the storage URL: <endpoint>/v1/AUTH_<account>

    def request(self, method: str, path: str = "", **kwargs) -> requests.Response:
        """``method`` on the storage URL + ``path`` (already quoted) with the token."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token is not None:
            headers.setdefault("X-Auth-Token", self.token)
        return requests.request(
            method, self.url + path, headers=headers, timeout=TIMEOUT_S, **kwargs
        )

    def on(self, account: str) -> Client:
        """The same token against another account's URL."""
        return Client(self.endpoint, self.token, f"{self.endpoint}/v1/{account}")


def login(cluster: AioCluster, user: str) -> Client:
    response = requests.get(
        cluster.auth_url,
        headers={"X-Auth-User": user, "X-Auth-Key": cluster.users[user]},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    return Client(
        cluster.endpoint, response.headers["X-Auth-Token"], response.headers["X-Storage-Url"]
    )


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def tester(aio_cluster: AioCluster) -> Client:
    return login(aio_cluster, "test:tester")


@pytest.fixture(scope="module")
def tester2(aio_cluster: AioCluster) -> Client:
    """test2:tester2, admin of AUTH_test2, a stranger to AUTH_test."""
    return login(aio_cluster, "test2:tester2")


@pytest.fixture(scope="module")
def tester3(aio_cluster: AioCluster) -> Client:
    """test:tester3: a user of the account test, but not its admin."""
    return login(aio_cluster, "test:tester3")


@pytest.fixture(scope="module")
def reseller(aio_cluster: AioCluster) -> Client:
    return login(aio_cluster, "admin:admin")


@pytest.fixture
def anonymous(tester: Client) -> Client:
    return Client(tester.endpoint, None, tester.url)


@pytest.fixture
def container(tester: Client) -> Iterator[str]:
    """A new container of test:tester's, emptied and deleted afterwards."""
    name = new_name("c")
    assert tester.request("PUT", f"/{name}").status_code == 201
    yield name
    listing = tester.request("GET", f"/{name}", params={"format": "json"})
    if listing.status_code == 200:
        for entry in listing.json():
            tester.request("DELETE", f"/{name}/{quote(entry['name'])}")
    tester.request("DELETE", f"/{name}")


def put_objects(client: Client, container: str, names: list[str]) -> None:
    for name in names:
        response = client.request("PUT", f"/{container}/{quote(name)}", data=name.encode())
        assert response.status_code == 201, (name, response.status_code, response.text)


# -- containers -----------------------------------------------------------------------------


def test_container_put_head_post_get_delete(tester: Client) -> None:
    name = new_name("life")
    created = tester.request("PUT", f"/{name}", headers={"X-Container-Meta-Color": "blue"})
    assert created.status_code == 201
    assert created.headers["X-Trans-Id"].startswith("tx")
    assert tester.request("PUT", f"/{name}").status_code == 202  # already there

    head = tester.request("HEAD", f"/{name}")
    assert head.status_code == 204
    assert head.headers["X-Container-Meta-Color"] == "blue"
    assert head.headers["X-Container-Object-Count"] == "0"
    assert head.headers["X-Container-Bytes-Used"] == "0"
    assert head.headers["X-Storage-Policy"] == "Policy-0"
    assert not any(h.lower().startswith("x-backend-") for h in head.headers)

    posted = tester.request(
        "POST",
        f"/{name}",
        headers={"X-Container-Meta-Shape": "round", "X-Remove-Container-Meta-Color": "x"},
    )
    assert posted.status_code == 204
    head = tester.request("HEAD", f"/{name}")
    assert head.headers["X-Container-Meta-Shape"] == "round"
    assert "X-Container-Meta-Color" not in head.headers

    empty = tester.request("GET", f"/{name}")
    assert empty.status_code == 204
    assert tester.request("GET", f"/{name}", params={"format": "json"}).json() == []

    listed = tester.request("GET", "", params={"prefix": name, "format": "json"})
    assert [entry["name"] for entry in listed.json()] == [name]

    assert tester.request("DELETE", f"/{name}").status_code == 204
    assert tester.request("HEAD", f"/{name}").status_code == 404
    assert tester.request("GET", f"/{name}").status_code == 404
    assert tester.request("DELETE", f"/{name}").status_code == 404
    assert tester.request("POST", f"/{name}").status_code == 404


def test_delete_of_a_container_with_objects_is_409(tester: Client, container: str) -> None:
    put_objects(tester, container, ["only"])
    assert tester.request("DELETE", f"/{container}").status_code == 409
    assert tester.request("DELETE", f"/{container}/only").status_code == 204
    assert tester.request("DELETE", f"/{container}").status_code == 204


def test_container_totals_follow_objects(tester: Client, container: str) -> None:
    put_objects(tester, container, ["a", "bb"])
    head = tester.request("HEAD", f"/{container}")
    assert (head.headers["X-Container-Object-Count"], head.headers["X-Container-Bytes-Used"]) == (
        "2",
        "3",
    )


def test_options(tester: Client, anonymous: Client, container: str) -> None:
    for client, path in ((tester, ""), (anonymous, f"/{container}")):
        response = client.request("OPTIONS", path)
        assert response.status_code == 200
        assert set(response.headers["Allow"].split(", ")) == {
            "DELETE",
            "GET",
            "HEAD",
            "OPTIONS",
            "POST",
            "PUT",
        }
    preflight = {"Origin": "http://example.com", "Access-Control-Request-Method": "GET"}
    assert anonymous.request("OPTIONS", f"/{container}", headers=preflight).status_code == 401


def test_cors_preflight_from_container_metadata(tester: Client, anonymous: Client) -> None:
    name = new_name("cors")
    headers = {"X-Container-Meta-Access-Control-Allow-Origin": "http://example.com"}
    assert tester.request("PUT", f"/{name}", headers=headers).status_code == 201
    preflight = {
        "Origin": "http://example.com",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-auth-token",
    }
    response = anonymous.request("OPTIONS", f"/{name}", headers=preflight)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://example.com"
    assert response.headers["Access-Control-Allow-Headers"] == "x-auth-token"
    other = {**preflight, "Origin": "http://elsewhere.example"}
    assert anonymous.request("OPTIONS", f"/{name}", headers=other).status_code == 401
    assert tester.request("DELETE", f"/{name}").status_code == 204


# -- listings -------------------------------------------------------------------------------

NAMES = ["a", "b/1", "b/2", "c", "snow\u2603man"]


def test_container_listing_formats(tester: Client, container: str) -> None:
    put_objects(tester, container, NAMES)
    plain = tester.request("GET", f"/{container}")
    assert plain.status_code == 200
    assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.content.decode("utf-8").splitlines() == NAMES

    as_json = tester.request("GET", f"/{container}", params={"format": "json"})
    assert as_json.headers["Content-Type"] == "application/json; charset=utf-8"
    entries = as_json.json()
    assert [e["name"] for e in entries] == NAMES
    assert entries[0]["bytes"] == 1 and entries[0]["hash"] == "0cc175b9c0f1b6a831c399e269772661"
    assert set(entries[0]) == {"name", "bytes", "hash", "content_type", "last_modified"}

    accept = tester.request("GET", f"/{container}", headers={"Accept": "application/xml"})
    assert accept.headers["Content-Type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(accept.content)
    assert root.tag == "container" and root.get("name") == container
    assert [o.findtext("name") for o in root.findall("object")] == NAMES

    assert (
        tester.request("GET", f"/{container}", headers={"Accept": "image/png"}).status_code == 406
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"prefix": "b/"}, ["b/1", "b/2"]),
        ({"delimiter": "/"}, ["a", "b/", "c", "snow\u2603man"]),
        ({"prefix": "b/", "delimiter": "/"}, ["b/1", "b/2"]),
        ({"marker": "b/1"}, ["b/2", "c", "snow\u2603man"]),
        ({"end_marker": "c"}, ["a", "b/1", "b/2"]),
        ({"marker": "a", "end_marker": "c"}, ["b/1", "b/2"]),
        ({"limit": "2"}, ["a", "b/1"]),
        ({"reverse": "true"}, list(reversed(NAMES))),
        ({"reverse": "on", "limit": "2", "marker": "c"}, ["b/2", "b/1"]),
        ({"marker": "zzz"}, []),  # past the end: an empty page
        ({"path": "b"}, ["b/1", "b/2"]),
    ],
)
def test_container_listing_params(
    tester: Client, container: str, params: dict[str, str], expected: list[str]
) -> None:
    put_objects(tester, container, NAMES)
    response = tester.request("GET", f"/{container}", params={**params, "format": "json"})
    assert response.status_code == 200
    assert [e.get("name", e.get("subdir")) for e in response.json()] == expected
    plain = tester.request("GET", f"/{container}", params=params)
    assert plain.status_code == (200 if expected else 204)
    assert plain.content.decode("utf-8").splitlines() == expected


def test_listing_limits_and_bad_parameters(tester: Client, container: str) -> None:
    too_many = tester.request("GET", f"/{container}", params={"limit": "10001"})
    assert (too_many.status_code, too_many.text) == (412, "Maximum limit is 10000")
    bad = tester.request("GET", f"/{container}?marker=%FF")
    assert bad.status_code == 400
    assert tester.request("GET", "", params={"limit": "10001"}).status_code == 412


def test_account_listing(tester: Client) -> None:
    prefix = new_name("acct")
    names = [f"{prefix}-{suffix}" for suffix in ("a", "b", "c")]
    for name in names:
        assert tester.request("PUT", f"/{name}").status_code == 201
    try:
        put_objects(tester, names[0], ["x"])
        as_json = tester.request("GET", "", params={"prefix": prefix, "format": "json"}).json()
        assert [e["name"] for e in as_json] == names
        assert set(as_json[0]) == {"name", "count", "bytes", "last_modified"}
        # Its object count reaches the account with the container server's next report
        # (no container updater yet): not asserted here.

        plain = tester.request("GET", "", params={"prefix": prefix})
        assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert plain.text.splitlines() == names
        xml = tester.request("GET", "", params={"prefix": prefix, "format": "xml"})
        root = ET.fromstring(xml.content)
        assert root.tag == "account" and root.get("name") == "AUTH_test"
        assert [c.findtext("name") for c in root.findall("container")] == names

        def listed(**params: str) -> list[str]:
            response = tester.request("GET", "", params={"prefix": prefix, **params})
            return response.text.splitlines()

        assert listed(marker=names[0]) == names[1:]
        assert listed(end_marker=names[2]) == names[:2]
        assert listed(limit="1") == names[:1]
        assert listed(reverse="true") == list(reversed(names))
        assert listed(delimiter="-", prefix=f"{prefix}-") == names
        assert listed(marker=f"{prefix}-zzz") == []
        head = tester.request("HEAD", "")
        assert head.status_code == 204
        assert int(head.headers["X-Account-Container-Count"]) >= 3
    finally:
        tester.request("DELETE", f"/{names[0]}/x")
        for name in names:
            tester.request("DELETE", f"/{name}")


# -- account autocreate ---------------------------------------------------------------------


def test_missing_account_reads_as_empty_without_being_created(reseller: Client) -> None:
    account = reseller.on(f"AUTH_{new_name('auto')}")
    head = account.request("HEAD")
    assert head.status_code == 204
    assert head.headers["X-Account-Container-Count"] == "0"
    assert head.headers["X-Account-Object-Count"] == "0"
    assert head.headers["X-Account-Bytes-Used"] == "0"
    assert account.request("GET").status_code == 204
    assert account.request("GET", params={"format": "json"}).json() == []
    xml = account.request("GET", params={"format": "xml"})
    assert ET.fromstring(xml.content).tag == "account"
    # Not created: deleting it finds nothing.
    assert account.request("DELETE").status_code == 404


def test_container_put_creates_its_account(reseller: Client) -> None:
    account = reseller.on(f"AUTH_{new_name('auto')}")
    assert account.request("PUT", "/first").status_code == 201
    assert account.request("GET").text.splitlines() == ["first"]
    head = account.request("HEAD")
    assert head.headers["X-Account-Container-Count"] == "1"
    assert account.request("DELETE", "/first").status_code == 204
    assert account.request("DELETE").status_code == 204
    assert account.request("HEAD").status_code == 410  # recently deleted


def test_account_post_creates_the_account(reseller: Client) -> None:
    account = reseller.on(f"AUTH_{new_name('auto')}")
    posted = account.request("POST", headers={"X-Account-Meta-Team": "storage"})
    assert posted.status_code == 204
    assert account.request("HEAD").headers["X-Account-Meta-Team"] == "storage"
    assert account.request("DELETE").status_code == 204


def test_account_metadata(tester: Client) -> None:
    key = f"X-Account-Meta-{new_name('k')}"
    assert tester.request("POST", headers={key: "v"}).status_code == 204
    assert tester.request("HEAD").headers[key] == "v"
    assert tester.request("POST", headers={key: ""}).status_code == 204
    assert key not in tester.request("HEAD").headers


# -- constraints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Container-Meta-" + "n" * 129: "v"}, "Metadata name too long"),
        ({"X-Container-Meta-Big": "v" * 257}, "Metadata value longer than 256"),
        ({f"X-Container-Meta-K{i}": "v" for i in range(91)}, "Too many metadata items; max 90"),
        (
            {f"X-Container-Meta-K{i}": "v" * 250 for i in range(17)},
            "Total metadata too large; max 4096",
        ),
    ],
)
def test_container_metadata_limits(tester: Client, headers: dict[str, str], message: str) -> None:
    name = new_name("meta")
    refused = tester.request("PUT", f"/{name}", headers=headers)
    assert refused.status_code == 400
    assert message in refused.text
    assert tester.request("HEAD", f"/{name}").status_code == 404
    assert tester.request("PUT", f"/{name}").status_code == 201
    assert tester.request("POST", f"/{name}", headers=headers).status_code == 400
    assert tester.request("DELETE", f"/{name}").status_code == 204


def test_account_metadata_limits(tester: Client) -> None:
    refused = tester.request("POST", headers={"X-Account-Meta-Big": "v" * 257})
    assert refused.status_code == 400
    assert "Metadata value longer than 256" in refused.text


def test_metadata_held_in_all_is_limited(tester: Client, container: str) -> None:
    first = {f"X-Container-Meta-A{i}": "v" for i in range(60)}
    second = {f"X-Container-Meta-B{i}": "v" for i in range(40)}
    assert tester.request("POST", f"/{container}", headers=first).status_code == 204
    over = tester.request("POST", f"/{container}", headers=second)
    assert over.status_code == 400
    assert "Too many metadata items; max 90" in over.text


def test_names(tester: Client) -> None:
    assert tester.request("GET", "/%FF").status_code == 412
    assert tester.request("PUT", "/c%00x").status_code == 412
    assert tester.request("GET", "/%FF").text == "Invalid UTF8 or contains NULL"
    too_long = tester.request("PUT", "/" + "c" * 257)
    assert (too_long.status_code, too_long.text) == (
        400,
        "Container name length of 257 longer than 256",
    )
    name = "\u2603-" + uuid.uuid4().hex[:8]
    assert tester.request("PUT", "/" + quote(name)).status_code == 201
    assert name in tester.request("GET", "", params={"prefix": "\u2603"}).text.splitlines()
    assert tester.request("DELETE", "/" + quote(name)).status_code == 204


def test_malformed_acl_is_400(tester: Client) -> None:
    name = new_name("acl")
    bad = tester.request("PUT", f"/{name}", headers={"X-Container-Write": ".r:*"})
    assert bad.status_code == 400
    assert "Referrers not allowed in write ACL" in bad.text
    bad = tester.request("PUT", f"/{name}", headers={"X-Container-Read": ".r:"})
    assert bad.status_code == 400
    assert tester.request("HEAD", f"/{name}").status_code == 404


# -- ACLs and authorisation -----------------------------------------------------------------


def test_acls_between_accounts(
    tester: Client, tester2: Client, tester3: Client, anonymous: Client
) -> None:
    name = new_name("shared")
    acls = {"X-Container-Read": "test2:tester2", "X-Container-Write": "test2:tester2"}
    assert tester.request("PUT", f"/{name}", headers=acls).status_code == 201
    put_objects(tester, name, ["mine"])
    theirs = tester2.on("AUTH_test")
    try:
        listing = theirs.request("GET", f"/{name}")
        assert (listing.status_code, listing.text) == (200, "mine\n")
        assert theirs.request("GET", f"/{name}/mine").content == b"mine"
        assert theirs.request("PUT", f"/{name}/theirs", data=b"x").status_code == 201
        assert theirs.request("POST", f"/{name}/theirs").status_code == 202
        assert theirs.request("DELETE", f"/{name}/theirs").status_code == 204
        # The ACLs are the owner's to see and change.
        head = theirs.request("HEAD", f"/{name}")
        assert head.status_code == 204
        assert "X-Container-Read" not in head.headers
        assert "X-Container-Write" not in head.headers
        assert tester.request("HEAD", f"/{name}").headers["X-Container-Read"] == "test2:tester2"
        for method in ("PUT", "POST", "DELETE"):
            assert theirs.request(method, f"/{name}").status_code == 403
        assert theirs.request("GET", "").status_code == 403  # not their account listing
        # Same account, not its admin: nothing without an ACL.
        assert tester3.request("GET", f"/{name}").status_code == 403
        assert tester3.request("GET", f"/{name}/mine").status_code == 403
        assert tester3.request("PUT", f"/{name}/x", data=b"x").status_code == 403
        assert tester3.request("GET", "").status_code == 403
        assert tester3.request("PUT", f"/{new_name('no')}").status_code == 403
        assert anonymous.request("GET", f"/{name}/mine").status_code == 401
    finally:
        tester.request("DELETE", f"/{name}/mine")
        tester.request("DELETE", f"/{name}")


def test_account_acl_grants_every_user_of_that_account(
    tester: Client, tester3: Client, tester2: Client
) -> None:
    name = new_name("acct-acl")
    assert (
        tester.request("PUT", f"/{name}", headers={"X-Container-Read": "test"}).status_code == 201
    )
    put_objects(tester, name, ["o"])
    try:
        assert tester3.request("GET", f"/{name}/o").status_code == 200
        assert tester3.request("GET", f"/{name}").status_code == 200
        assert tester2.on("AUTH_test").request("GET", f"/{name}/o").status_code == 403
    finally:
        tester.request("DELETE", f"/{name}/o")
        tester.request("DELETE", f"/{name}")


def test_public_read_and_listings(tester: Client, anonymous: Client, tester2: Client) -> None:
    public = new_name("public")
    listed = new_name("listed")
    assert (
        tester.request("PUT", f"/{public}", headers={"X-Container-Read": ".r:*"}).status_code == 201
    )
    headers = {"X-Container-Read": ".r:*,.rlistings"}
    assert tester.request("PUT", f"/{listed}", headers=headers).status_code == 201
    put_objects(tester, public, ["o"])
    put_objects(tester, listed, ["o"])
    try:
        assert anonymous.request("GET", f"/{public}/o").content == b"o"
        assert anonymous.request("HEAD", f"/{public}/o").status_code == 200
        assert tester2.on("AUTH_test").request("GET", f"/{public}/o").status_code == 200
        assert anonymous.request("GET", f"/{public}").status_code == 401  # no .rlistings
        assert anonymous.request("PUT", f"/{public}/new", data=b"x").status_code == 401
        assert anonymous.request("DELETE", f"/{public}/o").status_code == 401
        assert anonymous.request("GET", f"/{listed}").text == "o\n"
        assert anonymous.request("GET", f"/{listed}/o").content == b"o"
        assert anonymous.request("GET", "").status_code == 401
    finally:
        for name in (public, listed):
            tester.request("DELETE", f"/{name}/o")
            tester.request("DELETE", f"/{name}")


def test_referrer_acl(tester: Client, anonymous: Client) -> None:
    name = new_name("ref")
    acl = {"X-Container-Read": ".r:.example.com,.r:-bad.example.com"}
    assert tester.request("PUT", f"/{name}", headers=acl).status_code == 201
    put_objects(tester, name, ["o"])
    try:

        def get(referer: str | None) -> int:
            headers = {"Referer": referer} if referer else {}
            return anonymous.request("GET", f"/{name}/o", headers=headers).status_code

        assert get("http://www.example.com/page") == 200
        assert get("http://bad.example.com/page") == 401
        assert get("http://example.org/") == 401
        assert get(None) == 401
    finally:
        tester.request("DELETE", f"/{name}/o")
        tester.request("DELETE", f"/{name}")


def test_unauthorised_and_forbidden(tester: Client, tester2: Client, anonymous: Client) -> None:
    no_token = anonymous.request("GET")
    assert no_token.status_code == 401
    assert no_token.headers["Www-Authenticate"] == 'Swift realm="AUTH_test"'
    bad_token = anonymous.request("GET", headers={"X-Auth-Token": "AUTH_tkforged"})
    assert bad_token.status_code == 401
    assert anonymous.request("PUT", f"/{new_name('anon')}").status_code == 401
    theirs = tester2.on("AUTH_test")
    assert theirs.request("GET").status_code == 403
    assert theirs.request("HEAD").status_code == 403
    assert theirs.request("POST", headers={"X-Account-Meta-X": "y"}).status_code == 403
    assert theirs.request("PUT", f"/{new_name('theirs')}").status_code == 403
    # A missing container is no different to a stranger: denied, not 404.
    assert theirs.request("GET", f"/{new_name('missing')}").status_code == 403
    assert anonymous.request("GET", f"/{new_name('missing')}/o").status_code == 401
    # Not an account of the reseller prefix.
    assert tester.on("test").request("GET").status_code == 403


def test_account_put_and_delete_are_the_reseller_admins(tester: Client, reseller: Client) -> None:
    assert tester.request("PUT").status_code == 403
    assert tester.request("DELETE").status_code == 403
    account = reseller.on(f"AUTH_{new_name('made')}")
    assert account.request("PUT", headers={"X-Account-Meta-Owner": "ops"}).status_code == 201
    assert account.request("HEAD").headers["X-Account-Meta-Owner"] == "ops"
    assert reseller.on("AUTH_test").request("GET").status_code in (200, 204)
    assert account.request("DELETE", params={"prefix": "x"}).status_code == 400
    assert account.request("DELETE").status_code == 204


# -- /info ----------------------------------------------------------------------------------


def test_info(aio_cluster: AioCluster) -> None:
    response = requests.get(f"{aio_cluster.endpoint}/info", timeout=TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    info = response.json()
    swift = info["swift"]
    assert swift["max_file_size"] == 5368709122
    assert swift["max_meta_name_length"] == 128
    assert swift["max_meta_value_length"] == 256
    assert swift["max_meta_count"] == 90
    assert swift["max_meta_overall_size"] == 4096
    assert swift["max_header_size"] == 8192
    assert swift["max_object_name_length"] == 1024
    assert swift["container_listing_limit"] == 10000
    assert swift["account_listing_limit"] == 10000
    assert swift["max_account_name_length"] == 256
    assert swift["max_container_name_length"] == 256
    assert swift["extra_header_count"] == 0
    assert swift["valid_api_versions"] == ["v1", "v1.0"]
    assert swift["strict_cors_mode"] is True
    assert swift["account_autocreate"] is True
    assert info["tempauth"] == {"account_acls": False}
    # Only what is really there: no middleware that does not exist yet.
    assert set(info) == {"swift", "tempauth"}
    head = requests.head(f"{aio_cluster.endpoint}/info", timeout=TIMEOUT_S)
    assert head.status_code == 200 and head.content == b""
    assert requests.post(f"{aio_cluster.endpoint}/info", timeout=TIMEOUT_S).status_code == 405
    cors = requests.get(
        f"{aio_cluster.endpoint}/info", headers={"Origin": "http://x.test"}, timeout=TIMEOUT_S
    )
    assert cors.headers["Access-Control-Allow-Origin"] == "http://x.test"


def test_python_swiftclient_sees_info_and_acls(aio_cluster: AioCluster) -> None:
    from swiftclient import client as swift_client

    conn = swift_client.Connection(
        authurl=aio_cluster.auth_url,
        user="test:tester",
        key=aio_cluster.users["test:tester"],
        retries=0,
    )
    try:
        assert conn.get_capabilities()["swift"]["max_file_size"] == 5368709122
        name = new_name("sc")
        conn.put_container(name, headers={"X-Container-Read": ".r:*"})
        assert conn.head_container(name)["x-container-read"] == ".r:*"
        _, listing = conn.get_account(prefix=name)
        assert [c["name"] for c in listing] == [name]
        conn.delete_container(name)
    finally:
        conn.close()


# -- a container server down ----------------------------------------------------------------


def _container_primary_server(cluster: AioCluster, account: str, container: str) -> str:
    """The name of the server (``container-N``) holding a primary of the container."""
    config = tomllib.loads(cluster.config.read_text())
    secret = config["cluster"]["hash_path_secret"].encode()
    ring = Ring.load(Path(config["cluster"]["ring_dir"]) / "container.ring", secret)
    _, nodes = ring.get_nodes(account, container)
    by_port = {s.port: name for name, s in cluster.servers.items() if s.service == "container"}
    return by_port[nodes[0].port]


@pytest.mark.slow
def test_container_operations_survive_a_container_server_down(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "aio") as cluster:
        tester = login(cluster, "test:tester")
        name = new_name("down")
        victim = _container_primary_server(cluster, "AUTH_test", name)
        os.kill(cluster.servers[victim].pid, signal.SIGKILL)
        time.sleep(0.2)

        assert (
            tester.request("PUT", f"/{name}", headers={"X-Container-Meta-A": "1"}).status_code
            == 201
        )
        assert tester.request("HEAD", f"/{name}").headers["X-Container-Meta-A"] == "1"
        assert (
            tester.request("POST", f"/{name}", headers={"X-Container-Meta-A": "2"}).status_code
            == 204
        )
        assert tester.request("HEAD", f"/{name}").headers["X-Container-Meta-A"] == "2"
        put_objects(tester, name, ["o1", "o2"])
        assert tester.request("GET", f"/{name}").text.splitlines() == ["o1", "o2"]
        assert name in tester.request("GET").text.splitlines()
        for obj in ("o1", "o2"):
            assert tester.request("DELETE", f"/{name}/{obj}").status_code == 204
        assert tester.request("DELETE", f"/{name}").status_code == 204
        assert tester.request("HEAD", f"/{name}").status_code == 404
