"""Laws of the ring builder, checked with Hypothesis over random clusters."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ring.assignment import iter_part_devs
from ring.builder import RingBuilder
from ring.ring import Ring
from ring.state import NONE_DEV_ID

HOUR_S = 3600


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now_s


@st.composite
def layouts(draw, *, min_zones: int = 1, equal_zones_per_region: bool = False):
    """A cluster shape: list of (region, zone, host, device, weight)."""
    regions = draw(st.integers(1, 3))
    zones_each = draw(st.integers(1, 4))
    devices = []
    for region in range(regions):
        zones = zones_each if equal_zones_per_region else draw(st.integers(1, 4))
        for zone in range(zones):
            for host in range(draw(st.integers(1, 3))):
                for dev in range(draw(st.integers(1, 3))):
                    weight = draw(st.sampled_from([50.0, 100.0, 100.0, 200.0, 300.0]))
                    devices.append((region, zone, host, dev, weight))
    assume(len({(r, z) for r, z, *_ in devices}) >= min_zones)
    return devices


def build(
    layout,
    *,
    part_power: int,
    replicas: float,
    min_part_hours: int = 1,
    overload: float = 0.0,
    clock=None,
) -> RingBuilder:
    builder = RingBuilder(
        part_power, replicas, min_part_hours, overload=overload, clock=clock or Clock()
    )
    for region, zone, host, dev, weight in layout:
        builder.add_dev(
            region=region,
            zone=zone,
            ip=f"10.{region}.{zone}.{host}",
            port=6200,
            device=f"sd{'abc'[dev]}",
            weight=weight,
        )
    return builder


def replicas_of(builder: RingBuilder) -> list[tuple[int, ...]]:
    return [devs for _part, devs in iter_part_devs(builder.state.replica2part2dev, builder.parts)]


replica_counts = st.sampled_from([1.0, 2.0, 3.0, 3.0, 2.5, 3.25])


@given(layouts(), replica_counts, st.integers(4, 9), st.integers(0, 2**32 - 1))
def test_every_partition_has_replicas_distinct_devices(layout, replicas, part_power, seed):
    assume(sum(1 for *_, w in layout if w) >= math.ceil(replicas))
    builder = build(layout, part_power=part_power, replicas=replicas)
    builder.rebalance(seed=seed)
    builder.validate()
    rows = builder.state.replica2part2dev
    whole = int(replicas)
    for part, devs in enumerate(replicas_of(builder)):
        expected = whole + (1 if part < len(rows[-1]) and len(rows) > whole else 0)
        assert len(devs) == expected
        assert NONE_DEV_ID not in devs
        assert len(set(devs)) == len(devs), f"partition {part} twice on a device: {devs}"


@given(
    layouts(min_zones=3, equal_zones_per_region=True), st.integers(4, 9), st.integers(0, 2**32 - 1)
)
def test_no_zone_holds_two_replicas_when_there_are_enough_zones(layout, part_power, seed):
    # With the overload it requires, dispersion wins over weight, as an
    # operator sets it when a zone is heavier than a third of the cluster.
    builder = build(layout, part_power=part_power, replicas=3)
    builder.set_overload(builder.get_required_overload())
    builder.rebalance(seed=seed)
    zone_of = {d.id: (d.region, d.zone) for d in builder.devices()}
    for part, devs in enumerate(replicas_of(builder)):
        zones = Counter(zone_of[d] for d in devs)
        assert max(zones.values()) == 1, f"partition {part}: {zones}"


@st.composite
def small_layouts_and_replicas(draw):
    """Few devices anywhere, weights far apart, replicas up to the device count.

    Where ``layouts()`` draws clusters of many devices, this draws the tight
    corners: one device per region, a region much lighter than the others,
    as many replicas as devices.
    """
    count = draw(st.integers(1, 7))
    layout = [
        (
            draw(st.integers(0, 3)),
            draw(st.integers(0, 2)),
            draw(st.integers(0, 2)),
            dev,
            draw(st.floats(0.5, 5000.0)),
        )
        for dev in range(count)
    ]
    whole = draw(st.integers(1, count))
    fraction = draw(st.sampled_from([0.0, 0.0, 0.25, 0.5])) if whole < count else 0.0
    return layout, whole + fraction


@given(
    small_layouts_and_replicas(),
    st.integers(0, 8),
    st.sampled_from([0.0, 0.0, 0.1, 10.0]),
    st.integers(0, 2**32 - 1),
)
def test_any_layout_with_enough_devices_rebalances(layout_replicas, part_power, overload, seed):
    # Swift's builder places any ring with replicas <= devices (dispersion
    # may suffer); so must ours.
    layout, replicas = layout_replicas
    builder = RingBuilder(part_power, replicas, 1, overload=overload, clock=Clock())
    for region, zone, host, dev, weight in layout:
        builder.add_dev(
            region=region,
            zone=zone,
            ip=f"10.{region}.{zone}.{host}",
            port=6200,
            device=f"sd{dev}",
            weight=weight,
        )
    builder.rebalance(seed=seed)
    builder.validate()
    rows = builder.state.replica2part2dev
    whole = int(replicas)
    for part, devs in enumerate(replicas_of(builder)):
        expected = whole + (1 if part < len(rows[-1]) and len(rows) > whole else 0)
        assert len(devs) == expected
        assert NONE_DEV_ID not in devs
        assert len(set(devs)) == len(devs), f"partition {part} twice on a device: {devs}"


@st.composite
def balanceable(draw):
    """One region, >= 3 zones of equal weight; weights vary inside each zone."""
    zones = draw(st.integers(3, 5))
    per_zone = draw(st.integers(1, 4))
    weights = [draw(st.sampled_from([100.0, 200.0, 300.0])) for _ in range(per_zone)]
    layout = []
    for zone in range(zones):
        order = draw(st.permutations(weights))
        for dev, weight in enumerate(order):
            layout.append((0, zone, dev, 0, weight))
    return layout


@settings(max_examples=40)
@given(balanceable(), st.integers(0, 2**32 - 1))
def test_balance_within_one_percent_when_weights_allow(layout, seed):
    # Enough partitions that one partition-replica is under 1% of any
    # device's share, and zones no heavier than a third: weight alone decides.
    builder = build(layout, part_power=12, replicas=3)
    total = sum(w for *_, w in layout)
    assert min(w for *_, w in layout) / total * builder.parts * 3 >= 100
    result = builder.rebalance(seed=seed)
    assert result.balance <= 1.0, builder.device_balances()
    assert result.plan_reached


@st.composite
def changes(draw):
    """A list of builder changes to apply between two rebalances."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["add", "weight", "remove"]),
                st.integers(0, 1000),
                st.sampled_from([0.0, 50.0, 400.0]),
            ),
            min_size=1,
            max_size=4,
        )
    )


