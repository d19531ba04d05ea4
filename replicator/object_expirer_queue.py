"""The expirer's queue as the expirer reads and trims it.

The queue (service/update_targets.py) is rows in the container servers: account
``.expiring_objects``, a container per day (its name the day's first second), a row per
object, ``<delete_at>-<account>/<container>/<object>``.  The expirer

- finds the buckets in the local ``containers.lmdb`` files (the hidden account has no account
  listing: its containers are created by object servers, with no account report), through
  the container updater's reader (replicator/container_dbs.py);
- lists a bucket's due rows from its replicas over HTTP, one page per request, the local
  replica first (the listing is the container server's, so rows are read as it merges them);
- removes a row from every replica of its bucket once the object is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ring.device import Device
from service.backend_client import BackendClient, BackendUnavailable
from service.timestamp import Timestamp
from service.update_targets import EXPIRING_ACCOUNT, parse_expiring_object

from .container_dbs import ContainerDbs

PAGE_SIZE = 1000  # rows per listing request
SCAN_PAGE = 1000  # containers per read transaction of the local scan
_ACCOUNT_BYTES = json.dumps(EXPIRING_ACCOUNT).encode("ascii")  # as the record spells it
log = logging.getLogger("torus.object-expirer")


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str  # the row's name in its bucket
    delete_at: int
    account: str
    container: str
    obj: str


def local_buckets(dbs: ContainerDbs, device: str, now_s: float) -> list[str]:
    """The queue buckets ``device`` holds whose day has begun, oldest first.

    Blocking (LMDB reads): call it in a worker thread.  Only records that name the hidden
    account are decoded, so the other containers cost a byte search each.
    """
    found: list[str] = []
    after = b""
    while True:
        page = dbs.scan(device, after=after, limit=SCAN_PAGE)
        if not page:
            break
        after = page[-1].cid
        for entry in page:
            if _ACCOUNT_BYTES not in entry.record:
                continue
            try:
                info = entry.info()
            except ValueError:
                continue  # the container updater reports unreadable records; not ours to
            name = info.container
            if info.account == EXPIRING_ACCOUNT and name.isdigit() and int(name) <= now_s:
                found.append(name)
    return sorted(set(found), key=int)


def parse_row(name: str) -> QueueRow | None:
    try:
        delete_at, account, container, obj = parse_expiring_object(name)
    except ValueError:
        return None
    return QueueRow(name, delete_at, account, container, obj)


async def list_page(
    client: BackendClient,
    partition: int,
    nodes: Sequence[Device],
    bucket: str,
    marker: str,
) -> list[str] | None:
    """The next page of ``bucket``'s row names after ``marker`` from the first replica of
    ``nodes`` that answers; None if none did (a bucket no replica has yet is an empty page)."""
    query = {"format": "json", "limit": str(PAGE_SIZE), "marker": marker}
    path = f"/{EXPIRING_ACCOUNT}/{bucket}"
    for node in nodes:
        try:
            response = await client.request(
                "GET", node.ip, node.port, node.device, partition, path, query=query
            )
        except BackendUnavailable as exc:
            log.info("queue listing of %s not read: %s", bucket, exc)
            continue
        if response.status == 200:
            return [row["name"] for row in json.loads(response.body)]
        if response.status in (204, 404):
            return []
        log.info("queue listing of %s refused: %d from %s", bucket, response.status, node.ip)
    return None


async def remove_row(
    client: BackendClient,
    partition: int,
    nodes: Sequence[Device],
    bucket: str,
    name: str,
    *,
    user_agent: str,
) -> bool:
    """Delete the row from every replica of its bucket; True if every one took it."""
    headers = {
        "X-Timestamp": Timestamp.from_seconds(time.time()).internal,
        "User-Agent": user_agent,
    }
    path = f"/{EXPIRING_ACCOUNT}/{bucket}/{name}"
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(_remove_one(client, partition, node, path, headers)) for node in nodes
        ]
    return all(task.result() for task in tasks)


async def _remove_one(
    client: BackendClient, partition: int, node: Device, path: str, headers: dict[str, str]
) -> bool:
    try:
        response = await client.request(
            "DELETE", node.ip, node.port, node.device, partition, path, headers
        )
    except BackendUnavailable as exc:
        log.info("queue row %s not removed: %s", path, exc)
        return False
    # 404: the bucket was never created there, so the row is not there either.
    return 200 <= response.status < 300 or response.status == 404
