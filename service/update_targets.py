"""The replicas a backend request asks its server to tell about a change.

A proxy names them in three headers, as Swift's do: ``X-<Kind>-Host`` (``ip:port`` list),
``X-<Kind>-Device`` (a list of the same length) and ``X-<Kind>-Partition``; the container
server reads ``X-Account-*`` (where to send its report), the object server
``X-Container-*``.  They are checked before the write, so a malformed list is a 400 and not
a lost update (Swift only logs a length mismatch, after the write).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.async_pending import Target
from service.errors import BadRequest
from service.names import check_device, parse_partition

MAX_TARGETS = 16  # far beyond any replica count: a bound on the fan-out, not a policy


@dataclass(frozen=True, slots=True)
class UpdateTargets:
    partition: int
    nodes: tuple[Target, ...]  # (ip, port, device)


def parse_update_targets(headers: Mapping[str, str], kind: str) -> UpdateTargets | None:
    """The ``kind`` ("Account", "Container") replicas to update, or None if none are named."""
    hosts_text = headers.get(f"X-{kind}-Host", "").strip()
    partition_text = headers.get(f"X-{kind}-Partition", "").strip()
    if not hosts_text or not partition_text:
        return None
    hosts = [h.strip() for h in hosts_text.split(",")]
    devices = [d.strip() for d in headers.get(f"X-{kind}-Device", "").split(",")]
    if len(hosts) != len(devices):
        raise BadRequest(f"X-{kind}-Host and X-{kind}-Device differ in length")
    if len(hosts) > MAX_TARGETS:
        raise BadRequest(f"more than {MAX_TARGETS} {kind.lower()} hosts")
    try:
        partition = parse_partition(partition_text)
        nodes = tuple(
            (*_host_port(h), check_device(d)) for h, d in zip(hosts, devices, strict=True)
        )
    except BadRequest as exc:
        raise BadRequest(f"Invalid {kind.lower()} update header: {exc.body}") from None
    return UpdateTargets(partition, nodes)


def _host_port(host: str) -> tuple[str, int]:
    ip, colon, port = host.rpartition(":")
    if not colon or not ip or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise BadRequest(f"Invalid host {host!r}")
    return ip.strip("[]"), int(port)  # "[::1]:6202" → "::1": the client brackets it again
