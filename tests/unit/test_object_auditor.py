"""The object auditor (replicator/object_auditor.py) on real LMDB devices in a tmp dir.

Objects are stored with the real engine (objectd.engine.ObjectEngine), which is then closed:
one process must not open an environment twice, and the auditor opens its own.  Bodies are
damaged on disk (a data file's byte, an inline body in the ``bodies`` table) and the engine is
reopened afterwards to see what a GET and REPLICATE see.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import lmdb
import pytest

from objectd import layout
from objectd.engine import ObjectEngine
from objectd.errors import ObjectNotFound
from objectd.metadata import ObjectMetadata, decode, encode
from replicator import object_audit_checks as checks
from replicator import object_audit_position as position
from replicator import recon
from replicator.object_auditor import (
    ObjectAuditor,
    ObjectAuditorConfig,
    ObjectAuditorStats,
    open_object_auditor,
    summary_line,
)
from replicator.throttle import Throttle
from service.timestamp import Timestamp

SECRET = b"auditor-secret"
DEV, PART = "sda", 7
INLINE, BLOCK = 100, 64
T0 = 1_700_000_000.0


@dataclass
class Stored:
    obj: str
    body: bytes
    data_file: str | None  # None: inline


def engine(root: Path, block: int = BLOCK) -> ObjectEngine:
    (root / DEV).mkdir(exist_ok=True)
    return ObjectEngine(str(root), SECRET, inline_max_bytes=INLINE, block_size_bytes=block)


def store(root: Path, bodies: dict[str, bytes], *, block: int = BLOCK) -> dict[str, Stored]:
    """PUT each body as object ``name`` of /a/c, then close the engine."""

    async def main() -> dict[str, Stored]:
        eng = engine(root, block)
        stored = {}

        async def put(i: int, name: str, body: bytes) -> None:
            ts = Timestamp.from_seconds(T0 + i)
            write = await eng.open_write(DEV, PART, "a", "c", name, ts, content_length=len(body))
            await write.write(body)
            meta = await write.commit("application/octet-stream")
            stored[name] = Stored(name, body, eng.data_file_path(meta))

        try:  # at once: the device's writer commits them in groups
            await asyncio.gather(*(put(i, n, b) for i, (n, b) in enumerate(bodies.items())))
            return stored
        finally:
            eng.close()

    return asyncio.run(main())


def config(root: Path, **options: float) -> ObjectAuditorConfig:
    limits = {"bytes_per_s": 0.0, "objects_per_s": 0.0, **options}
    return ObjectAuditorConfig(devices=root, mount_check=False, **limits)


def audit(root: Path, **options: float) -> ObjectAuditorStats:
    async def main() -> ObjectAuditorStats:
        async with open_object_auditor(config(root, **options)) as auditor:
            return await auditor.run_once()

    return asyncio.run(main())


@dataclass
class Seen:
    """What a reopened engine sees: each object's body (None: not found), the partition's
    suffix hashes and the device's quarantine counter."""

    bodies: dict[str, bytes | None]
    hashes: dict[str, str]
    quarantined: int


def look(root: Path, names: list[str]) -> Seen:
    async def main() -> Seen:
        eng = engine(root)
        try:
            bodies: dict[str, bytes | None] = {}
            for name in names:
                try:
                    with await eng.open_version(DEV, PART, "a", "c", name) as version:
                        bodies[name] = b"".join([c async for c in version.read()])
                except ObjectNotFound:
                    bodies[name] = None
            hashes = await eng.suffix_hashes(DEV, PART)
            return Seen(bodies, hashes, eng.quarantined_count(DEV))
        finally:
            eng.close()

    return asyncio.run(main())


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


@contextlib.contextmanager
def raw_env(root: Path) -> Iterator[lmdb.Environment]:
    """The device's environment opened raw, while neither the engine nor an auditor has it
    open (a process must not open an environment twice)."""
    env = lmdb.open(str(root / DEV / "objects.lmdb"), max_dbs=8, map_size=1 << 30)
    try:
        yield env
    finally:
        env.close()


def bodies(*names: str, size: int) -> dict[str, bytes]:
    return {name: os.urandom(size) for name in names}


# -- a good device ---------------------------------------------------------------------------


