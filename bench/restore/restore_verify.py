"""What must be back on the replaced device, and whether it is, checked on the device itself:
its object index read directly (cheap enough to poll during replication), then every object
HEADed on that node's object server, and the container and account databases asked for
their rows through that node's container and account servers.  The replicators' own counters
are reported, never trusted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import lmdb
from restore_mix import Spec

from objectd.metadata import decode
from ring.ring import Ring

ACCOUNT = "AUTH_test"
HEAD_CONCURRENCY = 16
LISTING_LIMIT = 1000


@dataclass(frozen=True)
class Expected:
    objects: dict[str, tuple[Spec, int]]  # "/AUTH_test/c/o" -> (spec, partition on the device)
    containers: dict[str, int]  # container -> partition, those the device is a primary for
    account_partition: int | None  # the account's partition, if the device holds it

    @property
    def bytes(self) -> int:
        return sum(spec.size_bytes for spec, _part in self.objects.values())


def placed_on(ring_dir: Path, secret: bytes, device: str, specs: Iterable[Spec]) -> Expected:
    """Everything the rings place on ``device`` (a primary there)."""
    object_ring = Ring.load(ring_dir / "object.ring", secret)
    container_ring = Ring.load(ring_dir / "container.ring", secret)
    account_ring = Ring.load(ring_dir / "account.ring", secret)
    objects = {}
    containers = {}
    for spec in specs:
        part, nodes = object_ring.get_nodes(ACCOUNT, spec.container, spec.name)
        if any(node.device == device for node in nodes):
            objects[f"/{ACCOUNT}/{spec.container}/{spec.name}"] = (spec, part)
        if spec.container not in containers:
            part, nodes = container_ring.get_nodes(ACCOUNT, spec.container)
            containers[spec.container] = part if any(n.device == device for n in nodes) else -1
    part, nodes = account_ring.get_nodes(ACCOUNT)
    account = part if any(node.device == device for node in nodes) else None
    return Expected(objects, {c: p for c, p in containers.items() if p >= 0}, account)


def indexed_names(device: Path) -> set[str]:
    """The names with a live (not deleted) newest version in the device's object index."""
    path = device / "objects.lmdb"
    if not path.exists():
        return set()
    names: dict[str, bool] = {}
    env = lmdb.open(str(path), readonly=True, max_dbs=8)
    try:
        with env.begin() as txn:
            try:
                table = env.open_db(b"index", txn=txn, create=False)
            except lmdb.NotFoundError:
                return set()  # made at the device's first write
            for _key, value in txn.cursor(db=table):
                meta = decode(value)
                names.setdefault(meta.name, not meta.deleted)  # newest version first
    finally:
        env.close()
    return {name for name, live in names.items() if live}


async def head_objects(
    port: int, device: str, expected: Expected, etags: dict[str, str]
) -> dict[str, int]:
    """HEAD every expected object on the node's object server: how many answer 200 with the
    ETag and length the proxy stored, and how many do not (by what went wrong)."""
    counts = {"ok": 0, "missing": 0, "wrong": 0}
    queue = list(expected.objects.items())
    timeout = aiohttp.ClientTimeout(total=60.0)
    connector = aiohttp.TCPConnector(limit=HEAD_CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def worker() -> None:
            while queue:
                name, (spec, part) = queue.pop()
                url = f"http://127.0.0.1:{port}/{device}/{part}{quote(name)}"
                async with session.head(url) as response:
                    if response.status == 404:
                        counts["missing"] += 1
                    elif (
                        response.status == 200
                        and response.headers.get("Etag", "").strip('"') == etags[spec.name]
                        and int(response.headers["Content-Length"]) == spec.size_bytes
                    ):
                        counts["ok"] += 1
                    else:
                        counts["wrong"] += 1

        async with asyncio.TaskGroup() as group:
            for _ in range(HEAD_CONCURRENCY):
                group.create_task(worker())
    return counts


async def listing_rows(port: int, device: str, part: int, path: str) -> set[str] | None:
    """Every name in one container replica's listing on its server; None if it has none."""
    names: set[str] = set()
    marker = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60.0)) as session:
        while True:
            query = f"format=json&limit={LISTING_LIMIT}&marker={quote(marker)}"
            url = f"http://127.0.0.1:{port}/{device}/{part}{quote(path)}?{query}"
            async with session.get(url) as response:
                body = await response.read()
                if response.status == 404:
                    return None
                if response.status not in (200, 204):
                    raise RuntimeError(f"GET {url}: {response.status} {body[:200]!r}")
            rows = json.loads(body) if response.status == 200 and body else []
            if not rows:
                return names
            names.update(row["name"] for row in rows)
            marker = rows[-1]["name"]


async def databases_restored(
    container_port: int, account_port: int, device: str, expected: Expected, specs: list[Spec]
) -> dict[str, object]:
    """Per container DB the device should hold, whether its listing has every object's row;
    and whether the account DB lists every container."""
    by_container: dict[str, set[str]] = {}
    for spec in specs:
        by_container.setdefault(spec.container, set()).add(spec.name)
    containers = {}
    for container, part in sorted(expected.containers.items()):
        rows = await listing_rows(container_port, device, part, f"/{ACCOUNT}/{container}")
        want = by_container[container]
        containers[container] = {
            "rows": len(rows or ()),
            "expected": len(want),
            "restored": rows is not None and rows >= want,
        }
    account: dict[str, object] | None = None
    if expected.account_partition is not None:
        rows = await listing_rows(account_port, device, expected.account_partition, f"/{ACCOUNT}")
        account = {
            "containers": len(rows or ()),
            "expected": len(by_container),
            "restored": rows is not None and rows >= set(by_container),
        }
    return {"containers": containers, "account": account}
