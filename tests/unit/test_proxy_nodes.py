"""proxy/nodes.py: node order for reads and writes, and error limiting."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from proxy.nodes import NodeErrors, read_nodes, write_nodes
from ring.builder import RingBuilder
from ring.ring import Ring


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_ring(devices: int = 6, replicas: int = 3) -> Ring:
    builder = RingBuilder(4, replicas, 0)
    for i in range(devices):
        builder.add_dev(
            region=1, zone=i, ip=f"10.0.0.{i + 1}", port=6200, device=f"d{i}", weight=1.0
        )
    builder.rebalance(seed=7)
    return Ring(builder.get_ring(), b"secret")


def fake_proxy(errors: NodeErrors | None = None, seed: int = 1) -> SimpleNamespace:
    return SimpleNamespace(
        errors=errors or NodeErrors(10, 60.0, clock=FakeClock()), rng=random.Random(seed)
    )


def test_a_node_is_limited_after_more_than_limit_errors_within_the_interval() -> None:
    clock = FakeClock()
    errors = NodeErrors(2, 60.0, clock=clock)
    node = make_ring().devices[0]
    assert node is not None
    for _ in range(2):
        errors.record(node)
        assert not errors.limited(node)
    errors.record(node)
    assert errors.limited(node)
    clock.now += 61  # the interval since the last error passed: forgotten
    assert not errors.limited(node)
    assert errors.count(node) == 0


def test_errors_spread_out_never_add_up() -> None:
    clock = FakeClock()
    errors = NodeErrors(1, 10.0, clock=clock)
    node = make_ring().devices[1]
    assert node is not None
    for _ in range(5):
        errors.record(node)
        clock.now += 11
    assert errors.count(node) == 1
    assert not errors.limited(node)


def test_limit_now_skips_a_node_at_once_for_an_interval() -> None:
    clock = FakeClock()
    errors = NodeErrors(10, 60.0, clock=clock)
    node = make_ring().devices[2]
    assert node is not None
    errors.limit_now(node)
    assert errors.limited(node)
    clock.now += 59
    assert errors.limited(node)
    clock.now += 2
    assert not errors.limited(node)


def test_errors_are_per_device() -> None:
    errors = NodeErrors(0, 60.0, clock=FakeClock())
    ring = make_ring()
    first, second = ring.devices[0], ring.devices[1]
    assert first is not None and second is not None
    errors.record(first)
    assert errors.limited(first)
    assert not errors.limited(second)


def test_write_nodes_are_primaries_in_ring_order_then_handoffs() -> None:
    ring = make_ring()
    part = 5
    nodes = list(write_nodes(fake_proxy(), ring, part))  # type: ignore[arg-type]
    assert nodes[:3] == ring.get_part_nodes(part)
    assert nodes[3:] == list(ring.get_more_nodes(part))
    assert len(nodes) == 6


def test_read_nodes_shuffle_the_primaries_only() -> None:
    ring = make_ring()
    part = 3
    primaries = ring.get_part_nodes(part)
    orders = set()
    for seed in range(30):
        nodes = list(read_nodes(fake_proxy(seed=seed), ring, part))  # type: ignore[arg-type]
        assert sorted(n.id for n in nodes[:3]) == sorted(n.id for n in primaries)
        assert nodes[3:] == list(ring.get_more_nodes(part))
        orders.add(tuple(n.id for n in nodes[:3]))
    assert len(orders) > 1, "the primaries were never shuffled"
    assert ring.get_part_nodes(part) == primaries  # the ring's own list is untouched


@pytest.mark.parametrize("nodes_of", [read_nodes, write_nodes])
def test_error_limited_nodes_are_skipped(nodes_of) -> None:  # type: ignore[no-untyped-def]
    ring = make_ring()
    part = 9
    errors = NodeErrors(10, 60.0, clock=FakeClock())
    primaries = ring.get_part_nodes(part)
    handoffs = list(ring.get_more_nodes(part))
    errors.limit_now(primaries[1])
    errors.limit_now(handoffs[0])
    nodes = list(nodes_of(fake_proxy(errors), ring, part))
    assert primaries[1] not in nodes and handoffs[0] not in nodes
    assert len(nodes) == 4
    assert nodes[2:] == handoffs[1:]


def test_handoffs_are_computed_only_when_needed() -> None:
    ring = make_ring()
    calls = []

    class CountingRing:
        def get_part_nodes(self, part: int):  # type: ignore[no-untyped-def]
            return ring.get_part_nodes(part)

        def get_more_nodes(self, part: int):  # type: ignore[no-untyped-def]
            calls.append(part)
            return ring.get_more_nodes(part)

    nodes = write_nodes(fake_proxy(), CountingRing(), 1)  # type: ignore[arg-type]
    for _ in range(3):
        next(nodes)
    assert calls == []
    next(nodes)
    assert calls == [1]
