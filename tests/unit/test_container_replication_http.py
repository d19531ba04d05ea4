"""The container server's REPLICATE (containerd_/replication_http.py), in process over the
memory broker: the sync step creates a container it never saw and reports the sender's sync
point; the merge step commits rows with the point; bad bodies are 400s; a plain POST is
still a metadata update."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from containerd_.info import ContainerInfo
from containerd_.memory import MemoryContainerBroker
from containerd_.replication import record_to_wire, row_to_wire
from containerd_.rows import ObjectRow
from containerd_.server import build_app
from service.config import ClusterConfig, ContainerServerConfig
from service.methods import METHOD_OVERRIDE
from service.timestamp import Timestamp

SECRET = "unit-secret"
PATH = "/sda/1/AUTH_a/c"
SENDER = "ab" * 16


def ts(raw: int) -> Timestamp:
    return Timestamp(1_700_000_000_00000 + raw)


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[TestClient, MemoryContainerBroker]]:
    broker = MemoryContainerBroker(SECRET.encode())
    config = ContainerServerConfig(mount_check=False)
    app = build_app(config, ClusterConfig(SECRET), broker=broker, rng=random.Random(0))
    async with TestClient(TestServer(app)) as client:
        yield client, broker


async def replicate(client: TestClient, body: Any) -> tuple[int, Any]:
    headers = {METHOD_OVERRIDE: "REPLICATE", "Content-Type": "application/json"}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client.post(PATH, data=data, headers=headers) as response:
        raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


def test_sync_then_merge_then_sync_reports_the_point() -> None:
    async def main() -> None:
        async with serving() as (client, broker):
            record = record_to_wire(ContainerInfo("AUTH_a", "c", ts(1), created_at=ts(1)))
            status, answer = await replicate(
                client, {"op": "sync", "sender": SENDER, "record": record}
            )
            assert status == 200 and answer["point"] is None and answer["object_count"] == 0
            rows = [
                row_to_wire(ObjectRow.put(f"o{i}", ts(10 + i), i, "text/plain", "e"))
                for i in range(3)
            ]
            rows.append(row_to_wire(ObjectRow.tombstone("o1", ts(20))))
            body = {"op": "merge", "sender": SENDER, "rows": rows, "point": 7}
            assert await replicate(client, body) == (200, {"merged": 4})
            assert await replicate(client, body) == (200, {"merged": 4})  # a replay
            status, answer = await replicate(
                client, {"op": "sync", "sender": SENDER, "record": record}
            )
            assert status == 200 and answer["point"] == 7
            assert (answer["object_count"], answer["bytes_used"]) == (2, 2)
            info = broker.info("sda", "AUTH_a", "c")
            assert (info.object_count, info.bytes_used) == (2, 2)

    asyncio.run(main())


def test_bad_bodies_are_400_and_a_plain_post_still_updates_metadata() -> None:
    async def main() -> None:
        async with serving() as (client, _):
            record = record_to_wire(ContainerInfo("AUTH_a", "c", ts(1)))
            other = record_to_wire(ContainerInfo("AUTH_a", "other", ts(1)))
            bad = [
                b"not json",
                [],
                {"op": "sync", "sender": "zz", "record": record},
                {"op": "nope", "sender": SENDER},
                {"op": "sync", "sender": SENDER, "record": {"account": "AUTH_a"}},
                {"op": "merge", "sender": SENDER, "rows": [["o"]], "point": None},
                {"op": "merge", "sender": SENDER, "rows": [], "point": "1"},
            ]
            for body in bad:
                assert (await replicate(client, body))[0] == 400, body
            status, _ = await replicate(client, {"op": "sync", "sender": SENDER, "record": other})
            assert status == 404  # a record for another container
            # A merge into a container never created here (no sync step first): 404.
            status, _ = await replicate(
                client, {"op": "merge", "sender": SENDER, "rows": [], "point": 1}
            )
            assert status == 404
            assert (await replicate(client, {"op": "sync", "sender": SENDER, "record": record}))[
                0
            ] == 200
            headers = {"X-Timestamp": ts(5).normal, "X-Container-Meta-Color": "red"}
            async with client.post(PATH, headers=headers) as response:
                assert response.status == 204
            async with client.head(PATH) as response:
                assert response.headers["X-Container-Meta-Color"] == "red"

    asyncio.run(main())
