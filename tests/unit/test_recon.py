"""Recon records (replicator/recon.py) and the daemon writing one after each pass
(replicator/daemon.py): atomic replacement, failed passes recorded, and a record that cannot
be written logged and counted, never failing the pass."""

from __future__ import annotations

import asyncio
import logging
import os
import time as time_module
from dataclasses import dataclass
from pathlib import Path

import pytest

from replicator import daemon as daemon_module
from replicator import recon
from replicator.config import DaemonConfig
from replicator.daemon import Daemon


@dataclass
class PassStats:
    devices: int = 0
    found: int = 0


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


class OnePassDaemon(Daemon[PassStats]):
    name = "test-daemon"

    def __init__(self, devices: Path, time: FakeTime) -> None:
        super().__init__(clock=time.clock, wall_clock=time.wall)
        self.config = DaemonConfig(devices=devices, mount_check=False)
        self.time = time
        self.fail: Exception | None = None

    async def sweep(self) -> PassStats:
        self.time.now += 2.5
        if self.fail is not None:
            raise self.fail
        return PassStats(devices=1, found=3)


def record(**changes: object) -> recon.PassRecord:
    fields: dict[str, object] = {
        "daemon": "object-updater",
        "devices": "/srv/node",
        "host": "h1",
        "pid": 42,
        "started_at": 1_700_000_000.5,
        "duration_s": 1.25,
        "ok": True,
        "error": None,
        "stats": {"found": 3, "successes": 3},
    }
    fields.update(changes)
    return recon.PassRecord(**fields)  # type: ignore[arg-type]


def test_a_record_round_trips_and_has_its_version_marker() -> None:
    data = recon.encode(record())
    assert data.startswith(b"{") and b'"v": 1' in data
    assert recon.decode(data) == record()
    failed = record(ok=False, error="OSError: gone", stats={})
    assert recon.decode(recon.encode(failed)) == failed


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"v": 2}', recon.encode(record()).replace(b'"v": 1', b'"v": 9')],
)
def test_what_is_not_a_version_1_record_does_not_decode(data: bytes) -> None:
    with pytest.raises(ValueError):
        recon.decode(data)


def test_run_once_writes_the_pass_to_devices_daemon_recon(tmp_path: Path) -> None:
    time = FakeTime()
    daemon = OnePassDaemon(tmp_path, time)
    stats = asyncio.run(daemon.run_once())
    path = tmp_path / "test-daemon.recon"
    assert daemon.recon_file() == path
    got = recon.read(path)
    assert got is not None
    assert (got.daemon, got.devices, got.pid, got.ok, got.error) == (
        "test-daemon",
        str(tmp_path),
        os.getpid(),
        True,
        None,
    )
    assert got.started_at == 1_700_000_100.0 and got.duration_s == pytest.approx(2.5)
    assert got.stats == {"devices": 1, "found": 3} and stats == PassStats(1, 3)
    assert os.listdir(tmp_path) == ["test-daemon.recon"]  # no temp file left
    assert recon.find(tmp_path) == {"test-daemon": path}


def test_a_failed_pass_is_recorded_as_failed_and_still_raises(tmp_path: Path) -> None:
    daemon = OnePassDaemon(tmp_path, FakeTime())
    asyncio.run(daemon.run_once())
    daemon.fail = OSError("device gone")
    with pytest.raises(OSError):
        asyncio.run(daemon.run_once())
    got = recon.read(tmp_path / "test-daemon.recon")
    assert got is not None and not got.ok
    assert got.error == "OSError: device gone" and got.stats == {}


def test_a_record_that_cannot_be_written_is_logged_and_the_pass_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = OnePassDaemon(tmp_path / "no such directory", FakeTime())
    with caplog.at_level(logging.WARNING, logger="torus.test-daemon"):
        stats = asyncio.run(daemon.run_once())
    assert stats == PassStats(1, 3) and daemon.passes == 1
    assert daemon.recon_errors == 1
    assert any("recon record not written" in r.getMessage() for r in caplog.records)


def test_an_unexpected_error_while_recording_is_logged_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(path: Path, rec: recon.PassRecord) -> None:
        raise RuntimeError("bug in the writer")

    monkeypatch.setattr(recon, "write", broken)
    daemon = OnePassDaemon(tmp_path, FakeTime())
    with caplog.at_level(logging.WARNING, logger="torus.test-daemon"):
        assert asyncio.run(daemon.run_once()) == PassStats(1, 3)
    assert daemon.recon_errors == 1
    assert any(r.exc_info for r in caplog.records)


def test_a_write_that_fails_before_the_rename_leaves_the_old_record_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "object-updater.recon"
    recon.write(path, record(pid=1))

    def no_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError):
        recon.write(path, record(pid=2))
    monkeypatch.undo()
    got = recon.read(path)
    assert got is not None and got.pid == 1  # the old record, whole
    assert os.listdir(tmp_path) == ["object-updater.recon"]


def test_a_missing_record_is_none_and_a_torn_one_an_error(tmp_path: Path) -> None:
    assert recon.read(tmp_path / "x.recon") is None
    (tmp_path / "x.recon").write_bytes(recon.encode(record())[:20])
    with pytest.raises(ValueError):
        recon.read(tmp_path / "x.recon")


def test_a_daemon_without_a_devices_directory_keeps_no_record() -> None:
    class Bare(Daemon[PassStats]):
        async def sweep(self) -> PassStats:
            return PassStats()

    daemon = Bare()
    assert daemon.recon_file() is None
    asyncio.run(daemon.run_once())
    assert daemon.recon_errors == 0


def test_recon_dir_overrides_the_devices_directory(tmp_path: Path) -> None:
    daemon = OnePassDaemon(tmp_path / "devices", FakeTime())
    daemon.recon_dir = tmp_path
    asyncio.run(daemon.run_once())
    assert recon.read(tmp_path / "test-daemon.recon") is not None


def test_a_hung_write_is_given_up_on_and_the_pass_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hung(path: Path, rec: recon.PassRecord) -> None:
        time_module.sleep(0.5)  # a filesystem that does not answer (a worker thread)

    monkeypatch.setattr(recon, "write", hung)
    monkeypatch.setattr(daemon_module, "RECON_WRITE_TIMEOUT_S", 0.05)
    daemon = OnePassDaemon(tmp_path, FakeTime())
    assert asyncio.run(daemon.run_once()) == PassStats(1, 3)
    assert daemon.recon_errors == 1
