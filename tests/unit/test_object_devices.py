"""Opening and checking devices: off the event loop, cached checks, durable directories, stale
LMDB readers of dead processes, and the sweep of temp files that dead PUTs left."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lmdb
import pytest
from aiohttp.test_utils import TestClient, TestServer

from objectd import device as device_module
from objectd import devices as devices_module
from objectd import layout
from objectd.app_keys import ENGINE
from objectd.engine import ObjectEngine
from objectd.errors import DeviceUnavailable, ObjectNotFound
from objectd.server import build_app
from service.config import ClusterConfig, ObjectServerConfig
from service.timestamp import Timestamp

SECRET = b"device-secret"
DEV, PART = "sda", 7
T0 = 1_700_000_000.0


class Clock:
    now = T0

    def __call__(self) -> float:
        return self.now


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    synced: list[str] = []
    real = device_module.fsync_dir

    def fsync_dir(path: str) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(device_module, "fsync_dir", fsync_dir)
    return synced


# -- durable directories (item: a concurrent PUT's mkdir is not yet durable) ----------------


def test_a_directory_found_made_is_made_durable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / DEV).mkdir()
    engine = ObjectEngine(str(tmp_path), SECRET)
    try:
        dev = engine._device(DEV)
        synced = record_fsyncs(monkeypatch)
        digest = layout.name_hash(SECRET, "/a/c/o")
        hash_dir = layout.hash_dir(dev.path, PART, digest)
        suffix_dir = os.path.dirname(hash_dir)
        # Another PUT made these and has not fsynced their parents yet.
        os.makedirs(suffix_dir)
        dev.make_dirs_durable(hash_dir)
        objects, partition = (
            os.path.join(dev.path, "objects"),
            os.path.join(dev.path, "objects", str(PART)),
        )
        assert synced == [dev.path, objects, partition, suffix_dir]
        assert os.path.isdir(hash_dir)
        # objects/ and partition dirs are never removed: once durable, remembered.  A suffix
        # dir may be removed and made again by another process: its parent is fsynced again.
        synced.clear()
        other = layout.hash_dir(dev.path, PART, layout.name_hash(SECRET, "/a/c/p"))
        dev.make_dirs_durable(other)
        assert synced == [partition, os.path.dirname(other)]
    finally:
        engine.close()


def test_opening_a_device_makes_its_environment_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / DEV).mkdir()
    synced = record_fsyncs(monkeypatch)
    engine = ObjectEngine(str(tmp_path), SECRET)
    try:
        assert engine.open_devices() == [DEV]
        device_dir = str(tmp_path / DEV)
        assert synced == [os.path.join(device_dir, "objects.lmdb"), device_dir]
    finally:
        engine.close()


# -- device checks and opening, off the loop --------------------------------------------------


def test_device_checks_are_cached_for_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / DEV).mkdir()
    engine = ObjectEngine(str(tmp_path), SECRET)
    calls: list[str] = []
    real = devices_module.device_problem

    def device_problem(path: str, mount_check: bool) -> str | None:
        calls.append(path)
        return real(path, mount_check)

    monkeypatch.setattr(devices_module, "device_problem", device_problem)
    now = [100.0]
    monkeypatch.setattr(engine._devices, "_monotonic", lambda: now[0])
    try:
        for _ in range(50):
            with pytest.raises(ObjectNotFound):
                engine.get(DEV, PART, "a", "c", "o")
        assert len(calls) == 1
        now[0] += 1.5
        os.rename(tmp_path / DEV, tmp_path / "gone")
        with pytest.raises(DeviceUnavailable):
            engine.get(DEV, PART, "a", "c", "o")
        assert len(calls) == 2
    finally:
        engine.close()


def test_devices_are_opened_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened_on: list[str] = []
    real_open = lmdb.open

    def open_env(*args: Any, **kwargs: Any) -> Any:
        opened_on.append(threading.current_thread().name)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(device_module.lmdb, "open", open_env)
    for name in ("sda", "sdb"):
        (tmp_path / name).mkdir()
    (tmp_path / "not-a-device").write_text("")

    async def main() -> None:
        engine = ObjectEngine(str(tmp_path), SECRET)
        try:
            ts = Timestamp.from_seconds(T0)
            write = await engine.open_write("sda", PART, "a", "c", "o", ts, content_length=1)
            await write.write(b"x")
            await write.commit("text/plain")
            await engine.delete("sdb", PART, "a", "c", "o", ts)
            await engine.suffix_hashes("sdb", PART)
        finally:
            engine.close()

    asyncio.run(main())
    assert len(opened_on) == 2
    assert threading.main_thread().name not in opened_on


def test_the_server_opens_every_device_at_start_up(tmp_path: Path) -> None:
    for name in ("sda", "sdb"):
        (tmp_path / name).mkdir()
    (tmp_path / "not-a-device").write_text("")

    async def main() -> None:
        config = ObjectServerConfig(devices=tmp_path, mount_check=False)
        app = build_app(config, ClusterConfig("s"), rng=random.Random(0))
        async with TestClient(TestServer(app)):
            assert sorted(app[ENGINE]._devices._open) == ["sda", "sdb"]

    asyncio.run(main())


# -- LMDB reader slots of dead processes -----------------------------------------------------

_OPEN_ENV = "import lmdb, sys, time; env = lmdb.open(sys.argv[1], max_dbs=8, map_size=1 << 30)\n"


def _start(code: str, env_path: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _OPEN_ENV + code + "print('ready', flush=True); time.sleep(60)",
            env_path,
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def _kill_mid_read(env_path: str) -> int:
    """A process that dies inside a read transaction: its reader slot stays behind."""
    child = _start("txn = env.begin(); txn.get(b'k')\n", env_path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()  # type: ignore[union-attr]
    return child.pid


def test_reader_slots_of_dead_processes_are_freed(tmp_path: Path) -> None:
    (tmp_path / DEV).mkdir()
    env_path = str(tmp_path / DEV / "objects.lmdb")
    first = ObjectEngine(str(tmp_path), SECRET)
    first.open_devices()  # makes the environment
    first.close()
    holder = _start("", env_path)  # keeps the environment open: no open resets the table
    try:
        dead = _kill_mid_read(env_path)
        engine = ObjectEngine(str(tmp_path), SECRET)
        try:
            engine.open_devices()
            readers = engine._device(DEV).env.readers()
            assert f" {dead} " not in f" {readers} "  # freed when the device opened
            dead = _kill_mid_read(env_path)
            assert f" {dead} " in f" {engine._device(DEV).env.readers()} "
            assert engine.reader_check() == 1  # what the server runs periodically
            assert f" {dead} " not in f" {engine._device(DEV).env.readers()} "
        finally:
            engine.close()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]


# -- temp files of dead PUTs -----------------------------------------------------------------


@pytest.mark.parametrize("max_age_s", [None, 30.0])
def test_old_temp_files_are_swept_when_a_device_opens(
    tmp_path: Path, max_age_s: float | None
) -> None:
    tmp_dir = tmp_path / DEV / "tmp"
    tmp_dir.mkdir(parents=True)
    clock = Clock()
    ages = {"dead.tmp": 5 * 3600, "recent.tmp": 60, "new.tmp": 0}
    for name, age in ages.items():
        (tmp_dir / name).write_bytes(b"body")
        os.utime(tmp_dir / name, (clock.now - age, clock.now - age))
    (tmp_dir / "a-dir").mkdir()
    os.utime(tmp_dir / "a-dir", (0, 0))
    options = {} if max_age_s is None else {"tmp_max_age_s": max_age_s}
    engine = ObjectEngine(str(tmp_path), SECRET, clock=clock, **options)
    try:
        engine.open_devices()
        kept = {"new.tmp", "a-dir"} | ({"recent.tmp"} if max_age_s is None else set())
        assert set(os.listdir(tmp_dir)) == kept
    finally:
        engine.close()
