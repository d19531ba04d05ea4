"""The expirer's queue names, the object server's queue update (objectd/container_update.py)
against a real container server app (MemoryContainerBroker behind aiohttp's TestServer; a
port nobody listens on stands for a container server that is down), the expirer's DELETE
headers and its config."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp.test_utils import TestServer
from server_process import free_port

from containerd_.memory import MemoryContainerBroker
from containerd_.server import build_app
from objectd import container_update
from objectd.memory import MemoryObjectEngine
from replicator.object_expirer_config import ObjectExpirerConfig
from replicator.object_expirer_delete import delete_headers
from replicator.object_expirer_queue import QueueRow, parse_row
from ring.device import Device
from service.backend_client import open_backend_client
from service.config import ClusterConfig, ContainerServerConfig
from service.errors import BadRequest
from service.names import parse_backend_path
from service.timestamp import Timestamp
from service.update_targets import (
    EXPIRING_ACCOUNT,
    UpdateTargets,
    expiring_container,
    expiring_object,
    parse_delete_at_targets,
    parse_expiring_object,
)

SECRET = "unit-secret"
DELETE_AT = 1_700_000_123


def test_queue_names_round_trip_and_sort_in_delete_at_order() -> None:
    assert expiring_container(DELETE_AT) == "1699920000"  # the day's first second
    name = expiring_object(DELETE_AT, "AUTH_a", "c", "dir/obj-1")
    assert name == "1700000123-AUTH_a/c/dir/obj-1"
    assert parse_expiring_object(name) == (DELETE_AT, "AUTH_a", "c", "dir/obj-1")
    assert expiring_object(99, "a", "c", "o") < expiring_object(100, "a", "c", "o")
    assert parse_row(name) == QueueRow(name, DELETE_AT, "AUTH_a", "c", "dir/obj-1")
    for bad in ("x-AUTH_a/c/o", "1700000123-AUTH_a/c", "1700000123-/c/o", "nodash"):
        assert parse_row(bad) is None


def test_delete_at_targets_need_a_numeric_container() -> None:
    headers = {
        "X-Delete-At-Host": "127.0.0.1:6201",
        "X-Delete-At-Device": "sda",
        "X-Delete-At-Partition": "5",
        "X-Delete-At-Container": "1699920000",
    }
    container, targets = parse_delete_at_targets(headers) or ("", None)
    assert container == "1699920000"
    assert targets == UpdateTargets(5, (("127.0.0.1", 6201, "sda"),))
    with pytest.raises(BadRequest):
        parse_delete_at_targets({**headers, "X-Delete-At-Container": "../x"})
    assert parse_delete_at_targets({}) is None


def test_a_queue_row_creates_its_bucket_or_is_kept_as_an_async_pending() -> None:
    asyncio.run(_queue_row())


async def _queue_row() -> None:
    containers = MemoryContainerBroker(SECRET.encode())
    app = build_app(
        ContainerServerConfig(mount_check=False), ClusterConfig(SECRET), broker=containers
    )
    engine = MemoryObjectEngine(["d1"], SECRET.encode())
    path = parse_backend_path("/d1/3/AUTH_a/c/o", min_parts=5, max_parts=5)
    timestamp = Timestamp.from_seconds(DELETE_AT - 60)
    bucket = expiring_container(DELETE_AT)
    headers = container_update.queue_headers(timestamp, None)
    update = container_update.queue_update(path, bucket, DELETE_AT, headers, timestamp)
    dead = free_port()
    async with (
        TestServer(app, host="127.0.0.1") as server,
        open_backend_client(conn_timeout_s=0.5, node_timeout_s=2.0) as client,
    ):
        assert server.port is not None
        targets = UpdateTargets(9, (("127.0.0.1", server.port, "sda"), ("127.0.0.1", dead, "sdb")))
        failed = await container_update.send(client, engine, random.Random(1), targets, update, 2.0)
    assert failed == 1
    # The live replica had no bucket: it was created (at the bucket's own time) and the row
    # sent again.
    info = containers.info("sda", EXPIRING_ACCOUNT, bucket)
    assert info.put_timestamp == Timestamp.from_seconds(int(bucket))
    rows = containers.list_objects("sda", EXPIRING_ACCOUNT, bucket)
    assert [row.name for row in rows] == ["1700000123-AUTH_a/c/o"]
    # The dead one's share is an async_pending naming the queue row, for the object updater.
    [(_, pending)] = engine.list_async_pendings("d1")
    assert pending is not None
    assert (pending.op, pending.account, pending.container, pending.obj) == (
        "PUT",
        EXPIRING_ACCOUNT,
        bucket,
        "1700000123-AUTH_a/c/o",
    )
    assert pending.targets == (("127.0.0.1", dead, "sdb"),)
    assert pending.partition == 9
    assert pending.headers["X-Timestamp"] == timestamp.internal


def _device(i: int) -> Device:
    return Device(i, 1, i, "127.0.0.1", 6200 + i, f"sd{i}", 1.0, "127.0.0.1", 6200 + i)


def test_the_expirer_delete_names_the_delete_at_time_and_spreads_the_container_replicas() -> None:
    row = QueueRow("1700000123-a/c/o", DELETE_AT, "a", "c", "o")
    per_replica = delete_headers(row, 4, [_device(1), _device(2), _device(3)], 3)
    assert [h["X-Container-Host"] for h in per_replica] == [
        "127.0.0.1:6201",
        "127.0.0.1:6202",
        "127.0.0.1:6203",
    ]
    assert all(h["X-Timestamp"] == Timestamp.from_seconds(DELETE_AT).internal for h in per_replica)
    assert all(h["X-If-Delete-At"] == str(DELETE_AT) for h in per_replica)
    assert all(h["X-Container-Partition"] == "4" for h in per_replica)
    two = delete_headers(row, 4, [_device(1), _device(2), _device(3)], 2)
    assert [h["X-Container-Device"] for h in two] == ["sd1,sd3", "sd2"]


def test_config_rejects_negative_rates_and_bad_ports() -> None:
    assert ObjectExpirerConfig().tasks_per_s == 50.0
    with pytest.raises(ValueError):
        ObjectExpirerConfig(tasks_per_s=-1)
    with pytest.raises(ValueError):
        ObjectExpirerConfig(takeover_s=-1)
    with pytest.raises(ValueError):
        ObjectExpirerConfig(bind_port=0)
