"""The offline RingBuilder: devices in, a balanced, dispersed RingData out.

Operators change devices (add, remove, set weight or info), then rebalance;
the builder keeps what the next rebalance needs in a ``BuilderState`` (saved
by ``ring.builderfile``).  Nothing here is read from the environment: the
clock is passed in so tests can move time.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ring import builderfile, plan, reports
from ring.assignment import count_parts, iter_part_devs
from ring.device import Device
from ring.errors import DuplicateDeviceError, RingValidationError, UnknownDeviceError
from ring.placement import check_part_power
from ring.rebalance import NEVER_MOVED, rebalance
from ring.state import NONE_DEV_ID, BuilderState, RingData, row_lengths
from ring.tiers import TierTree

INFO_FIELDS = (
    "region",
    "zone",
    "ip",
    "port",
    "replication_ip",
    "replication_port",
    "device",
    "meta",
)


@dataclass(frozen=True)
class RebalanceResult:
    parts_moved: int  # partition-replicas whose device changed
    balance: float
    dispersion: float
    removed_devices: int
    plan_reached: bool  # False: some device still holds more than it should


def check_replicas(replicas: float) -> float:
    replicas = float(replicas)
    if not 1.0 <= replicas < 1 << 16 or math.isnan(replicas):
        raise ValueError(f"replicas must be a number >= 1, not {replicas!r}")
    return replicas


def check_min_part_hours(hours: int) -> int:
    if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= NEVER_MOVED:
        raise ValueError(f"min_part_hours must be an integer in 0..{NEVER_MOVED}, not {hours!r}")
    return hours


def check_overload(overload: float) -> float:
    overload = float(overload)
    if not overload >= 0.0 or math.isinf(overload):
        raise ValueError(f"overload must be a finite number >= 0, not {overload!r}")
    return overload


class RingBuilder:
    def __init__(
        self,
        part_power: int,
        replicas: float,
        min_part_hours: int,
        *,
        overload: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        state = BuilderState(
            part_power=check_part_power(part_power),
            replicas=check_replicas(replicas),
            min_part_hours=check_min_part_hours(min_part_hours),
            overload=check_overload(overload),
            id=uuid.uuid4().hex,
        )
        self._init(state, clock)

    def _init(self, state: BuilderState, clock: Callable[[], float]) -> None:
        self.state = state
        self._clock = clock

    @classmethod
    def from_state(
        cls, state: BuilderState, *, clock: Callable[[], float] = time.time
    ) -> RingBuilder:
        builder = cls.__new__(cls)
        builder._init(state, clock)
        return builder

    @classmethod
    def load(cls, path: str, *, clock: Callable[[], float] = time.time) -> RingBuilder:
        return cls.from_state(builderfile.read(path), clock=clock)

    def save(self, path: str) -> None:
        builderfile.write(path, self.state)

    # -- plain properties ------------------------------------------------

    @property
    def part_power(self) -> int:
        return self.state.part_power

    @property
    def parts(self) -> int:
        return 1 << self.state.part_power

    @property
    def replicas(self) -> float:
        return self.state.replicas

    @property
    def min_part_hours(self) -> int:
        return self.state.min_part_hours

    @property
    def overload(self) -> float:
        return self.state.overload

    @property
    def version(self) -> int:
        return self.state.version

    @property
    def id(self) -> str:
        return self.state.id

    @property
    def devs_changed(self) -> bool:
        return self.state.devs_changed

    @property
    def ever_rebalanced(self) -> bool:
        return self.state.replica2part2dev is not None

    @property
    def dispersion(self) -> float | None:
        return self.state.dispersion

    # -- devices ----------------------------------------------------------

    def devices(self) -> Iterator[Device]:
        """Every device, including ones removed but not yet rebalanced away."""
        return (d for d in self.state.devices if d is not None)

    def is_removed(self, dev_id: int) -> bool:
        return dev_id in self.state.removed_dev_ids

    def device(self, dev_id: int) -> Device:
        devs = self.state.devices
        if (
            isinstance(dev_id, bool)
            or not isinstance(dev_id, int)
            or not 0 <= dev_id < len(devs)
            or devs[dev_id] is None
        ):
            raise UnknownDeviceError(f"no device with id {dev_id!r}")
        return devs[dev_id]

    def add_dev(
        self,
        *,
        region: int,
        zone: int,
        ip: str,
        port: int,
        device: str,
        weight: float,
        replication_ip: str | None = None,
        replication_port: int | None = None,
        meta: str = "",
        id: int | None = None,
    ) -> int:
        devs = self.state.devices
        if id is None:
            id = len(devs)  # ids are never reused within a builder
        elif 0 <= id < len(devs) and devs[id] is not None:
            raise DuplicateDeviceError(f"device id {id} is already in use")
        dev = Device(
            id=id,
            region=region,
            zone=zone,
            ip=ip,
            port=port,
            device=device,
            weight=weight,
            replication_ip=replication_ip or ip,
            replication_port=replication_port or port,
            meta=meta,
        )
        for other in self.devices():
            if (other.ip, other.port, other.device) == (
                dev.ip,
                dev.port,
                dev.device,
            ) and not self.is_removed(other.id):
                raise DuplicateDeviceError(
                    f"device {dev.ip}:{dev.port}/{dev.device} is already in the ring "
                    f"as id {other.id}"
                )
        devs.extend([None] * (id + 1 - len(devs)))
        devs[id] = dev
        self._changed()
        return id

    def remove_dev(self, dev_id: int) -> None:
        dev = self.device(dev_id)
        if self.is_removed(dev_id):
            raise UnknownDeviceError(f"device {dev_id} is already being removed")
        self.state.devices[dev_id] = dev.replace(weight=0.0)
        self.state.removed_dev_ids.append(dev_id)
        self._changed()

    def set_dev_weight(self, dev_id: int, weight: float) -> None:
        dev = self.device(dev_id)
        if self.is_removed(dev_id):
            raise UnknownDeviceError(f"device {dev_id} is being removed")
        self.state.devices[dev_id] = dev.replace(weight=weight)
        self._changed()

    def set_dev_info(self, dev_id: int, **changes) -> None:
        unknown = set(changes) - set(INFO_FIELDS)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} with set_info")
        new = self.device(dev_id).replace(**changes)
        for other in self.devices():
            if other.id != dev_id and (other.ip, other.port, other.device) == (
                new.ip,
                new.port,
                new.device,
            ):
                raise DuplicateDeviceError(
                    f"device {new.ip}:{new.port}/{new.device} is already in the ring "
                    f"as id {other.id}"
                )
        self.state.devices[dev_id] = new
        self._changed()

    def search_devs(self, **criteria) -> list[Device]:
        """Devices whose fields equal every given criterion (meta: substring)."""
        found = []
        for dev in self.devices():
            ok = True
            for name, value in criteria.items():
                have = getattr(dev, name)
                ok = value in have if name == "meta" else have == value
                if not ok:
                    break
            if ok:
                found.append(dev)
        return found

    # -- ring parameters ---------------------------------------------------

    def set_replicas(self, replicas: float) -> None:
        replicas = check_replicas(replicas)
        if row_lengths(self.part_power, replicas) != row_lengths(self.part_power, self.replicas):
            self.state.devs_changed = True
        self.state.replicas = replicas
        self.state.version += 1

    def set_overload(self, overload: float) -> None:
        self.state.overload = check_overload(overload)
        self.state.version += 1

    def set_min_part_hours(self, hours: int) -> None:
        self.state.min_part_hours = check_min_part_hours(hours)
        self.state.version += 1

    def _changed(self) -> None:
        self.state.devs_changed = True
        self.state.version += 1

    # -- rebalancing -------------------------------------------------------

    def rebalance(self, seed: int | None = None) -> RebalanceResult:
        rng = random.Random(seed)
        outcome = rebalance(self.state, now_s=self._clock(), rng=rng)
        self.state.devs_changed = False
        self.state.version += 1
        self.state.dispersion = self.dispersion_report().dispersion
        return RebalanceResult(
            outcome.parts_moved,
            self.get_balance(),
            self.state.dispersion,
            outcome.removed_devices,
            outcome.plan_reached,
        )

    def pretend_min_part_hours_passed(self) -> None:
        """Mark every partition as moved long ago, so the next rebalance may move any."""
        self.state.last_part_moves_epoch = 0
        if self.state.last_part_moves is not None:
            self.state.last_part_moves = bytearray([NEVER_MOVED]) * self.parts

    def min_part_seconds_left(self) -> int:
        if not self.ever_rebalanced:
            return 0
        elapsed = self._clock() - self.state.last_part_moves_epoch
        return max(int(self.min_part_hours * 3600 - elapsed), 0)

    # -- reports -----------------------------------------------------------

    def parts_held(self) -> Counter[int]:
        return count_parts(self.state.replica2part2dev or [])

    def device_balances(self) -> dict[int, float]:
        return reports.device_balances(self.devices(), self.parts_held(), self.parts, self.replicas)

    def get_balance(self) -> float:
        if not self.ever_rebalanced:
            return 0.0
        return reports.balance(self.devices(), self.parts_held(), self.parts, self.replicas)

    def get_required_overload(self) -> float:
        """The overload at which every tier gets its fully dispersed share."""
        live = [d for d in self.devices() if not self.is_removed(d.id)]
        return plan.build_plan(TierTree(live), self.replicas, self.overload).required_overload

    def dispersion_report(self, *, with_graph: bool = False) -> reports.DispersionReport:
        live = [d for d in self.devices() if not self.is_removed(d.id)]
        return reports.dispersion(
            live,
            self.state.replica2part2dev or [],
            self.part_power,
            self.replicas,
            with_graph=with_graph,
        )

    def validate(self) -> None:
        """Raise RingValidationError unless every partition-replica is on its own live device."""
        rows = self.state.replica2part2dev
        if rows is None:
            raise RingValidationError("the ring has never been rebalanced")
        lengths = row_lengths(self.part_power, self.replicas)
        if [len(r) for r in rows] != lengths:
            raise RingValidationError(
                f"assignment rows have lengths {[len(r) for r in rows]}, expected {lengths}"
            )
        devs = self.state.devices
        for part, dev_ids in iter_part_devs(rows, self.parts):
            for dev_id in dev_ids:
                if dev_id == NONE_DEV_ID or dev_id >= len(devs) or devs[dev_id] is None:
                    raise RingValidationError(f"partition {part} has a replica on no device")
            if len(set(dev_ids)) != len(dev_ids):
                raise RingValidationError(
                    f"partition {part} has two replicas on one device: {list(dev_ids)}"
                )

    def get_ring(self) -> RingData:
        rows = self.state.replica2part2dev
        if rows is None:
            raise RingValidationError("the ring has never been rebalanced")
        return RingData(
            part_power=self.part_power,
            replicas=self.replicas,
            devices=tuple(self.state.devices),
            replica2part2dev=tuple(array(r.typecode, r) for r in rows),
            version=self.version,
            builder_id=self.id,
        )
