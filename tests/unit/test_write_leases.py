"""objectd/write_leases.py: a name's lease is held once per device, across requests of one
process (its set) and across worker processes (a record lock of the device's lock file)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from objectd.errors import DeviceUnavailable
from objectd.write_leases import LOCK_FILE, LeaseHeld, WriteLeases


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    (tmp_path / "sda").mkdir()
    (tmp_path / "sdb").mkdir()
    return tmp_path


def test_a_held_name_is_refused_until_released(devices: Path) -> None:
    leases = WriteLeases(str(devices))
    with leases.take("sda", "/a/c/o"):
        with pytest.raises(LeaseHeld):
            leases.take("sda", "/a/c/o")
        with leases.take("sda", "/a/c/other"), leases.take("sdb", "/a/c/o"):
            pass  # another name, or the same on another device: no conflict
    with leases.take("sda", "/a/c/o"):
        pass
    assert (devices / "sda" / LOCK_FILE).exists()
    leases.close()


def test_leaving_twice_releases_once(devices: Path) -> None:
    leases = WriteLeases(str(devices))
    lease = leases.take("sda", "/a/c/o")
    with lease:
        pass
    again = leases.take("sda", "/a/c/o")
    lease.__exit__(None, None, None)  # a stale release must not free the new holder's lease
    with pytest.raises(LeaseHeld):
        leases.take("sda", "/a/c/o")
    again.__exit__(None, None, None)
    leases.close()


def _try_in_child(root: str, name: str, answer: multiprocessing.Queue) -> None:
    leases = WriteLeases(root)
    try:
        with leases.take("sda", name):
            answer.put("taken")
    except LeaseHeld:
        answer.put("held")


def _child_outcome(root: str, name: str) -> str:
    context = multiprocessing.get_context("fork")
    answer = context.Queue()
    child = context.Process(target=_try_in_child, args=(root, name, answer))
    child.start()
    child.join(30)
    return answer.get(timeout=5)


def test_another_process_sees_the_lease(devices: Path) -> None:
    leases = WriteLeases(str(devices))
    with leases.take("sda", "/a/c/o"):
        assert _child_outcome(str(devices), "/a/c/o") == "held"
        assert _child_outcome(str(devices), "/a/c/p") == "taken"
    assert _child_outcome(str(devices), "/a/c/o") == "taken"
    leases.close()


def test_a_missing_device_is_unavailable(devices: Path) -> None:
    with pytest.raises(DeviceUnavailable):
        WriteLeases(str(devices)).take("sdz", "/a/c/o")


def test_without_files_the_process_alone_is_kept_apart() -> None:
    leases = WriteLeases(None)
    with leases.take("sda", "/a/c/o"), pytest.raises(LeaseHeld):
        leases.take("sda", "/a/c/o")