def apply_changes(builder: RingBuilder, steps, replicas: float) -> set[int]:
    """Apply ``steps``; return the ids of devices removed."""
    removed: set[int] = set()
    for kind, pick, weight in steps:
        live = [d for d in builder.devices() if not builder.is_removed(d.id)]
        dev = live[pick % len(live)]
        weighted_after = sum(1 for d in live if d.weight and d.id != dev.id)
        if kind == "add":
            builder.add_dev(
                region=dev.region,
                zone=dev.zone + 10,
                ip="10.9.9.9",
                port=6200,
                device=f"new{len(builder.state.devices)}",
                weight=weight or 100.0,
            )
        elif kind == "weight" and (weight or weighted_after >= replicas):
            builder.set_dev_weight(dev.id, weight)
        elif kind == "remove" and weighted_after >= replicas:
            builder.remove_dev(dev.id)
            removed.add(dev.id)
    return removed


def moved_replicas(
    before: list[tuple[int, ...]], after: list[tuple[int, ...]], removed: set[int]
) -> list[int]:
    """Per partition, replicas that moved for a reason other than a removed device."""
    counts = []
    for old, new in zip(before, after, strict=True):
        gone = [d for d in old if d not in new]
        counts.append(sum(1 for d in gone if d not in removed))
    return counts


@given(layouts(min_zones=3), changes(), st.integers(0, 2**32 - 1))
def test_min_part_hours_is_honoured_across_rebalances(layout, steps, seed):
    clock = Clock()
    builder = build(layout, part_power=7, replicas=3, min_part_hours=2, clock=clock)
    assume(sum(1 for *_, w in layout if w) >= 4)
    builder.rebalance(seed=seed)
    # Within min_part_hours: nothing moves except off removed devices.
    first = replicas_of(builder)
    clock.now_s += HOUR_S
    removed = apply_changes(builder, steps, 3)
    builder.rebalance(seed=seed + 1)
    second = replicas_of(builder)
    assert max(moved_replicas(first, second, removed)) == 0
    # Once min_part_hours passed, a partition still moves one replica at most
    # (plus what sat on removed devices), and the ones moved above wait again.
    clock.now_s += 2 * HOUR_S
    removed = apply_changes(builder, steps, 3)
    builder.rebalance(seed=seed + 2)
    third = replicas_of(builder)
    assert max(moved_replicas(second, third, removed)) <= 1
    builder.validate()


@given(layouts(), st.integers(4, 8), st.integers(0, 2**32 - 1), st.data())
def test_handoffs_never_repeat_primaries(layout, part_power, seed, data):
    assume(sum(1 for *_, w in layout if w) >= 3)
    builder = build(layout, part_power=part_power, replicas=3)
    builder.rebalance(seed=seed)
    ring = Ring(builder.get_ring(), hash_secret=b"secret")
    part = data.draw(st.integers(0, builder.parts - 1))
    primaries = ring.get_part_nodes(part)
    handoffs = list(ring.get_more_nodes(part))
    ids = [d.id for d in primaries + handoffs]
    assert len(ids) == len(set(ids))
    weighted = {d.id for d in builder.devices() if d.weight}
    assert set(ids) == weighted | {d.id for d in primaries}


@given(layouts(), replica_counts, st.integers(0, 2**32 - 1))
def test_same_seed_same_ring(layout, replicas, seed):
    assume(sum(1 for *_, w in layout if w) >= math.ceil(replicas))
    one = build(layout, part_power=8, replicas=replicas)
    two = build(layout, part_power=8, replicas=replicas)
    one.rebalance(seed=seed)
    two.rebalance(seed=seed)
    assert one.state.replica2part2dev == two.state.replica2part2dev
    # ...and after a change, the same again.
    for builder in (one, two):
        builder.pretend_min_part_hours_passed()
        builder.set_dev_weight(0, 500.0)
    one.rebalance(seed=seed)
    two.rebalance(seed=seed)
    assert one.state.replica2part2dev == two.state.replica2part2dev
