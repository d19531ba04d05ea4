"""Probe test 7: a host cut off the network, in network namespaces (root only).

Four hosts, each a network namespace with one IP and its object, container and account
servers; the proxy on the bridge between them (tests/netns_cluster.py).  One host is cut off
(its bridge port down: a black hole, connects time out rather than fail).  PUTs through the
proxy still reach their quorum (the cut primary's replica goes to the handoff) and every
acknowledged object reads back.  The link is healed and each host's object replicator runs
once in its namespace; then every object's three primaries hold it, checked with a HEAD on
each host's object server, and the handoff copies are gone.  A loss summary is printed as
JSON.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from netns_cluster import HOSTS, NetnsCluster, netns_unavailable

pytestmark = pytest.mark.slow

OBJECTS_BEFORE = 5  # written with every host up: must stay readable through the cut
OBJECTS_DURING = 12  # written while one host is cut off
BIG_BODY = bytes(range(256)) * 800  # 200 KiB: a data file, not an inline body
# A PUT that meets one black-holed primary should pay about conn_timeout_s (0.5 s), plus the
# post-quorum wait for the replica whose listing update waits on the cut container server.
PUT_BUDGET_S = 2.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NetnsCluster]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with NetnsCluster(tmp_path / "netns") as running:
        yield running


def body_of(name: str) -> bytes:
    return BIG_BODY if name.endswith("-0") else f"body of {name}".encode()


def request(
    cluster: NetnsCluster, method: str, path: str, token: str, body: bytes | None = None
) -> tuple[int, bytes]:
    conn = cluster.connection()
    try:
        conn.request(method, path, body=body, headers={"X-Auth-Token": token})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def head_on_host(cluster: NetnsCluster, host: int, partition: int, name: str) -> str | None:
    """The data timestamp of ``name`` (``/account/container/object``) on host ``host``'s
    device, asked of its object server directly; None if it does not hold it."""
    conn = cluster.host_connection(host)
    try:
        conn.request("HEAD", f"/d{host}/{partition}{name}")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.status == 404:
        return None
    assert response.status == 200, (host, name, response.status)
    return response.headers["X-Backend-Data-Timestamp"]


def copies(
    cluster: NetnsCluster, account: str, obj: str
) -> tuple[list[str | None], list[str | None]]:
    """(the timestamps on its primaries, on its other hosts) of ``probe/obj``."""
    partition, primaries = cluster.object_nodes(account, "probe", obj)
    others = [host for host in range(1, HOSTS + 1) if host not in primaries]
    name = f"/{account}/probe/{obj}"
    on_primaries = [head_on_host(cluster, host, partition, name) for host in primaries]
    return on_primaries, [head_on_host(cluster, host, partition, name) for host in others]


def setup_container(cluster: NetnsCluster) -> tuple[str, str, str]:
    """(token, the account's path, the account) with container ``probe`` made."""
    token, url = cluster.auth()
    base = urlsplit(url).path
    assert request(cluster, "PUT", f"{base}/probe", token)[0] in (201, 202)
    return token, base, base.rsplit("/", 1)[1]


def test_a_cut_off_host_leaves_writes_at_quorum_and_replication_converges_after_the_heal(
    cluster: NetnsCluster,
) -> None:
    started = time.monotonic()
    token, base, account = setup_container(cluster)
    # The container's first primary: its listing updates fail too (async_pendings), as
    # they would when a whole host drops off.
    cut_host = cluster.nodes("container", account, "probe")[1][0]
    acknowledged: list[str] = []
    for i in range(OBJECTS_BEFORE):
        name = f"before-{i}"
        assert request(cluster, "PUT", f"{base}/probe/{name}", token, body_of(name))[0] == 201
        acknowledged.append(name)

    cluster.cut(cut_host)
    put_s = []
    for i in range(OBJECTS_DURING):
        name = f"during-{i}"
        began = time.monotonic()
        status, _ = request(cluster, "PUT", f"{base}/probe/{name}", token, body_of(name))
        put_s.append(time.monotonic() - began)
        assert status == 201, (name, status, cluster.log("proxy")[-3000:])
        acknowledged.append(name)
    get_s = []
    for name in acknowledged:
        began = time.monotonic()
        status, body = request(cluster, "GET", f"{base}/probe/{name}", token)
        get_s.append(time.monotonic() - began)
        assert (status, body) == (200, body_of(name)), (name, status)
    cut_primary = [
        name
        for name in acknowledged[OBJECTS_BEFORE:]
        if cut_host in cluster.object_nodes(account, "probe", name)[1]
    ]
    assert cut_primary, "no object had the cut host as a primary: nothing was probed"

    cluster.heal(cut_host)
    # Before replication: the cut primary holds none of them, the other two do, and the third
    # copy is on a handoff (counted here, asserted after the summary).
    written_to_handoff = 0
    for name in cut_primary:
        on_primaries, on_others = copies(cluster, account, name)
        _partition, primaries = cluster.object_nodes(account, "probe", name)
        held = dict(zip(primaries, on_primaries, strict=True))
        assert held.pop(cut_host) is None, (name, "reached the cut host")
        assert None not in held.values(), (name, held)
        written_to_handoff += on_others[0] is not None

    replicated = time.monotonic()
    outputs = cluster.replicate_everywhere()
    replication_s = time.monotonic() - replicated

    lost, under_replicated, handoff_copies_left = [], [], []
    for name in acknowledged:
        status, body = request(cluster, "GET", f"{base}/probe/{name}", token)
        if (status, body) != (200, body_of(name)):
            lost.append(name)
        on_primaries, on_others = copies(cluster, account, name)
        if None in on_primaries or len(set(on_primaries)) != 1:
            under_replicated.append(name)
        if any(ts is not None for ts in on_others):
            handoff_copies_left.append(name)
    summary = {
        "acknowledged": len(acknowledged),
        "lost": len(lost),
        "under_replicated": len(under_replicated),
        "handoff_copies_left": len(handoff_copies_left),
        "cut_host": cut_host,
        "written_with_cut_primary": len(cut_primary),
        "written_to_handoff": written_to_handoff,
        "acknowledged_with_two_copies": len(cut_primary) - written_to_handoff,
        "put_s_max": round(max(put_s), 3),
        "put_s_mean": round(sum(put_s) / len(put_s), 3),
        "get_s_max": round(max(get_s), 3),
        "replication_s": round(replication_s, 2),
        "test_s": round(time.monotonic() - started, 1),
    }
    print("netns probe loss summary:", json.dumps(summary, sort_keys=True))
    detail = "\n".join(outputs.values())
    assert lost == [], (summary, lost)
    assert under_replicated == [], (summary, under_replicated, detail)
    assert handoff_copies_left == [], (summary, handoff_copies_left, detail)
    assert written_to_handoff == len(cut_primary), summary
    assert max(put_s) < PUT_BUDGET_S, summary


def test_a_write_whose_primary_is_black_holed_still_gets_three_copies(tmp_path: Path) -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with NetnsCluster(tmp_path / "netns", proxy_options={"conn_timeout_s": 1.0}) as cluster:
        token, base, account = setup_container(cluster)
        # The host the container is not on: no listing update waits on it, so the two other
        # primaries answer at once and the post-quorum wait starts then.
        container_hosts = cluster.nodes("container", account, "probe")[1]
        cut_host = next(h for h in range(1, HOSTS + 1) if h not in container_hosts)
        names = [f"o-{i}" for i in range(40)]
        names = [n for n in names if cut_host in cluster.object_nodes(account, "probe", n)[1]]
        names = names[:5]  # fewer than error_suppression_limit failures: never error-limited
        cluster.cut(cut_host)
        for name in names:
            status, _ = request(cluster, "PUT", f"{base}/probe/{name}", token, body_of(name))
            assert status == 201, (name, status)
        cluster.heal(cut_host)
        held = {name: copies(cluster, account, name) for name in names}
        three = {name: on_p + on_o for name, (on_p, on_o) in held.items()}
        assert all(sum(ts is not None for ts in c) == 3 for c in three.values()), three


def test_a_put_meeting_a_black_holed_primary_costs_about_a_connect_timeout(
    tmp_path: Path,
) -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with NetnsCluster(tmp_path / "netns", proxy_options={"node_timeout_s": 3.0}) as cluster:
        token, base, account = setup_container(cluster)
        container_hosts = cluster.nodes("container", account, "probe")[1]
        cut_host = next(h for h in range(1, HOSTS + 1) if h not in container_hosts)
        names = [f"o-{i}" for i in range(40)]
        names = [n for n in names if cut_host in cluster.object_nodes(account, "probe", n)[1]]
        # One write with every host up leaves a pooled connection to the cut host's object
        # server; the next write to it, after the cut, takes that connection.
        assert request(cluster, "PUT", f"{base}/probe/{names[0]}", token, b"up")[0] == 201
        cluster.cut(cut_host)
        began = time.monotonic()
        status, _ = request(cluster, "PUT", f"{base}/probe/{names[1]}", token, BIG_BODY)
        put_s = time.monotonic() - began
        assert status == 201
        assert put_s < PUT_BUDGET_S, (put_s, cluster.log("proxy")[-2000:])


def test_the_cluster_helper_tears_down_everything_it_made(tmp_path: Path) -> None:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    cluster = NetnsCluster(tmp_path / "netns").start()
    net = cluster.network
    cluster.stop()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"tnp{net.tag}" not in namespaces + links
    conn = http.client.HTTPConnection(net.proxy_ip, cluster.proxy_port, timeout=1)
    with pytest.raises(OSError):
        conn.request("GET", "/healthcheck")
    conn.close()
