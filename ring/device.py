"""A device: one disk of one storage node, the unit partitions are placed on."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

# The placement tiers, widest failure domain first.  A partition's replicas are
# spread across regions, then zones, then hosts (ip), then devices.
TIER_NAMES = ("region", "zone", "host", "device")


def validate_ip(ip: str) -> str:
    """Return ``ip`` normalised; raise ``ValueError`` if it is not an address."""
    if not isinstance(ip, str):
        raise TypeError(f"an IP address must be a string, not {type(ip).__name__}")
    try:
        return str(ipaddress.ip_address(ip.strip("[]")))
    except ValueError:
        raise ValueError(f"invalid IP address {ip!r}") from None


def validate_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"invalid port {port!r}: must be an integer in 1..65535")
    return port


@dataclass(frozen=True, slots=True)
class Device:
    """One device.  Immutable: the builder replaces a device to change it.

    ``weight`` is relative: a device of weight 200 is meant to hold twice the
    partitions of one of weight 100.  ``meta`` is free text for operators.
    """

    id: int
    region: int
    zone: int
    ip: str
    port: int
    device: str
    weight: float
    replication_ip: str
    replication_port: int
    meta: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 0:
            raise ValueError(f"invalid device id {self.id!r}")
        for name in ("region", "zone"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"invalid {name} {value!r}: must be a non-negative integer")
        object.__setattr__(self, "ip", validate_ip(self.ip))
        object.__setattr__(self, "replication_ip", validate_ip(self.replication_ip))
        validate_port(self.port)
        validate_port(self.replication_port)
        for name in ("device", "meta"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"{name} must be a string, not {type(getattr(self, name)).__name__}"
                )
        if not self.device or "/" in self.device or self.device.strip() != self.device:
            raise ValueError(f"invalid device name {self.device!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float):
            raise TypeError(f"weight must be a number, not {type(self.weight).__name__}")
        weight = float(self.weight)
        if not weight >= 0.0 or weight == float("inf"):
            raise ValueError(f"invalid weight {self.weight!r}: must be a finite number >= 0")
        object.__setattr__(self, "weight", weight)

    @property
    def host(self) -> str:
        """The host tier's key.  Devices that share an IP share a failure domain."""
        return self.ip

    @property
    def tier(self) -> tuple[int, int, str, int]:
        """(region, zone, host, id): the device's path down the tier tree."""
        return (self.region, self.zone, self.ip, self.id)

    def replace(self, **changes: Any) -> Device:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Device:
        return cls(**data)
