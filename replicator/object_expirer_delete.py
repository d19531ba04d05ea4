"""The expirer's DELETE of one queued object: every replica at once, as Swift's expirer does.

Each object server gets ``X-Timestamp`` = the delete-at time and ``X-If-Delete-At`` (it
deletes only the version the row was queued for: objectd/http_write.py), with the container
replicas to update (``X-Container-*``, Swift's spread, as the proxy sends them), so the
object leaves the listing and its totals through the object server's own container update,
or its async_pending.  A replica's answer:

- 2xx: deleted here (a tombstone at the delete-at time);
- 404 (never there), 409 (a newer version, or the tombstone of an earlier pass), 412 (the
  version stored has another X-Delete-At, or none: an overwrite): nothing to delete — the
  row is stale or done;
- anything else, or no answer: a failure; the row stays for the next pass.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence

from ring.device import Device
from service.backend_client import BackendClient, BackendUnavailable
from service.timestamp import Timestamp

from .object_expirer_queue import QueueRow

STALE_STATUSES = frozenset({404, 409, 412})
log = logging.getLogger("torus.object-expirer")


class Outcome(enum.Enum):
    DELETED = "deleted"  # at least one replica deleted it, none failed
    STALE = "stale"  # no replica had the queued version, none failed
    FAILED = "failed"  # some replica did not answer, or answered otherwise


def delete_headers(
    row: QueueRow, container_partition: int, container_nodes: Sequence[Device], replicas: int
) -> list[dict[str, str]]:
    """The DELETE's headers per object replica: container replica ``j`` goes with object
    replica ``j mod replicas`` (proxy/object_write.py's spread)."""
    base = {
        "X-Timestamp": Timestamp.from_seconds(row.delete_at).internal,
        "X-If-Delete-At": str(row.delete_at),
    }
    hosts: list[list[str]] = [[] for _ in range(replicas)]
    devices: list[list[str]] = [[] for _ in range(replicas)]
    for j, node in enumerate(container_nodes):
        ip = f"[{node.ip}]" if ":" in node.ip else node.ip
        hosts[j % replicas].append(f"{ip}:{node.port}")
        devices[j % replicas].append(node.device)
    out = []
    for i in range(replicas):
        headers = dict(base)
        if hosts[i]:
            headers["X-Container-Host"] = ",".join(hosts[i])
            headers["X-Container-Device"] = ",".join(devices[i])
            headers["X-Container-Partition"] = str(container_partition)
        out.append(headers)
    return out


async def delete_object(
    client: BackendClient,
    row: QueueRow,
    partition: int,
    nodes: Sequence[Device],
    per_replica: Sequence[dict[str, str]],
) -> Outcome:
    path = f"/{row.account}/{row.container}/{row.obj}"
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(_delete_one(client, node, partition, path, headers))
            for node, headers in zip(nodes, per_replica, strict=True)
        ]
    statuses = [task.result() for task in tasks]
    if any(s is None or not (200 <= s < 300 or s in STALE_STATUSES) for s in statuses):
        return Outcome.FAILED
    if any(s is not None and 200 <= s < 300 for s in statuses):
        return Outcome.DELETED
    return Outcome.STALE


async def _delete_one(
    client: BackendClient, node: Device, partition: int, path: str, headers: dict[str, str]
) -> int | None:
    try:
        response = await client.request(
            "DELETE", node.ip, node.port, node.device, partition, path, headers
        )
    except BackendUnavailable as exc:
        log.info("expired object %s not deleted: %s", path, exc)
        return None
    if not (200 <= response.status < 300 or response.status in STALE_STATUSES):
        log.info("expired object %s: %d from %s", path, response.status, node.ip)
    return response.status