def test_good_objects_pass_and_nothing_changes(tmp_path: Path) -> None:
    stored = store(tmp_path, {"small": b"s" * 50, "empty": b"", "large": os.urandom(1000)})
    before = look(tmp_path, list(stored))

    stats = audit(tmp_path)

    assert (stats.devices, stats.objects, stats.quarantined, stats.errors) == (1, 3, 0, 0)
    assert stats.bytes_verified == 1050
    assert look(tmp_path, list(stored)) == before
    assert not (tmp_path / DEV / position.FILE).exists()  # the pass is complete
    assert audit(tmp_path).objects == 3  # and the next one starts over
    record = recon.read(recon.recon_path(tmp_path, "object-auditor"))
    assert record is not None and record.ok and record.stats["objects"] == 3


def test_tombstones_are_skipped(tmp_path: Path) -> None:
    store(tmp_path, {"gone": b"x" * 500})

    async def delete() -> None:
        eng = engine(tmp_path)
        try:
            await eng.delete(DEV, PART, "a", "c", "gone", Timestamp.from_seconds(T0 + 10))
        finally:
            eng.close()

    asyncio.run(delete())
    stats = audit(tmp_path)
    assert (stats.objects, stats.bytes_verified, stats.errors) == (0, 0, 0)


def test_the_summary_line_names_the_rate() -> None:
    stats = ObjectAuditorStats(devices=2, objects=10, bytes_verified=50_000_000, elapsed_s=2.0)
    line = summary_line("object-auditor", stats)
    assert line.startswith("object-auditor pass completed: 2.00s, 2 devices, 10 objects, ")
    assert "50000000 bytes verified (25.0 MB/s), 0 quarantined, 0 errors" in line


# -- damaged bodies ------------------------------------------------------------------------------


def test_a_flipped_byte_in_a_data_file_is_quarantined(tmp_path: Path) -> None:
    stored = store(tmp_path, {"rot": os.urandom(1000), "fine": os.urandom(1000)})
    rot = stored["rot"]
    assert rot.data_file is not None
    before = look(tmp_path, list(stored))
    flip(rot.data_file, 3 * BLOCK + 5)  # the fourth block: a GET of the first would not see it

    stats = audit(tmp_path)

    assert (stats.objects, stats.quarantined, stats.errors) == (2, 1, 0)
    after = look(tmp_path, list(stored))
    assert after.bodies == {"rot": None, "fine": stored["fine"].body}
    assert after.quarantined == before.quarantined + 1
    assert after.hashes != before.hashes  # REPLICATE sees the replica differ
    assert not os.path.exists(rot.data_file)
    digest = os.path.basename(os.path.dirname(rot.data_file))
    moved = tmp_path / DEV / "quarantined" / "objects" / digest / os.path.basename(rot.data_file)
    assert hashlib.md5(moved.read_bytes()).digest() != hashlib.md5(rot.body).digest()
    assert len(moved.read_bytes()) == len(rot.body)
    again = audit(tmp_path)
    assert (again.objects, again.quarantined) == (1, 0)


def test_a_flipped_inline_body_is_quarantined(tmp_path: Path) -> None:
    stored = store(tmp_path, {"rot": b"r" * 80, "fine": b"f" * 80})
    before = look(tmp_path, list(stored))
    with raw_env(tmp_path) as env, env.begin(write=True) as txn:
        table = env.open_db(b"bodies", txn=txn)
        key, body = next((k, v) for k, v in txn.cursor(db=table) if v == stored["rot"].body)
        txn.put(key, b"R" + body[1:], db=table)

    stats = audit(tmp_path)

    assert (stats.objects, stats.quarantined, stats.errors) == (2, 1, 0)
    after = look(tmp_path, list(stored))
    assert after.bodies == {"rot": None, "fine": stored["fine"].body}
    assert after.hashes != before.hashes
    assert after.quarantined == 1
    with raw_env(tmp_path) as env, env.begin() as txn:
        assert txn.get(key, db=env.open_db(b"quarantine", txn=txn)) == b"R" + body[1:]
        assert txn.get(key, db=env.open_db(b"bodies", txn=txn)) is None


def test_a_missing_data_file_is_quarantined(tmp_path: Path) -> None:
    stored = store(tmp_path, {"lost": os.urandom(300)})
    before = look(tmp_path, ["lost"])
    assert stored["lost"].data_file is not None
    os.unlink(stored["lost"].data_file)

    stats = audit(tmp_path)

    assert (stats.objects, stats.quarantined, stats.errors, stats.gone) == (1, 1, 0, 0)
    after = look(tmp_path, ["lost"])
    assert after.bodies == {"lost": None}
    assert after.hashes != before.hashes and after.quarantined == 1


