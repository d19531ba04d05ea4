"""Telling the container servers about a PUT or DELETE, or keeping the news as an async_pending.

The proxy names the container's replicas in ``X-Container-Host`` (``ip:port`` list),
``X-Container-Device`` (the same length) and ``X-Container-Partition``.  After a write is
durable the object server sends the row update to all of them at once, each call bounded by
``container_update_timeout_s``; the replicas that fail (unreachable, slow, or not 2xx) go into
one async_pending saved on the object's device *before* the client is answered, so an
acknowledged write never loses its listing row: the updater replays it.

An object written with an X-Delete-At is also recorded in the expirer's queue: a row named
``<delete_at>-<account>/<container>/<object>`` in the hidden account's bucket container the
proxy names in ``X-Delete-At-Container/-Host/-Device/-Partition``
(service/update_targets.py), sent and kept as an async_pending exactly like a listing row.
Swift's container server creates a hidden account's container when a row first arrives;
ours does not, so a 404 from a queue replica is answered by creating the bucket there (a
container PUT at a fixed timestamp, the bucket's own time, so every creation is the same
write) and sending the row again.

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
from service.backend_client import BackendClient, BackendResponse, BackendUnavailable
from service.names import BackendPath
from service.timestamp import Timestamp
from service.update_targets import (
    EXPIRING_ACCOUNT,
    UpdateTargets,
    expiring_object,
    parse_delete_at_targets,
    parse_update_targets,
)

from .app_keys import Engine
from .backend_headers import apply_row_overrides
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
    # A manifest's row shows the whole object's ETag and size (kept in its sysmeta).
    apply_row_overrides(headers, meta.user_meta)
    return _common(headers, trans_id)


def parse_queue_targets(headers: Mapping[str, str]) -> tuple[str, UpdateTargets] | None:
    """The expirer queue container and its replicas named by X-Delete-At-* (checked before
    the write, as the container's), or None."""
    return parse_delete_at_targets(headers)


QUEUE_ETAG = "d41d8cd98f00b204e9800998ecf8427e"  # the MD5 of nothing: Swift's queue rows


def queue_headers(timestamp: Timestamp, trans_id: str | None) -> dict[str, str]:
    """A queue row (Swift's: empty, text/plain), at the write's timestamp."""
    headers = {
        "X-Timestamp": timestamp.internal,
        "X-Size": "0",
        "X-Content-Type": "text/plain",
        "X-Etag": QUEUE_ETAG,
    }
    return _common(headers, trans_id)


def queue_update(
    path: BackendPath,
    queue_container: str,
    delete_at: int,
    headers: Mapping[str, str],
    timestamp: Timestamp,
) -> Update:
    """The PUT of ``path``'s row into the expirer queue (kept on ``path``'s device if it
    fails, for the object updater)."""
    assert path.container is not None and path.obj is not None
    name = expiring_object(delete_at, path.account, path.container, path.obj)
    row = (EXPIRING_ACCOUNT, queue_container, name)
    create = Timestamp.from_seconds(int(queue_container))
    return Update("PUT", path, headers, timestamp, row=row, create_at=create)


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
    # The row's (account, container, object) when not the object's own: an expirer queue row.
    row: tuple[str, str, str] | None = None
    # Create the row's container at this timestamp when a replica answers 404 (the queue).
    create_at: Timestamp | None = None

    def row_names(self) -> tuple[str, str, str]:
        if self.row is not None:
            return self.row
        assert self.path.container is not None and self.path.obj is not None
        return self.path.account, self.path.container, self.path.obj


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
    account, container, obj = update.row_names()
    obj_path = f"/{account}/{container}/{obj}"
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
        pending = AsyncPending(
            op=update.op,
            account=account,
            container=container,
            obj=obj,
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
        if response.status == 404 and update.create_at is not None:
            response = await _create_and_resend(
                client, node, partition, obj_path, update, timeout_s
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


async def _create_and_resend(
    client: BackendClient,
    node: Target,
    partition: int,
    obj_path: str,
    update: Update,
    timeout_s: float,
) -> BackendResponse:
    """Create the queue container on ``node`` (it answered 404), then send the row again."""
    assert update.create_at is not None
    ip, port, device = node
    account, container, _ = update.row_names()
    container_path = f"/{account}/{container}"
    headers = _common({"X-Timestamp": update.create_at.internal}, None)
    created = await client.request(
        "PUT", ip, port, device, partition, container_path, headers, timeout_s=timeout_s
    )
    if not 200 <= created.status < 300:
        return created
    return await client.request(
        update.op, ip, port, device, partition, obj_path, update.headers, timeout_s=timeout_s
    )
