"""The runtime Ring: partitions of names, primaries, and the handoff order."""

from __future__ import annotations

import random
from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ring_helpers import make_dev

from ring import ringfile
from ring.device import Device
from ring.errors import RingValidationError
from ring.placement import encode_path, partition_of_path
from ring.ring import Ring, handoff_score
from ring.state import RingData, row_lengths

SECRET = b"cluster-secret"


def topology_devices(weight_of: dict[int, float] | None = None) -> list[Device]:
    """3 regions x 2 zones x 2 hosts x 2 devices = 24 devices; id = r*8 + z*4 + h*2 + d."""
    weight_of = weight_of or {}
    return [
        make_dev(i, region=i // 8, zone=i // 4 % 2, host=i // 2 % 2, weight=weight_of.get(i, 100))
        for i in range(24)
    ]


def make_ring(
    devices: Iterable[Device | None],
    rows: list[list[int]],
    part_power: int,
    replicas: float | None = None,
    secret: bytes = SECRET,
) -> Ring:
    replicas = float(len(rows)) if replicas is None else replicas
    data = RingData(part_power, replicas, tuple(devices), tuple(array("I", r) for r in rows))
    return Ring(data, secret)


def spread_ring_data(
    part_power: int = 6, replicas: int = 3, seed: int = 1, weight_of: dict[int, float] | None = None
) -> RingData:
    """The 24-device topology with each partition on ``replicas`` random distinct devices."""
    rng = random.Random(seed)
    picks = [rng.sample(range(24), replicas) for _ in range(1 << part_power)]
    rows = tuple(array("I", [pick[r] for pick in picks]) for r in range(replicas))
    return RingData(part_power, float(replicas), tuple(topology_devices(weight_of)), rows)


def spread_ring(
    part_power: int = 6, replicas: int = 3, seed: int = 1, weight_of: dict[int, float] | None = None
) -> Ring:
    return Ring(spread_ring_data(part_power, replicas, seed, weight_of), SECRET)


# -- partitions --------------------------------------------------------------------------

utf8_names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(account=utf8_names, container=utf8_names, obj=utf8_names)
def test_get_part_is_the_placement_hash(account: str, container: str, obj: str) -> None:
    ring = spread_ring()
    path = encode_path(account, container, obj)
    assert ring.get_part(account, container, obj) == partition_of_path(SECRET, path, 6)
    assert ring.get_part(account, container) == partition_of_path(
        SECRET, encode_path(account, container), 6
    )
    assert ring.get_part(account.encode(), container.encode(), obj.encode()) == ring.get_part(
        account, container, obj
    )


def test_same_name_same_partition_across_loads(tmp_path: Path) -> None:
    ring = spread_ring()
    path = tmp_path / "object.ring"
    ringfile.write(path, spread_ring_data())
    loaded = Ring.load(path, SECRET)
    for i in range(200):
        name = ("AUTH_a", "c", f"o{i}")
        assert ring.get_part(*name) == ring.get_part(*name) == loaded.get_part(*name)
        assert ring.get_nodes(*name) == loaded.get_nodes(*name)


def test_different_secrets_place_differently() -> None:
    devices = [make_dev(0)]
    one = make_ring(devices, [[0] * 65536], 16, secret=b"one")
    two = make_ring(devices, [[0] * 65536], 16, secret=b"two")
    same = sum(
        one.get_part("a", "c", f"o{i}") == two.get_part("a", "c", f"o{i}") for i in range(1000)
    )
    assert same < 10  # independent hashes agree on ~1000/65536 names


def test_partitions_spread_over_the_ring() -> None:
    ring = make_ring([make_dev(0)], [[0] * 16], 4)
    counts = Counter(ring.get_part("AUTH_a", "c", f"o{i}") for i in range(16000))
    assert len(counts) == 16
    assert all(800 < count < 1200 for count in counts.values())


# -- primaries ---------------------------------------------------------------------------


def test_get_nodes_in_replica_order() -> None:
    ring = spread_ring()
    for i in range(100):
        part, nodes = ring.get_nodes("AUTH_a", "c", f"o{i}")
        assert part == ring.get_part("AUTH_a", "c", f"o{i}")
        assert nodes == ring.get_part_nodes(part)
    devices = topology_devices()
    ring = make_ring(devices, [[5, 6], [7, 1], [2, 3]], 1)
    assert ring.get_part_nodes(0) == [devices[5], devices[7], devices[2]]
    assert ring.get_part_nodes(1) == [devices[6], devices[1], devices[3]]


def test_fractional_replicas() -> None:
    """2.5 replicas over 4 partitions: partitions 0 and 1 have 3 primaries, 2 and 3 have 2."""
    devices = topology_devices()
    rows = [[0, 1, 2, 3], [8, 9, 10, 11], [16, 17]]
    assert [len(r) for r in rows] == row_lengths(2, 2.5)
    ring = make_ring(devices, rows, 2, replicas=2.5)
    assert ring.replica_count == 2.5
    assert [len(ring.get_part_nodes(p)) for p in range(4)] == [3, 3, 2, 2]
    assert ring.get_part_nodes(1) == [devices[1], devices[9], devices[17]]
    assert ring.get_part_nodes(3) == [devices[3], devices[11]]


def test_a_device_holding_two_replicas_is_listed_once() -> None:
    devices = [make_dev(0), make_dev(1)]
    ring = make_ring(devices, [[0, 1], [1, 1], [0, 0]], 1)
    assert ring.get_part_nodes(0) == [devices[0], devices[1]]
    assert ring.get_part_nodes(1) == [devices[1], devices[0]]


@pytest.mark.parametrize("part", [-1, 64, 2**40])
def test_partition_out_of_range(part: int) -> None:
    ring = spread_ring()
    with pytest.raises(ValueError, match="out of range"):
        ring.get_part_nodes(part)
    with pytest.raises(ValueError, match="out of range"):
        ring.get_more_nodes(part)


def test_properties_and_holes() -> None:
    devices = [make_dev(0), None, make_dev(2)]
    ring = Ring(
        RingData(3, 2.0, tuple(devices), (array("I", [0] * 8), array("I", [2] * 8)), version=9),
        SECRET,
    )
    assert ring.part_power == 3
    assert ring.partition_count == 8
    assert ring.replica_count == 2.0
    assert isinstance(ring.replica_count, float)
    assert ring.devices == tuple(devices)
    assert ring.version == 9


def test_ring_is_immutable() -> None:
    rows = (array("I", [0, 1]),)
    data = RingData(1, 1.0, (make_dev(0), make_dev(1)), rows)
    ring = Ring(data, SECRET)
    rows[0][0] = 1  # changing the data afterwards does not change the ring
    assert ring.get_part_nodes(0)[0].id == 0
    with pytest.raises(AttributeError):
        ring.part_power = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ring._devices = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ring.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        ring._full_rows[0][0] = 1  # the rows are read-only views
    assert isinstance(ring.devices, tuple)


def test_invalid_ring_data_is_refused() -> None:
    data = RingData(1, 1.0, (make_dev(0),), (array("I", [0, 3]),))
    with pytest.raises(RingValidationError, match="unknown device ids"):
        Ring(data, SECRET)


def test_secret_must_be_nonempty_bytes() -> None:
    data = RingData(0, 1.0, (make_dev(0),), (array("I", [0]),))
    with pytest.raises(TypeError):
        Ring(data, "secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Ring(data, b"")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (("",), ValueError),
        (("a", ""), ValueError),
        (("a", "c", ""), ValueError),
        (("a", None, "o"), ValueError),
        ((b"\xff\xfe",), ValueError),
        (("a", "\ud800"), ValueError),
        ((5,), TypeError),
        (("a", 5), TypeError),
    ],
)
def test_bad_names_raise(name: tuple, error: type[Exception]) -> None:
    ring = spread_ring()
    with pytest.raises(error):
        ring.get_part(*name)
    with pytest.raises(error):
        ring.get_nodes(*name)