def test_a_data_file_of_the_wrong_size_is_quarantined(tmp_path: Path) -> None:
    stored = store(tmp_path, {"short": os.urandom(300)})
    assert stored["short"].data_file is not None
    os.truncate(stored["short"].data_file, 299)

    stats = audit(tmp_path)

    assert stats.quarantined == 1 and stats.bytes_verified == 0  # caught by fstat, unread
    assert look(tmp_path, ["short"]).bodies == {"short": None}


def test_undecodable_metadata_is_an_error_and_is_left_alone(tmp_path: Path) -> None:
    store(tmp_path, {"odd": b"o" * 10, "fine": b"f" * 10})
    with raw_env(tmp_path) as env, env.begin(write=True) as txn:
        table = env.open_db(b"index", txn=txn)
        key = next(k for k, v in txn.cursor(db=table) if b'"/a/c/odd"' in v)
        txn.put(key, b'{"v": 99}', db=table)

    stats = audit(tmp_path)

    assert (stats.objects, stats.errors, stats.quarantined) == (1, 1, 0)
    with raw_env(tmp_path) as env, env.begin() as txn:
        assert txn.get(key, db=env.open_db(b"index", txn=txn)) == b'{"v": 99}'


def test_metadata_naming_too_few_block_checksums_is_quarantined(tmp_path: Path) -> None:
    stored = store(tmp_path, {"big": os.urandom(500)})
    with raw_env(tmp_path) as env, env.begin(write=True) as txn:
        table = env.open_db(b"index", txn=txn)
        key, value = next(iter(txn.cursor(db=table)))
        meta = decode(value)
        txn.put(key, encode(replace(meta, block_hashes=meta.block_hashes[:-1])), db=table)

    assert audit(tmp_path).quarantined == 1
    assert stored["big"].data_file is not None and not os.path.exists(stored["big"].data_file)


def test_a_version_replaced_after_its_listing_is_gone_not_quarantined(tmp_path: Path) -> None:
    store(tmp_path, {"x": b"x" * 10})
    at = Timestamp.from_seconds(T0)
    meta = ObjectMetadata("/a/c/y", at, at, size_bytes=3, body="inline", partition=PART)
    listed = checks.Listed(layout.index_key(PART, b"\x01" * 16, at), meta)

    async def main() -> tuple[list[checks.InlineResult], list[checks.InlineResult]]:
        async with open_object_auditor(config(tmp_path)) as auditor:
            dev = await auditor.devices.get_async(DEV)
            (x,) = checks.list_page(dev, b"", 10).versions
            # Listed before a POST rewrote its metadata: checked against the metadata now.
            stale = replace(x, meta=replace(x.meta, etag="old"), value=b"old")
            return checks.check_inline(dev, [listed]), checks.check_inline(dev, [stale])

    gone, rewritten = asyncio.run(main())
    assert [r.outcome for r in gone] == [checks.GONE]
    assert [(r.outcome, r.listed.meta.etag) for r in rewritten] == [(None, md5_hex(b"x" * 10))]


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- throttle, cancellation, resuming ------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_the_bytes_throttle_spaces_blocks_at_its_rate(tmp_path: Path) -> None:
    store(tmp_path, {"a": os.urandom(1000), "b": os.urandom(1000), "c": b"c" * 90})
    fake = FakeTime()
    throttle = Throttle(1000.0, clock=fake.clock, sleep=fake.sleep)

    async def main() -> ObjectAuditorStats:
        async with open_object_auditor(config(tmp_path)) as opened:
            auditor = ObjectAuditor(
                opened.config, opened.devices, bytes_throttle=throttle, clock=fake.clock
            )
            return await auditor.run_once()

    stats = asyncio.run(main())
    # Each wait reserves its bytes' time after the previous one; the pass ends as the last
    # block's wait returns: every byte but the last block's (1000 % 64 = 40) was paid for.
    assert stats.bytes_verified == 2090
    assert throttle.slept_s == pytest.approx((2090 - 40) / 1000)
    assert stats.throttled_s == pytest.approx(throttle.slept_s)


@pytest.mark.slow
def test_the_bytes_per_s_limit_holds_in_real_time(tmp_path: Path) -> None:
    block = 16 * 1024
    store(tmp_path, bodies("a", "b", "c", "d", size=100 * 1024), block=block)
    rate = 400 * 1024

    started = time.monotonic()
    stats = audit(tmp_path, bytes_per_s=rate)
    elapsed = time.monotonic() - started

    assert stats.bytes_verified == 400 * 1024
    expected = (stats.bytes_verified - (100 * 1024) % block) / rate  # ~0.99 s
    # Never faster than the rate; the upper bound is loose: the box is shared and busy.
    assert expected * 0.95 <= elapsed <= expected * 2 + 0.5, (elapsed, expected)


