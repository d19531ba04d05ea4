"""The plain data that the ring and builder files hold.

``RingData`` is what every server loads: devices and the
replica -> partition -> device table.  ``BuilderState`` is what the offline
builder keeps between runs so that a later rebalance can honour
``min_part_hours`` and move as little as possible.  Both are plain data: the
file formats (``ringfile``, ``builderfile``) encode and decode them, the
``Ring`` and ``RingBuilder`` classes give them behaviour.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from ring.device import Device

# Type code and "no device" marker of the assignment rows.  uint32 rows allow
# device ids up to 2**32 - 2; the marker only ever appears inside a rebalance.
DEV_ID_TYPECODE = "I"
NONE_DEV_ID = 0xFFFFFFFF
assert array(DEV_ID_TYPECODE).itemsize == 4


def row_lengths(part_power: int, replicas: float) -> list[int]:
    """Lengths of the assignment rows for a (possibly fractional) replica count.

    3.25 replicas over 256 partitions gives rows of 256, 256, 256 and 64: the
    first 64 partitions have four replicas, the rest three.
    """
    parts = 1 << part_power
    whole = int(replicas)
    lengths = [parts] * whole
    extra = int(parts * (replicas - whole))
    if extra:
        lengths.append(extra)
    return lengths


@dataclass(frozen=True)
class RingData:
    part_power: int
    replicas: float
    # Index = device id; None where an id is unused (removed device).
    devices: tuple[Device | None, ...]
    # One array(DEV_ID_TYPECODE) per replica; see row_lengths().
    replica2part2dev: tuple[array, ...]
    version: int = 0
    builder_id: str = ""


@dataclass
class BuilderState:
    part_power: int
    replicas: float
    min_part_hours: int
    overload: float = 0.0
    # Index = device id; None where an id is unused.
    devices: list[Device | None] = field(default_factory=list)
    # Devices removed since the last rebalance: still in ``devices`` (with
    # their partitions) until the rebalance moves everything off them.
    removed_dev_ids: list[int] = field(default_factory=list)
    # None until the first rebalance.
    replica2part2dev: list[array] | None = None
    # Hours since each partition last moved (255 = long ago), relative to
    # ``last_part_moves_epoch`` (seconds since the Unix epoch).
    last_part_moves: bytearray | None = None
    last_part_moves_epoch: int = 0
    last_gather_start: int = 0
    version: int = 0
    id: str = ""
    devs_changed: bool = False
    # Dispersion percentage as of the last rebalance (None before one).
    dispersion: float | None = None