# -- handoffs ------------------------------------------------------------------------------


def novelty(dev: Device, used: tuple[set, set, set]) -> int:
    """0: new region, 1: new zone, 2: new host, 3: nothing new."""
    if dev.region not in used[0]:
        return 0
    if (dev.region, dev.zone) not in used[1]:
        return 1
    if (dev.region, dev.zone, dev.ip) not in used[2]:
        return 2
    return 3


def check_handoff_order(ring: Ring, part: int) -> list[Device]:
    """Check the whole handoff sequence of ``part`` against its definition; return it.

    Each handoff must be the best-scored of the devices left that add the widest new
    failure domain (region, else zone, else host, else any).
    """
    primaries = ring.get_part_nodes(part)
    handoffs = list(ring.get_more_nodes(part))
    candidates = {d.id: d for d in ring.devices if d and d.weight > 0 and d not in primaries}
    assert sorted(d.id for d in handoffs) == sorted(candidates)  # each exactly once
    used: tuple[set, set, set] = (set(), set(), set())
    for dev in [*primaries, *handoffs]:
        if dev in handoffs:
            best = min(novelty(c, used) for c in candidates.values())
            assert novelty(dev, used) == best, (part, dev)
            same_tier = [c for c in candidates.values() if novelty(c, used) == best]
            top = max(same_tier, key=lambda c: (handoff_score(part, c.id, c.weight), -c.id))
            assert dev == top, (part, dev, top)
            del candidates[dev.id]
        used[0].add(dev.region)
        used[1].add((dev.region, dev.zone))
        used[2].add((dev.region, dev.zone, dev.ip))
    return handoffs


