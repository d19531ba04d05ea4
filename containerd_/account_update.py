"""Telling the account servers about a container PUT or DELETE, or keeping it as an
async_pending.

The proxy names the account's replicas in ``X-Account-Host``/``-Device``/``-Partition``
(service/update_targets.py).  After the write, the container server reports the container's
row — put and delete timestamps, object count, bytes used and the stats version the account
orders reports by (``X-Stats-Timestamp`` and ``X-Stats-Sum``, containerd_/info.py) — to all
of them at once, each call bounded by ``node_timeout_s``.  The replicas that fail
(unreachable, slow, or not 2xx) go into one async_pending saved on the container's device
*before* the client is answered, so the account's listing never misses a container a client
was told exists: the updater replays it.

As Swift does, a report every account replica answered 404 (no such account) makes the
container request a 404 too; it is kept as an async_pending all the same, for an account
created later.  Swift instead lets its container updater find unreported containers by
scanning every database; here nothing is scanned, so nothing may be dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping

from service.async_pending import AsyncPending, Target
from service.backend_client import BackendClient, BackendUnavailable
from service.names import BackendPath
from service.timestamp import Timestamp
from service.update_targets import UpdateTargets

from .broker_base import ContainerBrokerBase
from .info import ContainerInfo

log = logging.getLogger("torus.containerd")
UNREACHABLE = 0  # the status recorded for a replica that gave no answer


def report_headers(info: ContainerInfo, request_headers: Mapping[str, str]) -> dict[str, str]:
    """The container row the account server merges (accountd/server.py)."""
    headers = {
        "X-Put-Timestamp": info.put_timestamp.internal,
        "X-Delete-Timestamp": info.delete_timestamp.internal,
        "X-Object-Count": str(info.object_count),
        "X-Bytes-Used": str(info.bytes_used),
        "X-Stats-Timestamp": info.stats_timestamp.internal,
        "X-Stats-Sum": str(info.stats_sum),
        "User-Agent": f"container-server {os.getpid()}",
    }
    trans_id = request_headers.get("X-Trans-Id")
    if trans_id:
        headers["X-Trans-Id"] = trans_id
    # The reaper records the containers it deletes in an account that is itself deleted.
    if request_headers.get("X-Account-Override-Deleted", "").lower() == "yes":
        headers["X-Account-Override-Deleted"] = "yes"
    return headers


async def send(
    client: BackendClient,
    broker: ContainerBrokerBase,
    rng: random.Random,
    targets: UpdateTargets,
    path: BackendPath,
    headers: Mapping[str, str],
    timestamp: Timestamp,
) -> bool:
    """Report to every target at once; save the failures.  True if every one answered 404."""
    assert path.container is not None
    container_path = f"/{path.account}/{path.container}"
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(_send_one(client, node, targets.partition, container_path, headers))
            for node in targets.nodes
        ]
    statuses = [task.result() for task in tasks]
    failed = tuple(
        node
        for node, status in zip(targets.nodes, statuses, strict=True)
        if not 200 <= status < 300
    )
    if failed:
        pending = AsyncPending(
            op="PUT",  # a DELETE too is reported as a PUT of the row, with its delete timestamp
            account=path.account,
            container=path.container,
            obj=None,
            targets=failed,
            partition=targets.partition,
            headers=headers,
            timestamp=timestamp,
        )
        await broker.save_async_pending(path.device, pending, rng)
    return all(status == 404 for status in statuses)


async def _send_one(
    client: BackendClient, node: Target, partition: int, path: str, headers: Mapping[str, str]
) -> int:
    ip, port, device = node
    try:
        response = await client.request("PUT", ip, port, device, partition, path, headers)
    except BackendUnavailable as exc:
        log.warning("account update failed (saving an async_pending): %s", exc)
        return UNREACHABLE
    if not 200 <= response.status < 300:
        log.warning(
            "account update failed (saving an async_pending): %d from %s:%d/%s",
            response.status,
            ip,
            port,
            device,
        )
    return response.status
