"""``GET /metrics`` on real server processes: an object server (one worker and several), the
object auditor's last pass after ``torus serve object-auditor --once``, and the proxy (no
auth, counted like any request)."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from proxy_cluster import ProxyCluster
from server_process import REPO_ROOT, ServerProcess, write_config

from service.metrics import Family
from service.metrics_shm import SHM_DIR
from service.metrics_text import CONTENT_TYPE, parse

ONCE_TIMEOUT_S = 60.0
StartServer = Callable[..., ServerProcess]  # tests/functional/conftest.py's fixture


def scrape(address: tuple[str, int]) -> dict[str, Family]:
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        assert response.headers["Content-Type"] == CONTENT_TYPE
    finally:
        conn.close()
    return {family.name: family for family in parse(body.decode("utf-8"))}


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    """The one sample of ``name`` with these labels (among others), or 0 if there is none."""
    base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
    family = families.get(name) or families.get(base)
    found = [
        s.value
        for s in (family.samples if family else ())
        if s.name == name and labels.items() <= dict(s.labels).items()
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def total_requests(families: dict[str, Family]) -> float:
    return sum(s.value for s in families["torus_requests_total"].samples)


def request(address: tuple[str, int], method: str, path: str, **headers: str) -> int:
    conn = http.client.HTTPConnection(*address, timeout=30)  # a new connection each time
    try:
        body = b"x" * 10 if method == "PUT" else None
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def check_histograms(families: dict[str, Family]) -> None:
    """Buckets cumulative up to +Inf, which equals _count, which equals the requests counted
    for that method (both are updated by one call)."""
    histogram = families["torus_request_duration_seconds"]
    assert histogram.kind == "histogram"
    by_method: dict[str, list[tuple[str, float]]] = {}
    for sample in histogram.samples:
        labels = dict(sample.labels)
        if sample.name.endswith("_bucket"):
            by_method.setdefault(labels["method"], []).append((labels["le"], sample.value))
    for method, buckets in by_method.items():
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), method
        assert buckets[-1][0] == "+Inf"
        count = value(families, "torus_request_duration_seconds_count", method=method)
        assert buckets[-1][1] == count
        requests = sum(
            s.value
            for s in families["torus_requests_total"].samples
            if dict(s.labels)["method"] == method
        )
        assert count == requests, method


def test_object_server_counts_requests(object_server: ServerProcess) -> None:
    first = scrape(object_server.address)
    assert value(first, "torus_server_workers") == 1
    path = "/sda/1/a/c/metered"
    ts = f"{time.time():.5f}"
    headers = {"X-Timestamp": ts, "Content-Type": "text/plain"}
    assert request(object_server.address, "PUT", path, **headers) == 201
    assert request(object_server.address, "GET", path) == 200
    assert request(object_server.address, "GET", "/sda/1/a/c/missing") == 404
    time.sleep(0.1)  # each count follows its response
    then = scrape(object_server.address)

    def moved(method: str, klass: str) -> float:
        labels = {"method": method, "class": klass}
        return value(then, "torus_requests_total", **labels) - value(
            first, "torus_requests_total", **labels
        )

    assert moved("PUT", "2xx") == 1
    assert moved("GET", "4xx") == 1
    assert moved("GET", "2xx") == 2  # the GET of the object, and the first scrape
    check_histograms(then)
    put_sum = value(then, "torus_request_duration_seconds_sum", method="PUT")
    assert 0 < put_sum < 30
    # Every server has no daemon record yet: the gauges are there, with no daemon samples.
    assert value(then, "torus_daemon_recon_unreadable") == 0
    assert not then["torus_daemon_last_pass_age_seconds"].samples
    assert "GET /metrics 200" in object_server.log()  # logged like any request


def test_workers_share_their_counters(start_server: StartServer) -> None:
    server = start_server("object", workers=2)
    deadline = time.monotonic() + 20
    before = scrape(server.address)
    while value(before, "torus_server_workers") < 2:  # the other may still be starting
        assert time.monotonic() < deadline, "the second worker never made its slots"
        time.sleep(0.1)
        before = scrape(server.address)
    assert value(before, "torus_server_workers") == 2
    sent = 40
    for _ in range(sent):  # new connections: the kernel spreads them over both workers
        assert request(server.address, "HEAD", "/sda/1/a/c/nothing") == 404
    time.sleep(0.2)  # each access-log call (the count) follows its response
    scrapes = [scrape(server.address) for _ in range(6)]
    for i, seen in enumerate(scrapes):
        head_404 = value(seen, "torus_requests_total", method="HEAD", **{"class": "4xx"})
        assert head_404 == sent, i  # whichever worker answered, it saw both workers' counts
        assert total_requests(seen) >= total_requests(before) + sent + i
        check_histograms(seen)
    shared = list(SHM_DIR.glob(f"torus-metrics-{server.port}-*"))
    assert len(shared) == 1
    assert len(list(shared[0].glob("*.slots"))) == 2
    server.stop()
    assert not shared[0].exists()  # the supervisor removed it


def test_auditor_pass_appears_as_gauges(object_server: ServerProcess) -> None:
    ts = f"{time.time():.5f}"
    headers = {"X-Timestamp": ts, "Content-Type": "text/plain"}
    assert request(object_server.address, "PUT", "/sda/1/a/c/audited", **headers) == 201
    run_auditor_once(object_server)
    families = scrape(object_server.address)
    daemon = {"daemon": "object-auditor"}
    assert value(families, "torus_daemon_last_pass_ok", **daemon) == 1
    assert value(families, "torus_daemon_last_pass_objects", **daemon) == 1
    assert value(families, "torus_daemon_last_pass_bytes_verified", **daemon) == 10
    assert value(families, "torus_daemon_last_pass_quarantined", **daemon) == 0
    assert 0 <= value(families, "torus_daemon_last_pass_age_seconds", **daemon) < ONCE_TIMEOUT_S
    assert value(families, "torus_daemon_last_pass_duration_seconds", **daemon) >= 0
    assert families["torus_daemon_last_pass_objects"].kind == "gauge"


def run_auditor_once(server: ServerProcess) -> None:
    config = server.workdir / "object-auditor.toml"
    table = {"devices": str(server.devices), "mount_check": False, "bytes_per_s": 0}
    write_config(config, "object_auditor", {**table, "objects_per_s": 0}, server.secret)
    argv = [sys.executable, "-m", "tools.cli", "serve", "object-auditor", "--once"]
    done = subprocess.run(
        [*argv, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=ONCE_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert Path(server.devices / "object-auditor.recon").exists(), done.stdout + done.stderr


@pytest.fixture(scope="module")
def small_proxy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyCluster]:
    root = tmp_path_factory.mktemp("metrics-cluster")
    with ProxyCluster(root, proxy_options={"workers": 2}) as cluster:
        yield cluster


def test_proxy_metrics_need_no_token_and_sum_its_workers(small_proxy_cluster: ProxyCluster) -> None:
    cluster = small_proxy_cluster
    address = cluster.proxy.address
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"X-Auth-Token": "not-a-token"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200  # like /healthcheck: no token asked for, none checked
    assert response.headers["X-Trans-Id"].startswith("tx")
    deadline = time.monotonic() + 20
    first = scrape(address)
    while value(first, "torus_server_workers") < 2:  # the other may still be starting
        assert time.monotonic() < deadline, "the second worker never made its slots"
        time.sleep(0.1)
        first = scrape(address)
    token, _ = cluster.auth()
    assert request(address, "PUT", "/v1/AUTH_test/metered", **{"X-Auth-Token": token}) in (
        201,
        202,
    )
    assert request(address, "GET", "/v1/AUTH_test/metered", **{"X-Auth-Token": token}) in (
        200,
        204,
    )
    assert request(address, "GET", "/v1/AUTH_test/metered") == 401
    time.sleep(0.2)  # each count follows its response, maybe in the other worker
    then = scrape(address)
    # GET 2xx: the token (GET /auth/v1.0), the listing, and the first scrape.
    for method, klass, moved in (("PUT", "2xx", 1), ("GET", "4xx", 1), ("GET", "2xx", 3)):
        labels = {"method": method, "class": klass}
        assert (
            value(then, "torus_requests_total", **labels)
            - value(first, "torus_requests_total", **labels)
            == moved
        ), labels
    check_histograms(then)
    # The proxy has no devices directory: no daemon gauges.
    assert "torus_daemon_last_pass_age_seconds" not in then


@pytest.mark.parametrize("service", ["container", "account"])
def test_database_servers_answer_metrics(start_server: StartServer, service: str) -> None:
    server = start_server(service)
    families = scrape(server.address)
    assert value(families, "torus_server_workers") == 1
    assert value(families, "torus_daemon_recon_unreadable") == 0  # it has a devices directory
    again = scrape(server.address)
    assert value(again, "torus_requests_total", method="GET", **{"class": "2xx"}) >= 1
    check_histograms(again)
