"""The runtime ring: which devices hold a name, primaries first, then handoffs.

A ``Ring`` is immutable and built once per ring file load; every request asks
it ``get_nodes`` on its hot path, so lookups avoid per-call work beyond the
result list.  The hash secret comes from the cluster config, never from the
ring file.

Handoffs (``get_more_nodes``) use weighted rendezvous hashing, not Swift's
walk over the ring rows: each weighted device gets a score for the partition,
``weight / -ln(u)`` with ``u`` uniform in (0, 1) from xxh3_64 of
``(partition, device id)``.  Sorting by score gives an order in which each
device comes first with probability proportional to its weight, and adding or
removing a device does not reorder the others.  That order is then walked in
passes that prefer unused regions, zones and hosts.  Known cost: every call
scores every weighted device (O(devices)), which is fine for hundreds of
devices and is only paid when a primary fails.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import xxhash

from ring import ringfile
from ring.device import Device
from ring.errors import RingValidationError
from ring.placement import encode_path, partition_of_path
from ring.state import RingData

# Seed of the handoff score hash.  Part of the handoff order: changing it
# reshuffles every partition's handoffs across the cluster.
HANDOFF_SEED = 0x746F727573686F66  # b"torushof"
_U_BITS = 53  # a double holds 53 bits exactly


def handoff_score(part: int, dev_id: int, weight: float) -> float:
    """The rendezvous score of one device for one partition (higher goes first).

    ``u`` takes the top 53 bits of the hash plus one half, so it is never 0
    or 1 and ``-ln(u)`` is always finite and positive.
    """
    key = part.to_bytes(4, "little") + dev_id.to_bytes(4, "little")
    u = ((xxhash.xxh3_64_intdigest(key, HANDOFF_SEED) >> (64 - _U_BITS)) + 0.5) / (1 << _U_BITS)
    return weight / -math.log(u)


class Ring:
    """Partition -> devices for one ring file, plus the hash that finds partitions."""

    __slots__ = (
        "_data_version",
        "_part_power",
        "_partition_count",
        "_replica_count",
        "_devices",
        "_full_rows",
        "_short_row",
        "_short_len",
        "_dup_parts",
        "_secret",
        "_weighted",
        "_weighted_keys",
        "_tier_counts",
    )

    def __init__(self, ring_data: RingData, hash_secret: bytes, *, checked: bool = False) -> None:
        """``checked``: ``ring_data`` already passed ``ringfile.check_ring_data``
        (``ringfile.read`` runs it), so loading skips a second pass over the rows."""
        if not isinstance(hash_secret, bytes):
            raise TypeError(f"hash_secret must be bytes, not {type(hash_secret).__name__}")
        if not hash_secret:
            raise ValueError("hash_secret must not be empty")
        if not checked:
            ringfile.check_ring_data(ring_data, RingValidationError)
        init = super().__setattr__
        count = 1 << ring_data.part_power
        # Copies into bytes: nobody holding the RingData's arrays can change us.
        rows = [memoryview(bytes(row)).cast("I") for row in ring_data.replica2part2dev]
        short = rows[-1] if rows and len(rows[-1]) < count else None
        devices = tuple(ring_data.devices)
        init("_data_version", ring_data.version)
        init("_part_power", ring_data.part_power)
        init("_partition_count", count)
        init("_replica_count", float(ring_data.replicas))
        init("_devices", devices)
        init("_full_rows", tuple(rows[:-1] if short is not None else rows))
        init("_short_row", short)
        init("_short_len", 0 if short is None else len(short))
        init("_dup_parts", _parts_with_duplicate_devices(rows))
        init("_secret", hash_secret)
        # The devices that may take handoffs, and their (weight, id bytes) for scoring.
        weighted = tuple(dev for dev in devices if dev is not None and dev.weight > 0)
        init("_weighted", weighted)
        init(
            "_weighted_keys", tuple((dev.weight, dev.id.to_bytes(4, "little")) for dev in weighted)
        )
        init("_tier_counts", _tier_counts(devices))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @classmethod
    def load(cls, path: str | os.PathLike[str], hash_secret: bytes) -> Ring:
        return cls(ringfile.read(path), hash_secret, checked=True)

    @property
    def part_power(self) -> int:
        return self._part_power

    @property
    def partition_count(self) -> int:
        return self._partition_count

    @property
    def replica_count(self) -> float:
        return self._replica_count

    @property
    def devices(self) -> tuple[Device | None, ...]:
        """Indexed by device id; None where an id is unused."""
        return self._devices

    @property
    def version(self) -> int:
        return self._data_version

    def get_part(
        self,
        account: str | bytes,
        container: str | bytes | None = None,
        obj: str | bytes | None = None,
    ) -> int:
        """The partition of ``/account[/container[/object]]``."""
        return partition_of_path(
            self._secret, encode_path(account, container, obj), self._part_power
        )

    def get_part_nodes(self, part: int) -> list[Device]:
        """The primaries of ``part`` in replica order (each device once)."""
        if not 0 <= part < self._partition_count:
            raise ValueError(f"partition {part!r} out of range 0..{self._partition_count - 1}")
        return self._part_nodes(part)

    def _part_nodes(self, part: int) -> list[Device]:
        devices = self._devices
        nodes = [devices[row[part]] for row in self._full_rows]
        if part < self._short_len:
            nodes.append(devices[self._short_row[part]])
        if part in self._dup_parts:
            # Fewer devices than replicas: a device holds several replicas.
            nodes = list({id(dev): dev for dev in nodes}.values())
        return nodes  # type: ignore[return-value]  # rows never name a hole

    def get_nodes(
        self,
        account: str | bytes,
        container: str | bytes | None = None,
        obj: str | bytes | None = None,
    ) -> tuple[int, list[Device]]:
        """The partition of a name and its primaries."""
        # placement's function rather than an inlined hash: one definition of
        # the placement hash is worth more than the ~25 ns inlining saved.
        part = partition_of_path(
            self._secret, encode_path(account, container, obj), self._part_power
        )
        return part, self._part_nodes(part)

    def get_more_nodes(self, part: int) -> Iterator[Device]:
        """Handoffs of ``part``: every weighted non-primary device once, lazily.

        Order: rendezvous score, walked in passes that take devices in a
        region, then a zone, then a host not yet used by the primaries or by
        earlier handoffs; the last pass takes the rest.
        """
        primaries = self.get_part_nodes(part)
        return self._handoffs(part, primaries)

    def _handoffs(self, part: int, primaries: list[Device]) -> Iterator[Device]:
        part_bytes = part.to_bytes(4, "little")
        hash64, log, shift = xxhash.xxh3_64_intdigest, math.log, 64 - _U_BITS
        scale = 1.0 / (1 << _U_BITS)
        # Same formula as handoff_score(), inlined: this line is most of the cost.
        scores = [
            weight / -log(((hash64(part_bytes + id_bytes, HANDOFF_SEED) >> shift) + 0.5) * scale)
            for weight, id_bytes in self._weighted_keys
        ]
        # Ties (vanishingly rare) keep device id order: sorted() is stable.
        by_score = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        weighted = self._weighted
        primary_ids = {dev.id for dev in primaries}
        order: list[Device | None] = [
            dev for dev in map(weighted.__getitem__, by_score) if dev.id not in primary_ids
        ]
        used = (
            {dev.region for dev in primaries},
            {(dev.region, dev.zone) for dev in primaries},
            {(dev.region, dev.zone, dev.ip) for dev in primaries},
        )
        counts = self._tier_counts
        for tier in range(4):
            if tier < 3 and len(used[tier]) >= counts[tier]:
                continue  # every region (zone, host) is used: this pass finds nothing
            for index, dev in enumerate(order):
                if dev is None or (tier < 3 and _tier_key(dev, tier) in used[tier]):
                    continue
                order[index] = None
                used[0].add(dev.region)
                used[1].add((dev.region, dev.zone))
                used[2].add((dev.region, dev.zone, dev.ip))
                yield dev
                if tier < 3 and len(used[tier]) >= counts[tier]:
                    break


def _tier_key(dev: Device, tier: int) -> Any:
    if tier == 0:
        return dev.region
    if tier == 1:
        return (dev.region, dev.zone)
    return (dev.region, dev.zone, dev.ip)


def _tier_counts(devices: tuple[Device | None, ...]) -> tuple[int, int, int]:
    """How many regions, zones and hosts the ring has (for skipping empty passes)."""
    present = [dev for dev in devices if dev is not None]
    return (
        len({dev.region for dev in present}),
        len({(dev.region, dev.zone) for dev in present}),
        len({(dev.region, dev.zone, dev.ip) for dev in present}),
    )


def _parts_with_duplicate_devices(rows: list[memoryview]) -> frozenset[int]:
    """Partitions whose replicas name one device twice (normally none).

    Comparing rows pairwise runs in C, so load time stays small; lookups
    then dedupe only the partitions found here.
    """
    dups: set[int] = set()
    for first, second in combinations(rows, 2):
        # The short last row pairs with the start of the others (strict=False).
        if any(map(operator.eq, first, second)):
            dups.update(p for p, (a, b) in enumerate(zip(first, second, strict=False)) if a == b)
    return frozenset(dups)
