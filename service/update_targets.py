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


# -- the expirer's queue: where an object with an X-Delete-At is recorded -------------------
#
# Swift's layout: a hidden account, one container per time bucket (the delete-at time rounded
# down to a day), one row per object named ``<delete_at: 10 digits>-<account>/<container>/
# <object>``, so a bucket's rows list in delete-at order.  The proxy places the bucket in the
# container ring (``X-Delete-At-Container/-Host/-Device/-Partition``); the object server sends
# the row there (objectd/container_update.py); the expirer lists due buckets
# (replicator/object_expirer*.py).  One module knows the names, so the three cannot disagree.

EXPIRING_ACCOUNT = ".expiring_objects"  # a leading dot: no client reaches it (proxy/authz.py)
EXPIRING_DIVISOR_S = 86400  # Swift's expiring_objects_container_divisor: a bucket a day
DELETE_AT_DIGITS = 10  # X-Delete-At is at most 9,999,999,999 (objectd/http_headers.py)


def expiring_container(delete_at: int) -> str:
    """The queue container (the bucket) an object deleted at ``delete_at`` is recorded in."""
    return str(delete_at - delete_at % EXPIRING_DIVISOR_S)


def expiring_object(delete_at: int, account: str, container: str, obj: str) -> str:
    """The queue row's name for an object."""
    return f"{delete_at:0{DELETE_AT_DIGITS}d}-{account}/{container}/{obj}"


def parse_expiring_object(name: str) -> tuple[int, str, str, str]:
    """``(delete_at, account, container, object)`` of a queue row (ValueError if malformed)."""
    at, dash, rest = name.partition("-")
    account, _, rest = rest.partition("/")
    container, slash, obj = rest.partition("/")
    if not dash or not at.isascii() or not at.isdigit() or not account or not container:
        raise ValueError(f"not an expirer queue row: {name!r}")
    if not slash or not obj:
        raise ValueError(f"not an expirer queue row: {name!r}")
    return int(at), account, container, obj


def parse_delete_at_targets(headers: Mapping[str, str]) -> tuple[str, UpdateTargets] | None:
    """The queue container and its replicas named by ``X-Delete-At-*``, or None."""
    targets = parse_update_targets(headers, "Delete-At")
    if targets is None:
        return None
    container = headers.get("X-Delete-At-Container", "").strip()
    if not container.isascii() or not container.isdigit():
        raise BadRequest(f"Invalid X-Delete-At-Container: {container!r}")
    return container, targets
