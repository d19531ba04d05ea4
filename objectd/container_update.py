"""Telling the container servers about a PUT or DELETE, or keeping the news as an async_pending.

The proxy names the container's replicas in ``X-Container-Host`` (``ip:port`` list),
``X-Container-Device`` (the same length) and ``X-Container-Partition``.  After a write is
durable the object server sends the row update to all of them at once, each call bounded by
``container_update_timeout_s``; the replicas that fail (unreachable, slow, or not 2xx) go into
one async_pending saved on the object's device *before* the client is answered, so an
acknowledged write never loses its listing row: the updater replays it.

Swift instead answers after ``container_update_timeout`` and lets a late update finish in the
background; here every update is finished or saved when the response goes out, which keeps
nothing running after the request and costs at most that timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

from service.async_pending import AsyncPending, Target
from service.backend_client import BackendClient, BackendUnavailable
from service.names import BackendPath
from service.timestamp import Timestamp
from service.update_targets import UpdateTargets, parse_update_targets

from .app_keys import Engine
from .metadata import ObjectMetadata

log = logging.getLogger("torus.objectd")


def parse_targets(headers: Mapping[str, str]) -> UpdateTargets | None:
    """The container replicas named by the X-Container-* headers (checked before the write)."""
    return parse_update_targets(headers, "Container")


def put_headers(meta: ObjectMetadata, trans_id: str | None) -> dict[str, str]:
    """The row a PUT (or a POST) leaves in the listing."""
    headers = {
        "X-Timestamp": meta.timestamp.internal,
        "X-Size": str(meta.size_bytes),
        "X-Content-Type": meta.content_type,
        "X-Etag": meta.etag,
    }
    # A POST newer than this data reached this replica first (objectd/versions.py); the
    # row must carry its content type and metadata time, or the listing would go back.
    if meta.ctype_timestamp != meta.timestamp:
        headers["X-Content-Type-Timestamp"] = meta.ctype_timestamp.internal
    if meta.meta_timestamp != meta.timestamp:
        headers["X-Meta-Timestamp"] = meta.meta_timestamp.internal
    return _common(headers, trans_id)


def delete_headers(timestamp: Timestamp, trans_id: str | None) -> dict[str, str]:
    return _common({"X-Timestamp": timestamp.internal}, trans_id)


def _common(headers: dict[str, str], trans_id: str | None) -> dict[str, str]:
    headers["User-Agent"] = f"object-server {os.getpid()}"
    if trans_id:
        headers["X-Trans-Id"] = trans_id
    return headers


@dataclass(frozen=True, slots=True)
class Update:
    op: str  # "PUT" or "DELETE" at the container server
    path: BackendPath  # the object's: its device holds the async_pending
    headers: Mapping[str, str]
    timestamp: Timestamp  # the write's X-Timestamp: the updater replays oldest first


async def send(
    client: BackendClient,
    engine: Engine,
    rng: random.Random,
    targets: UpdateTargets,
    update: Update,
    timeout_s: float,
) -> int:
    """Send ``update`` to every target at once; save the failures.  How many failed."""
    path = update.path
    obj_path = f"/{path.account}/{path.container}/{path.obj}"
    nodes = targets.nodes
    if len(nodes) == 1:  # the usual share (Swift's spread): no task group for one call
        sent = [await _send_one(client, nodes[0], targets.partition, obj_path, update, timeout_s)]
    else:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    _send_one(client, node, targets.partition, obj_path, update, timeout_s)
                )
                for node in nodes
            ]
        sent = [task.result() for task in tasks]
    failed = tuple(node for node, ok in zip(nodes, sent, strict=True) if not ok)
    if failed:
        assert path.container is not None and path.obj is not None
        pending = AsyncPending(
            op=update.op,
            account=path.account,
            container=path.container,
            obj=path.obj,
            targets=failed,
            partition=targets.partition,
            headers=update.headers,
            timestamp=update.timestamp,
        )
        await engine.save_async_pending(path.device, pending, rng)
    return len(failed)


async def _send_one(
    client: BackendClient,
    node: Target,
    partition: int,
    obj_path: str,
    update: Update,
    timeout_s: float,
) -> bool:
    ip, port, device = node
    try:
        response = await client.request(
            update.op, ip, port, device, partition, obj_path, update.headers, timeout_s=timeout_s
        )
    except BackendUnavailable as exc:
        log.warning("container update failed (saving an async_pending): %s", exc)
        return False
    if 200 <= response.status < 300:
        return True
    log.warning(
        "container update failed (saving an async_pending): %d from %s:%d/%s",
        response.status,
        ip,
        port,
        device,
    )
    return False
