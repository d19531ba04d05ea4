"""`torus ring` and its files: backups, atomic saves, ring files, bad files, the real process."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ring import ringfile
from ring.builder import RingBuilder
from tools import ring_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000


def ring(builder: Path, *argv: str, now: float = T0) -> int:
    return ring_cli.main([str(builder), *argv], clock=lambda: now)


def one_error_line(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("torus ring: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


@pytest.fixture
def builder(tmp_path: Path) -> Path:
    """A rebalanced builder (64 partitions, 3 replicas, 4 zones) and its ring."""
    path = tmp_path / "object.builder"
    assert ring(path, "create", "6", "3", "1") == 0
    for zone in range(1, 5):
        assert ring(path, "add", f"z{zone}-10.0.0.{zone}:6200/sda", "100", now=T0 + zone) == 0
    assert ring(path, "rebalance", "--seed", "1", now=T0 + 10) == 0
    return path


def backups(builder: Path) -> dict[str, bytes]:
    folder = builder.parent / "backups"
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# -- backups ------------------------------------------------------------------


def test_each_change_first_backs_up_the_builder_it_replaces(builder: Path) -> None:
    before = builder.read_bytes()
    assert ring(builder, "set_weight", "d0", "50", now=T0 + 100) == 0
    saved = backups(builder)
    assert saved[f"{T0 + 100}.object.builder"] == before
    # the four adds and the rebalance each kept the builder they replaced
    assert {f"{T0 + t}.object.builder" for t in (1, 2, 3, 4, 10)} <= set(saved)


def test_two_changes_in_one_second_keep_both_backups(builder: Path) -> None:
    first = builder.read_bytes()
    assert ring(builder, "set_weight", "d0", "50", now=T0 + 100) == 0
    second = builder.read_bytes()
    assert ring(builder, "set_weight", "d0", "60", now=T0 + 100) == 0
    saved = backups(builder)
    assert saved[f"{T0 + 100}.object.builder"] == first
    assert saved[f"{T0 + 100}-1.object.builder"] == second


def test_ring_files_are_backed_up_before_being_replaced(builder: Path) -> None:
    ring_path = builder.with_suffix(".ring")
    first_ring = ring_path.read_bytes()
    assert not any(name.endswith(".ring") for name in backups(builder))  # nothing replaced yet
    assert ring(builder, "set_info", "d0", "_new meta", now=T0 + 200) == 0
    assert ring(builder, "write_ring", now=T0 + 300) == 0
    assert backups(builder)[f"{T0 + 300}.object.ring"] == first_ring
    assert ringfile.read(ring_path).devices[0].meta == "new meta"


# -- atomic saves -----------------------------------------------------------------


def test_a_failed_save_leaves_the_builder_whole_and_no_temp_file(
    builder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = builder.read_bytes()
    capsys.readouterr()
    real_replace = os.replace

    def disk_full_at_rename(src: str, dst: str) -> None:
        if os.fspath(dst) == str(builder):
            raise OSError(28, "No space left on device", str(builder))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_at_rename)
    assert ring(builder, "set_weight", "d0", "5", now=T0 + 100) == 2
    one_error_line(capsys, "No space left on device", str(builder))
    assert builder.read_bytes() == before
    leftovers = [p.name for p in builder.parent.rglob("*") if p.name.startswith(".tmp")]
    assert leftovers == []


def test_a_failed_rebalance_writes_neither_file(
    builder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = (builder.read_bytes(), builder.with_suffix(".ring").read_bytes())
    assert ring(builder, "add", "z5-10.0.0.5:6200/sda", "100") == 0
    after_add = builder.read_bytes()

    def broken(self: RingBuilder) -> None:
        from ring.errors import RingValidationError

        raise RingValidationError("partition 7 has two replicas on one device")

    monkeypatch.setattr(RingBuilder, "validate", broken)
    assert ring(builder, "rebalance", now=T0 + 7200) == 2
    capsys.readouterr()
    assert builder.read_bytes() == after_add
    assert builder.with_suffix(".ring").read_bytes() == files[1]


# -- ring files ----------------------------------------------------------------------


def test_write_ring_matches_the_builder(builder: Path) -> None:
    ring_path = builder.with_suffix(".ring")
    ring_path.unlink()
    assert ring(builder, "write_ring") == 0
    assert ringfile.read(ring_path) == RingBuilder.load(str(builder)).get_ring()


def test_write_ring_before_any_rebalance_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "account.builder"
    assert ring(path, "create", "4", "1", "0") == 0
    assert ring(path, "write_ring") == 2
    one_error_line(capsys, "never been rebalanced")
    assert not (tmp_path / "account.ring").exists()


def test_write_builder_rebuilds_a_lost_builder_from_its_ring(
    builder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = RingBuilder.load(str(builder))
    assert ring(builder, "write_builder", "3") == 2  # never overwrites a builder
    one_error_line(capsys, "already exists")
    builder.unlink()
    assert ring(builder, "write_builder", "3") == 0
    rebuilt = RingBuilder.load(str(builder))
    assert rebuilt.get_ring() == original.get_ring()
    assert (rebuilt.min_part_hours, rebuilt.id) == (3, original.id)


# -- bad files and bad commands ----------------------------------------------------------


def with_null_ip(data: bytes) -> bytes:
    """A well-framed builder file whose first device has "ip": null."""
    body = zlib.decompress(data[10:])
    (length,) = struct.unpack(">I", body[:4])
    header = json.loads(body[4 : 4 + length])
    header["devices"][0]["ip"] = None
    raw = json.dumps(header).encode()
    return data[:10] + zlib.compress(struct.pack(">I", len(raw)) + raw + body[4 + length :])


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda data: b"", ["truncated"]),
        (lambda data: b"not a builder file at all", ["bad magic"]),
        (lambda data: data[:20] + bytes(20) + data[40:], ["corrupt compressed body"]),
        (with_null_ip, ["device 0 is invalid", "must be a string"]),
    ],
)
def test_a_corrupt_builder_file_is_one_error_line(
    builder: Path,
    damage: Callable[[bytes], bytes],
    words: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    content = damage(builder.read_bytes())
    builder.write_bytes(content)
    capsys.readouterr()
    for argv in ([], ["rebalance"], ["add", "z9-10.0.0.9:6200/sda", "1"]):
        assert ring(builder, *argv) == 2
        one_error_line(capsys, *words)
    assert builder.read_bytes() == content


def test_the_summary_reports_a_bad_ring_file_and_still_exits_0(
    builder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring_path = builder.with_suffix(".ring")
    for damaged in (b"garbage", with_null_ip(ring_path.read_bytes())):
        ring_path.write_bytes(damaged)
        capsys.readouterr()
        assert ring(builder) == 0
        assert f"Ring file {ring_path} is invalid: " in capsys.readouterr().out


def test_a_missing_builder_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in ([], ["add", "z1-10.0.0.1:6200/sda", "1"], ["rebalance"]):
        assert ring(tmp_path / "nope.builder", *argv) == 2
        one_error_line(capsys, "does not exist", "create")
    assert ring(tmp_path, "list") == 2  # a directory, not a file
    one_error_line(capsys, str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_unknown_command_and_usage(builder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert ring(builder, "frobnicate") == 2
    one_error_line(capsys, "unknown command 'frobnicate'", "rebalance")
    assert ring_cli.main([]) == 2
    one_error_line(capsys, "usage: torus ring BUILDER_FILE")
    assert ring_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("create", "add", "set_info", "rebalance", "dispersion", "write_ring"):
        assert f"\n  {command} " in out
    assert ring(builder, "add", "--help") == 0
    assert capsys.readouterr().out.startswith(f"usage: torus ring {builder} add [r<region>]z")


# -- the real command --------------------------------------------------------------------


def torus(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "ring", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_torus_command_builds_a_ring(tmp_path: Path) -> None:
    path = str(tmp_path / "container.builder")
    assert torus(path, "create", "8", "2", "0").returncode == 0
    added = torus(path, "add", "r1z1-127.0.0.1:6201/sdb1", "100", "r1z2-127.0.0.2:6201/sdb1", "100")
    assert added.returncode == 0, added.stderr
    rebalanced = torus(path, "rebalance", "--seed", "3")
    assert rebalanced.returncode == 0, rebalanced.stderr
    assert "Reassigned 512 (100.00%) partition-replicas" in rebalanced.stdout
    summary = torus(path)
    assert summary.returncode == 0 and "is up-to-date" in summary.stdout
    again = torus(path, "rebalance")
    assert again.returncode == 1 and "no need" in again.stdout
    assert ringfile.read(tmp_path / "container.ring") == RingBuilder.load(path).get_ring()


def test_the_torus_command_fails_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "object.builder"
    path.write_bytes(b"TORUSBLD\x00\x01garbage")
    for argv in ([], ["set_weight", "d0", "-3"], ["remove", "-not-an-ip"]):
        result = torus(str(path), *argv)
        assert result.returncode == 2, result
        assert result.stderr.startswith("torus ring: error:"), result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
