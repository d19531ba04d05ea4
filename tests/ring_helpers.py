"""Helpers shared by the ring tests (importable because pyproject puts tests/ on the path)."""

from __future__ import annotations

from ring.device import Device


def make_dev(
    dev_id: int,
    region: int = 0,
    zone: int = 0,
    weight: float = 100.0,
    meta: str = "",
    host: int | None = None,
) -> Device:
    """A device with every field filled; one host per device unless ``host`` says otherwise."""
    ip = f"10.{region}.{zone}.{dev_id % 250 + 1 if host is None else host}"
    return Device(
        id=dev_id,
        region=region,
        zone=zone,
        ip=ip,
        port=6200 + dev_id,
        device=f"sd{dev_id}",
        weight=weight,
        replication_ip=ip,
        replication_port=6300 + dev_id,
        meta=meta,
    )
