"""The metrics registry (service/metrics.py), the request metrics' hot path
(service/metrics_requests.py) and the shared worker slots (service/metrics_shm.py)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import timeit
from pathlib import Path

import pytest

from service import metrics_shm
from service.metrics import Registry
from service.metrics_http import ServerMetrics
from service.metrics_requests import LATENCY_BUCKETS_S, METHODS, STATUS_CLASSES, RequestMetrics
from service.metrics_shm import WorkerSlots, summed
from service.metrics_text import parse, render


def test_counter_slots_are_laid_out_per_label_set() -> None:
    registry = Registry()
    counter = registry.counter("a_total", "A.", {"x": ("p", "q"), "y": ("1", "2", "3")})
    other = registry.counter("b_total", "B.", {})
    assert registry.size == 7
    assert counter.slot("p", "1") == 0
    assert counter.slot("q", "3") == 5
    assert other.slot() == 6
    with pytest.raises(KeyError):
        counter.slot("r", "1")  # only declared values: no series grows from input
    values = registry.new_values()
    values[counter.slot("q", "2")] += 2
    family = registry.families(values)[0]
    assert [(dict(s.labels), s.value) for s in family.samples if s.value] == [
        ({"x": "q", "y": "2"}, 2)
    ]


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count() -> None:
    registry = Registry()
    histogram = registry.histogram("h_seconds", "H.", {"m": ("GET",)}, (0.1, 1.0))
    values = registry.new_values()
    slot = histogram.slot("GET")
    for amount in (0.05, 0.1, 0.5, 3.0):  # 0.1 is in le="0.1": the bound is inclusive
        histogram.observe(values, slot, amount)
    samples = [(s.name, dict(s.labels), s.value) for s in registry.families(values)[0].samples]
    assert samples == [
        ("h_seconds_bucket", {"m": "GET", "le": "0.1"}, 2),
        ("h_seconds_bucket", {"m": "GET", "le": "1.0"}, 3),
        ("h_seconds_bucket", {"m": "GET", "le": "+Inf"}, 4),
        ("h_seconds_sum", {"m": "GET"}, pytest.approx(3.65)),
        ("h_seconds_count", {"m": "GET"}, 4),
    ]


def test_registry_refuses_bad_declarations() -> None:
    registry = Registry()
    registry.counter("a_total", "A.", {})
    with pytest.raises(ValueError):
        registry.counter("a_total", "again", {})
    with pytest.raises(ValueError):
        registry.histogram("h", "H.", {}, (1.0, 0.5))
    with pytest.raises(ValueError):
        registry.families([0.0] * (registry.size + 1))


def test_request_metrics_count_by_method_and_class() -> None:
    metrics = RequestMetrics()
    metrics.observe("GET", 200, 0.0004)
    metrics.observe("GET", 404, 0.002)
    metrics.observe("PUT", 201, 0.3)
    metrics.observe("PROPFIND", 405, 0.001)  # any other method is "other"
    metrics.observe("GET", 99, 0.0)  # out of range statuses land in 5xx, never outside
    text = render(metrics.families(metrics.values))
    families = {f.name: f for f in parse(text)}

    def count(method: str, klass: str) -> float:
        return next(
            s.value
            for s in families["torus_requests_total"].samples
            if dict(s.labels) == {"method": method, "class": klass}
        )

    assert (count("GET", "2xx"), count("GET", "4xx"), count("GET", "5xx")) == (1, 1, 1)
    assert count("PUT", "2xx") == 1
    assert count("other", "4xx") == 1
    assert len(families["torus_requests_total"].samples) == len(METHODS) * len(STATUS_CLASSES)
    buckets = {
        dict(s.labels)["le"]: s.value
        for s in families["torus_request_duration_seconds"].samples
        if s.name.endswith("_bucket") and dict(s.labels)["method"] == "GET"
    }
    assert buckets["0.0005"] == 2  # 0.0004 and 0.0
    assert buckets["0.0025"] == 3
    assert buckets["+Inf"] == 3
    assert len(buckets) == len(LATENCY_BUCKETS_S) + 1


def test_observe_is_cheap() -> None:
    """The hot path's own cost (the access logger adds a dict get and a perf_counter);
    generous, since the test machine is shared: measured ~0.6 µs."""
    metrics = RequestMetrics()
    runs = 20_000
    best = min(timeit.repeat(lambda: metrics.observe("GET", 200, 0.0013), number=runs, repeat=5))
    assert best / runs < 5e-6


def test_worker_slots_are_summed_across_files(tmp_path: Path) -> None:
    size = RequestMetrics().size
    first = RequestMetrics(WorkerSlots(tmp_path, size).values)
    first.observe("GET", 200, 0.001)
    (tmp_path / "1.slots").write_bytes(bytes(first.values.nbytes))  # an exited worker's
    (tmp_path / "2.slots").write_bytes(bytes(8))  # another layout: skipped
    (tmp_path / "notes").write_text("ignored")
    second = RequestMetrics(memoryview(bytearray(first.values.nbytes)).cast("d"))
    second.observe("GET", 200, 0.002)
    second.observe("HEAD", 500, 0.002)
    (tmp_path / "3.slots").write_bytes(second.values.tobytes())
    totals, files = summed(tmp_path, size)
    assert files == 3
    expected = [a + b for a, b in zip(first.values.tolist(), second.values.tolist(), strict=True)]
    assert totals == expected
    assert math.fsum(totals) > 0


def test_summed_of_a_missing_directory_is_zero(tmp_path: Path) -> None:
    assert summed(tmp_path / "gone", 3) == ([0.0, 0.0, 0.0], 0)


def test_a_new_supervisor_removes_its_ports_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_shm, "SHM_DIR", tmp_path)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp_path / f"torus-metrics-5555-{int(finished.stdout)}-abcd1234"
    alive = tmp_path / f"torus-metrics-5555-{os.getppid()}-abcd1234"  # our parent runs
    other_port = tmp_path / f"torus-metrics-5556-{int(finished.stdout)}-abcd1234"
    for path in (dead, alive, other_port):
        path.mkdir()
        (path / "1.slots").write_bytes(bytes(8))
    made = metrics_shm.make_directory(5555)
    assert made is not None and made.name.startswith(f"torus-metrics-5555-{os.getpid()}-")
    assert not dead.exists()
    assert alive.exists() and other_port.exists()
    metrics_shm.remove_directory(made)
    assert not made.exists()


def test_a_worker_without_shared_slots_still_counts(tmp_path: Path) -> None:
    metrics = ServerMetrics(tmp_path / "removed", devices=None)  # cannot make its file
    metrics.requests.observe("GET", 200, 0.001)
    totals, workers = metrics.request_totals()
    assert workers == 1
    assert sum(totals) > 0
