"""The proxy's info cache across its workers (proxy/infocache.py, proxy/generations.py).

The session's all-in-one cluster runs a proxy with two workers on one port.  Every request
here goes over a new connection, so the kernel spreads them over both workers: a write
through one worker must be seen at once through the other, though it cached the old state
(an ACL, a container's absence) a moment before.  Each sequence is repeated, as one try
reaches the other worker only half the time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aio_cluster import AioCluster
from swiftclient import client as swift_client
from swiftclient.exceptions import ClientException

ROUNDS = 50
WARM_READS = 4  # fresh connections that fill the workers' caches before each write
CHECKS = 4  # fresh connections that must each see the write


def _status(call: Callable[..., Any], url: str, *args: Any, **kwargs: Any) -> int:
    """``call``'s status over a connection of its own (200 for any success)."""
    parsed, conn = swift_client.http_connection(url)
    try:
        call(url, *args, http_conn=(parsed, conn), **kwargs)
    except ClientException as exc:
        return exc.http_status
    finally:
        conn.close()
    return 200


def _token(cluster: AioCluster, user: str) -> tuple[str, str]:
    return swift_client.get_auth(cluster.auth_url, user, cluster.users[user])


def _new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.mark.slow
def test_an_acl_change_holds_at_once_through_every_worker(aio_cluster: AioCluster) -> None:
    url, owner = _token(aio_cluster, "test:tester")
    _, reader = _token(aio_cluster, "test2:tester2")
    container = _new_name("acl")
    swift_client.put_container(url, owner, container, headers={"X-Container-Read": "test2"})
    swift_client.put_object(url, owner, container, "o", b"data")

    def read() -> int:
        return _status(swift_client.get_object, url, reader, container, "o")

    wrong = []
    for round_ in range(ROUNDS):
        granted = round_ % 2 == 1  # revoke, grant, revoke, ...
        for _ in range(WARM_READS):
            read()
        acl = "test2" if granted else ""
        swift_client.post_container(url, owner, container, {"X-Container-Read": acl})
        for _ in range(CHECKS):
            status = read()
            if (status == 200) != granted:
                wrong.append((round_, "granted" if granted else "revoked", status))
    assert wrong == [], f"{len(wrong)} of {ROUNDS * CHECKS} reads saw the old ACL: {wrong}"


@pytest.mark.slow
def test_an_object_put_finds_the_container_just_created(aio_cluster: AioCluster) -> None:
    url, owner = _token(aio_cluster, "test:tester")
    wrong = []
    for round_ in range(ROUNDS):
        container = _new_name("fresh")
        for _ in range(WARM_READS):  # each worker caches the container as missing
            assert _status(swift_client.delete_object, url, owner, container, "o") == 404
        swift_client.put_container(url, owner, container)
        for check in range(CHECKS):
            status = _status(swift_client.put_object, url, owner, container, f"o{check}", b"x")
            if status != 200:
                wrong.append((round_, check, status))
    assert wrong == [], f"{len(wrong)} of {ROUNDS * CHECKS} PUTs missed the container: {wrong}"