def test_handoffs_prefer_unused_regions_then_zones_then_hosts() -> None:
    """Primaries on region 0: (zone 0, host 0), (zone 0, host 1), (zone 1, host 0)."""
    devices = topology_devices()
    ring = make_ring(devices, [[0], [2], [4]], 0)
    handoffs = list(ring.get_more_nodes(0))
    tiers = [(d.region, d.zone, d.ip) for d in handoffs]
    # Pass 1: one device in each of regions 1 and 2.
    assert sorted(t[0] for t in tiers[:2]) == [1, 2]
    # Pass 2: the other zone of regions 1 and 2 (region 0's zones are both used).
    assert {t[:2] for t in tiers[2:4]} == {(1, 0), (1, 1), (2, 0), (2, 1)} - set(
        t[:2] for t in tiers[:2]
    )
    # Pass 3: the five hosts that neither the primaries nor the first handoffs use.
    all_hosts = {(d.region, d.zone, d.ip) for d in devices}
    primary_hosts = {(0, 0, "10.0.0.0"), (0, 0, "10.0.0.1"), (0, 1, "10.0.1.0")}
    assert sorted(tiers[4:9]) == sorted(all_hosts - primary_hosts - set(tiers[:4]))
    # Pass 4: the remaining 12 devices.
    assert len(handoffs) == 21
    check_handoff_order(ring, 0)


@given(part=st.integers(0, 63), seed=st.integers(0, 3))
def test_handoffs_follow_the_definition(part: int, seed: int) -> None:
    weights = {3: 0.0, 9: 0.0, 10: 250.0, 17: 1.5}  # zero weights, uneven weights
    check_handoff_order(spread_ring(seed=seed, weight_of=weights), part)


@given(part=st.integers(0, 255), replicas=st.integers(1, 5))
def test_handoffs_never_repeat_or_include_primaries(part: int, replicas: int) -> None:
    ring = spread_ring(part_power=8, replicas=replicas, weight_of={0: 0.0, 1: 0.0})
    primaries = ring.get_part_nodes(part)
    handoffs = list(ring.get_more_nodes(part))
    ids = [d.id for d in handoffs]
    assert len(ids) == len(set(ids))
    assert not set(ids) & {d.id for d in primaries}
    assert 0 not in ids and 1 not in ids
    assert len(ids) == 22 - len({d.id for d in primaries} - {0, 1})


def test_zero_weight_devices_are_never_handoffs() -> None:
    devices = [make_dev(0, weight=0), make_dev(1), make_dev(2, weight=0), make_dev(3)]
    ring = make_ring(devices, [[0, 1, 3, 2]], 2)
    assert sorted(d.id for d in ring.get_more_nodes(0)) == [1, 3]
    for part in range(4):
        handoffs = {d.id for d in ring.get_more_nodes(part)}
        assert handoffs == {1, 3} - {ring.get_part_nodes(part)[0].id}


def test_handoffs_are_deterministic_and_an_iterator() -> None:
    one, two = spread_ring(seed=5), spread_ring(seed=5)
    for part in range(64):
        assert list(one.get_more_nodes(part)) == list(two.get_more_nodes(part))
    handoffs = one.get_more_nodes(0)
    assert iter(handoffs) is handoffs
    first = next(handoffs)
    assert first not in one.get_part_nodes(0)


def one_host_ring(device_ids: list[int], weights: dict[int, float] | None = None) -> Ring:
    """Every device on one host, so the handoff order is the plain rendezvous order."""
    weights = weights or {}
    devices: list[Device | None] = [None] * (max(device_ids) + 1)
    for i in device_ids:
        devices[i] = make_dev(i, weight=weights.get(i, 100))
    return make_ring(devices, [[device_ids[0]] * 64], 6)


def test_adding_or_removing_a_device_keeps_the_others_in_order() -> None:
    ids = list(range(20))
    before = one_host_ring(ids)
    removed = one_host_ring([i for i in ids if i != 7])
    added = one_host_ring([*ids, 20, 21])
    for part in range(64):
        order = [d.id for d in before.get_more_nodes(part)]
        assert [d.id for d in removed.get_more_nodes(part)] == [i for i in order if i != 7]
        assert [d.id for d in added.get_more_nodes(part) if d.id < 20] == order


def test_first_handoff_is_weight_proportional() -> None:
    """Device 0 is the primary; devices 1 (weight 100) and 2 (weight 300) compete."""
    ring = one_host_ring([0, 1, 2], weights={1: 100.0, 2: 300.0})
    ring = make_ring(ring.devices, [[0] * 4096], 12)
    firsts = Counter(next(ring.get_more_nodes(part)).id for part in range(4096))
    assert 0.72 < firsts[2] / 4096 < 0.78  # expect 0.75; ~0.7% standard deviation


def test_handoff_score() -> None:
    assert handoff_score(5, 3, 100.0) > 0
    assert handoff_score(5, 3, 200.0) == pytest.approx(2 * handoff_score(5, 3, 100.0))
    assert handoff_score(5, 3, 100.0) != handoff_score(6, 3, 100.0)
    assert handoff_score(5, 3, 100.0) != handoff_score(5, 4, 100.0)
    assert handoff_score(2**32 - 1, 2**32 - 2, 1.0) > 0
