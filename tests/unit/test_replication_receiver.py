"""The replication push end to end in one process, on real LMDB files: the sender
(replicator/object_replication_push.py) against the receiver (objectd/replication_receiver.py)
in a real object server app; and the receiver's answers to hand-made streams.

The property that matters: after a push, both replicas' suffix hashes are equal, which holds
only if every version arrived with its exact timestamps (data, metadata, content type).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from objectd import replication_wire as wire
from objectd.engine import ObjectEngine
from objectd.errors import ObjectNotFound
from objectd.memory import MemoryObjectEngine
from objectd.metadata import ObjectMetadata
from objectd.server import build_app
from replicator import object_replication_store as store
from replicator.object_replication_push import Pusher
from replicator.throttle import Throttle
from ring.device import Device as RingDevice
from service.backend_client import BackendClient
from service.config import ClusterConfig, ObjectServerConfig
from service.http11 import ConnectionPool
from service.timestamp import Timestamp

SECRET = "unit-secret"
DEV = "sda"
PART = 7
T0 = float(int(time.time()))  # recent: tombstones must not be reclaimable (a week)
SSYNC = {"X-HTTP-Method-Override": "SSYNC"}


def ts(offset_s: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + offset_s)


def make_engine(root: Path) -> ObjectEngine:
    (root / DEV).mkdir(parents=True)
    return ObjectEngine(str(root), SECRET.encode(), inline_max_bytes=64, block_size_bytes=32)


async def put(
    engine: ObjectEngine, obj: str, at: Timestamp, body: bytes, **meta: Any
) -> ObjectMetadata:
    write = await engine.open_write(DEV, PART, "AUTH_a", "c", obj, at, content_length=len(body))
    await write.write(body)
    return await write.commit(meta.pop("content_type", "text/plain"), meta or None)


async def read(engine: ObjectEngine, obj: str) -> bytes:
    with await engine.open_version(DEV, PART, "AUTH_a", "c", obj) as opened:
        return b"".join([chunk async for chunk in opened.read()])


@contextlib.asynccontextmanager
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[TestClient, ObjectEngine]]:
    engine = make_engine(tmp_path / "receiver")
    app = build_app(
        ObjectServerConfig(mount_check=False),
        ClusterConfig(SECRET),
        engine=engine,
        rng=random.Random(0),
    )
    try:
        async with TestClient(TestServer(app)) as client:
            yield client, engine
    finally:
        engine.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def ssync(client: TestClient, body: bytes) -> tuple[int, bytes]:
    async with client.post(f"/{DEV}/{PART}", data=body, headers=SSYNC) as response:
        return response.status, await response.read()


def frame(kind: wire.UpdateKind, meta: ObjectMetadata, body: bytes = b"") -> bytes:
    return wire.encode_update(kind, meta) + body


def test_a_push_leaves_both_replicas_with_the_same_suffix_hashes(tmp_path: Path) -> None:
    async def test() -> None:
        sender = make_engine(tmp_path / "sender")
        async with receiver(tmp_path) as (client, engine):
            await put(sender, "inline", ts(1), b"small")
            big = bytes(range(256)) * 3  # a data file: > inline_max_bytes, many blocks
            await put(sender, "file", ts(1), big, **{"X-Object-Meta-Color": "blue"})
            await put(sender, "posted", ts(1), b"p", **{"X-Object-Sysmeta-Keep": "1"})
            posted = ("AUTH_a", "c", "posted")
            await sender.post(DEV, PART, *posted, ts(2), "image/png", {"X-Object-Meta-A": "1"})
            await sender.post(DEV, PART, *posted, ts(3), None, {"X-Object-Meta-B": "2"})
            await put(sender, "deleted", ts(1), b"gone soon")
            await sender.delete(DEV, PART, "AUTH_a", "c", "deleted", ts(4))
            await put(engine, "inline", ts(0.5), b"older")  # the receiver's is older
            await put(engine, "deleted", ts(1), b"gone soon")

            node = RingDevice(0, 1, 1, "127.0.0.1", client.port, DEV, 1.0, "127.0.0.1", client.port)
            pool = ConnectionPool(max_connections=4)
            backend = BackendClient(pool, conn_timeout_s=1.0, node_timeout_s=10.0)
            pusher = Pusher(sender, backend, pool, Throttle(0))
            dev = await store.device(sender, DEV)
            versions = [v.meta for v in await asyncio.to_thread(store.versions, dev, PART)]
            try:
                result = await pusher.push(node, DEV, PART, versions)
                assert result.ok
                assert (result.objects, result.applied, result.ignored) == (4, 4, 0)
                assert result.bytes == len(b"small") + len(big) + len(b"p")
                assert await engine.suffix_hashes(DEV, PART) == await sender.suffix_hashes(
                    DEV, PART
                )
                assert await read(engine, "file") == big
                got = engine.get(DEV, PART, *posted)
                assert got.content_type == "image/png"
                assert got.ctype_timestamp == ts(2) and got.meta_timestamp == ts(3)
                assert got.user_meta == {"X-Object-Sysmeta-Keep": "1", "X-Object-Meta-B": "2"}
                try:
                    engine.get(DEV, PART, "AUTH_a", "c", "deleted")
                    raise AssertionError("the tombstone did not arrive")
                except ObjectNotFound as exc:
                    assert exc.timestamp == ts(4)
                again = await pusher.push(node, DEV, PART, versions)
                assert again.ok and again.objects == 0
            finally:
                await pool.close()
                sender.close()

    run(test)


def test_the_missing_check_asks_for_newer_data_or_newer_metadata_only(tmp_path: Path) -> None:
    async def test() -> None:
        async with receiver(tmp_path) as (client, engine):
            await put(engine, "same", ts(1), b"x")
            await put(engine, "older", ts(1), b"x")
            await put(engine, "posted", ts(1), b"x")
            await put(engine, "deleted", ts(1), b"x")
            await engine.delete(DEV, PART, "AUTH_a", "c", "deleted", ts(5))
            offers = [
                wire.Offer("/AUTH_a/c/same", ts(1), ts(1), ts(1), False),
                wire.Offer("/AUTH_a/c/older", ts(2), ts(2), ts(2), False),
                wire.Offer("/AUTH_a/c/posted", ts(1), ts(3), ts(1), False),
                wire.Offer("/AUTH_a/c/deleted", ts(2), ts(2), ts(2), False),
                wire.Offer("/AUTH_a/c/absent", ts(1), ts(1), ts(1), True),
            ]
            status, body = await ssync(client, wire.encode_offers(offers))
            assert status == 200
            assert wire.decode_wants(body) == [
                wire.Want("/AUTH_a/c/older", True),
                wire.Want("/AUTH_a/c/posted", False),
                wire.Want("/AUTH_a/c/absent", True),
            ]

    run(test)


def test_an_older_version_is_ignored_and_the_stream_goes_on(tmp_path: Path) -> None:
    async def test() -> None:
        async with receiver(tmp_path) as (client, engine):
            await put(engine, "a", ts(10), b"newer here")
            old = ObjectMetadata(
                "/AUTH_a/c/a", ts(1), ts(1), "text/plain", "f" * 32, 3, body="inline"
            )
            new = ObjectMetadata(
                "/AUTH_a/c/b",
                ts(1),
                ts(1),
                "text/plain",
                "900150983cd24fb0d6963f7d28e17f72",  # md5("abc")
                3,
                body="inline",
            )
            body = wire.UPDATES_LINE + frame("PUT", old, b"old") + frame("PUT", new, b"abc")
            status, answer = await ssync(client, body + wire.END_LINE)
            assert status == 200, answer
            assert wire.UpdatesResult.decode(answer) == wire.UpdatesResult(1, 1)
            assert engine.get(DEV, PART, "AUTH_a", "c", "a").timestamp == ts(10)
            assert await read(engine, "b") == b"abc"

    run(test)


def test_a_cut_stream_is_refused_and_keeps_the_updates_before_the_cut(tmp_path: Path) -> None:
    async def test() -> None:
        async with receiver(tmp_path) as (client, engine):
            tombstone = ObjectMetadata.tombstone("/AUTH_a/c/a", ts(2))
            cut = ObjectMetadata("/AUTH_a/c/b", ts(1), ts(1), "x", "0" * 32, 10, body="inline")
            body = wire.UPDATES_LINE + frame("DELETE", tombstone) + frame("PUT", cut, b"12345")
            status, _answer = await ssync(client, body)
            assert status == 400
            try:
                engine.get(DEV, PART, "AUTH_a", "c", "a")
                raise AssertionError("the tombstone before the cut was lost")
            except ObjectNotFound as exc:
                assert exc.timestamp == ts(2)
            try:
                engine.get(DEV, PART, "AUTH_a", "c", "b")
                raise AssertionError("a cut body was stored")
            except ObjectNotFound as exc:
                assert exc.timestamp is None

    run(test)


def test_a_body_that_does_not_match_its_etag_is_not_stored(tmp_path: Path) -> None:
    async def test() -> None:
        async with receiver(tmp_path) as (client, engine):
            meta = ObjectMetadata("/AUTH_a/c/a", ts(1), ts(1), "x", "0" * 32, 3, body="inline")
            body = wire.UPDATES_LINE + frame("PUT", meta, b"abc") + wire.END_LINE
            status, _answer = await ssync(client, body)
            assert status == 422
            try:
                engine.get(DEV, PART, "AUTH_a", "c", "a")
                raise AssertionError("stored")
            except ObjectNotFound as exc:
                assert exc.timestamp is None

    run(test)


def test_garbage_is_a_400(tmp_path: Path) -> None:
    async def test() -> None:
        async with receiver(tmp_path) as (client, _engine):
            assert (await ssync(client, b"hello\n"))[0] == 400
            assert (await ssync(client, wire.UPDATES_LINE + b"PUT x y\n"))[0] == 400
            bad = wire.MISSING_CHECK_LINE + b"1 2 3 z /a/c/o\n"
            assert (await ssync(client, bad))[0] == 400

    run(test)


def test_the_receiver_works_over_the_in_memory_engine_too() -> None:
    """It uses only the engine's public calls, so the twin serves (the server's fast tests)."""

    async def test() -> None:
        engine = MemoryObjectEngine([DEV], SECRET.encode(), inline_max_bytes=64)
        app = build_app(ObjectServerConfig(mount_check=False), ClusterConfig(SECRET), engine=engine)
        async with TestClient(TestServer(app)) as client:
            offer = wire.Offer("/AUTH_a/c/o", ts(1), ts(2), ts(1), False)
            status, body = await ssync(client, wire.encode_offers([offer]))
            assert status == 200 and wire.decode_wants(body) == [wire.Want("/AUTH_a/c/o", True)]
            meta = ObjectMetadata(
                "/AUTH_a/c/o",
                ts(1),
                ts(2),
                "text/plain",
                "900150983cd24fb0d6963f7d28e17f72",
                3,
                user_meta={"X-Object-Meta-A": "b"},
            )
            stream = wire.UPDATES_LINE + frame("PUT", meta, b"abc") + wire.END_LINE
            status, answer = await ssync(client, stream)
            assert status == 200, answer
            got = engine.get(DEV, PART, "AUTH_a", "c", "o")
            assert (got.timestamp, got.meta_timestamp) == (ts(1), ts(2))
            assert got.user_meta == {"X-Object-Meta-A": "b"}
            status, body = await ssync(client, wire.encode_offers([offer]))
            assert status == 200 and wire.decode_wants(body) == []

    run(test)


def test_many_small_updates_share_group_commits(tmp_path: Path) -> None:
    async def test() -> None:
        async with receiver(tmp_path) as (client, engine):
            frames = []
            for i in range(200):
                meta = ObjectMetadata(
                    f"/AUTH_a/c/o{i}",
                    ts(1),
                    ts(1),
                    "text/plain",
                    "900150983cd24fb0d6963f7d28e17f72",
                    3,
                )
                frames.append(frame("PUT", meta, b"abc"))
            frames.append(frame("DELETE", ObjectMetadata.tombstone("/AUTH_a/c/o0", ts(2))))
            before = engine.writer(DEV).commits
            status, answer = await ssync(client, wire.UPDATES_LINE + b"".join(frames) + b"END\n")
            assert status == 200, answer
            result = wire.UpdatesResult.decode(answer)
            # o0's PUT and DELETE commit concurrently: the PUT may find the tombstone first.
            assert result.applied + result.ignored == 201 and result.applied >= 200
            assert engine.writer(DEV).commits - before < 100  # not one fsync per object
            assert await read(engine, "o199") == b"abc"
            try:
                engine.get(DEV, PART, "AUTH_a", "c", "o0")
                raise AssertionError("the DELETE after the PUT in the same stream was lost")
            except ObjectNotFound as exc:
                assert exc.timestamp == ts(2)

    run(test)
