"""service.lmdb_devices: what may block stays off the event loop, and dead readers are cleared."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service import lmdb_devices
from service.lmdb_devices import DeviceEnvs, DeviceUnavailable

TABLES = ("t",)


def child(script: str) -> subprocess.Popen:
    """A Python child running ``script``; returns once it printed its first line."""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def read_then_wait(path: Path) -> subprocess.Popen:
    """A process holding a read transaction (a reader slot) on the environment at ``path``."""
    return child(
        f"import lmdb, time\n"
        f"env = lmdb.open({str(path)!r}, max_dbs=8)\n"
        f"txn = env.begin()\n"
        f"txn.get(b'k')\n"
        f"print('ready', flush=True)\n"
        f"time.sleep(60)\n"
    )


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate()  # waits, and closes its stdout


def test_opening_clears_the_reader_slots_of_dead_processes(tmp_path: Path) -> None:
    (tmp_path / "sda").mkdir()
    path = tmp_path / "sda" / "x.lmdb"
    kill(read_then_wait(path))  # died holding a read transaction: its slot stays
    envs = DeviceEnvs(str(tmp_path), "x.lmdb", TABLES)
    try:
        env = envs.get("sda").env
        assert env.reader_check() == 0  # the open cleared it already
        assert envs.reader_check() == 0
        kill(read_then_wait(path))  # another dies while the environment is open
        assert envs.reader_check() == 1  # what a periodic call clears
    finally:
        envs.close()


def test_the_device_check_is_cached_for_its_ttl(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sda").mkdir()
    checked: list[str] = []
    isdir = os.path.isdir
    monkeypatch.setattr(lmdb_devices.os.path, "isdir", lambda p: checked.append(p) or isdir(p))
    envs = DeviceEnvs(str(tmp_path), "x.lmdb", TABLES, check_ttl_s=0.3)
    try:
        for _ in range(3):
            envs.get("sda")
        assert len(checked) == 1 and envs.ready("sda")
        with pytest.raises(DeviceUnavailable):
            envs.get("sdb")
        (tmp_path / "sdb").mkdir()
        with pytest.raises(DeviceUnavailable):  # still the cached answer
            envs.get("sdb")
        time.sleep(0.35)
        assert not envs.ready("sda")  # the check is due again
        envs.get("sdb")
        envs.get("sda")
        assert len(checked) == 4
    finally:
        envs.close()


@pytest.mark.parametrize("how", ["prepare", "write"])
def test_a_first_open_waiting_for_another_process_leaves_the_loop_free(
    tmp_path: Path, how: str
) -> None:
    (tmp_path / "sda").mkdir()
    path = tmp_path / "sda" / "x.lmdb"
    holder = child(  # holds the environment's write lock, which open_db waits for
        f"import lmdb, time\n"
        f"env = lmdb.open({str(path)!r}, max_dbs=8)\n"
        f"txn = env.begin(write=True)\n"
        f"print('ready', flush=True)\n"
        f"time.sleep(0.8)\n"
        f"txn.abort()\n"
    )
    envs = DeviceEnvs(str(tmp_path), "x.lmdb", TABLES)

    async def main() -> tuple[float, int]:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        start = time.monotonic()
        if how == "prepare":
            await envs.prepare("sda")
        else:
            await envs.write("sda", lambda txn, opened: txn.put(b"k", b"v", db=opened.tables["t"]))
        elapsed = time.monotonic() - start
        beat.cancel()
        return elapsed, ticks

    try:
        elapsed, ticks = asyncio.run(main())
        assert elapsed > 0.4  # it did wait for the other process...
        assert ticks >= 0.5 * elapsed / 0.01  # ...while the loop kept running
        assert envs.ready("sda")
    finally:
        holder.communicate()
        envs.close()


def test_prepare_leaves_errors_to_the_call_that_follows(tmp_path: Path) -> None:
    envs = DeviceEnvs(str(tmp_path), "x.lmdb", TABLES)
    try:
        asyncio.run(envs.prepare("sda"))  # no such device: nothing raised here...
        assert not envs.ready("sda")
        with pytest.raises(DeviceUnavailable):  # ...but by the read that follows
            envs.get("sda")
    finally:
        envs.close()