def test_a_cancelled_pass_leaves_everything_closed_and_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    names = [f"o{i:03d}" for i in range(600)]  # three pages: 256 + 256 + 88
    store(tmp_path, {name: b"b" * 10 for name in names})
    waits = 0

    async def cancel_on_fifth_batch(_seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 5:
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
        await asyncio.sleep(0)

    fds_before = len(os.listdir("/proc/self/fd"))

    async def cut_short() -> None:
        # A rate so low that every inline batch's wait sleeps (on the fake sleep above).
        throttle = Throttle(1.0, sleep=cancel_on_fifth_batch)
        async with open_object_auditor(config(tmp_path)) as opened:
            auditor = ObjectAuditor(opened.config, opened.devices, objects_throttle=throttle)
            with pytest.raises(asyncio.CancelledError):
                await auditor.run_once()

    asyncio.run(cut_short())
    assert len(os.listdir("/proc/self/fd")) == fds_before
    # Four batches of 64 made the first page: the position is after it.
    saved = position.load(str(tmp_path / DEV))
    assert saved and layout.key_partition(saved) == PART

    resumed = audit(tmp_path)
    assert resumed.objects == 600 - 256
    assert not (tmp_path / DEV / position.FILE).exists()
    assert audit(tmp_path).objects == 600


def test_a_pass_cancelled_mid_file_closes_it_and_changes_nothing(tmp_path: Path) -> None:
    stored = store(tmp_path, bodies("a", "b", "c", size=1000))  # 16 blocks each
    before = look(tmp_path, list(stored))
    waits = 0

    async def cancel_in_the_second_file(_seconds: float) -> None:
        nonlocal waits
        waits += 1
        if waits == 20:
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
        await asyncio.sleep(0)

    fds_before = len(os.listdir("/proc/self/fd"))

    async def cut_short() -> None:
        throttle = Throttle(1.0, sleep=cancel_in_the_second_file)
        async with open_object_auditor(config(tmp_path)) as opened:
            auditor = ObjectAuditor(opened.config, opened.devices, bytes_throttle=throttle)
            with pytest.raises(asyncio.CancelledError):
                await auditor.run_once()

    asyncio.run(cut_short())
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert not (tmp_path / DEV / position.FILE).exists()  # not one page was done
    assert look(tmp_path, list(stored)) == before
    assert audit(tmp_path).objects == 3


def test_a_position_that_cannot_be_read_starts_from_the_beginning(tmp_path: Path) -> None:
    store(tmp_path, {"a": b"a"})
    (tmp_path / DEV / position.FILE).write_text("{not json")
    assert audit(tmp_path).objects == 1
    assert position.decode(position.encode(b"\x00\x01")) == b"\x00\x01"
    assert position.decode(b'{"v": 2, "after": ""}') is None


def test_the_config_refuses_negative_rates() -> None:
    with pytest.raises(ValueError):
        ObjectAuditorConfig(bytes_per_s=-1)
    with pytest.raises(ValueError):
        ObjectAuditorConfig(objects_per_s=-1)
    assert ObjectAuditorConfig().bytes_per_s == 10_000_000.0  # Swift's default


def test_torus_serve_can_run_it_once_wired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The line tools/serve.py needs (DAEMONS), and the ``[object_auditor]`` table."""
    from service.config import load_toml
    from tools import serve

    monkeypatch.setitem(
        serve.DAEMONS, "object-auditor", "replicator.object_auditor:open_object_auditor"
    )
    path = tmp_path / "torus.toml"
    path.write_text(
        '[cluster]\nhash_path_secret = "s"\n'
        f'[object_auditor]\ndevices = "{tmp_path}"\nmount_check = false\nbytes_per_s = 5e6\n'
    )
    opener, config_cls = serve.load_factory("object-auditor")
    assert config_cls is ObjectAuditorConfig
    loaded, _arguments = serve.load_arguments(
        "object-auditor", opener, config_cls, load_toml(path), {}
    )
    assert loaded == ObjectAuditorConfig(devices=tmp_path, mount_check=False, bytes_per_s=5e6)
    store(tmp_path, {"a": b"a" * 10})
    assert serve.run("object-auditor", str(path), env={}, once=True) == 0
