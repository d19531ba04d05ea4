"""The `torus` command line: honest about what is not built, argparse exit codes, a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_up_says_servers_are_not_built_and_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", "--data", "/nonexistent", "--port", "9999", "--detach"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        "torus up: the storage servers are not built yet (see issue 4); nothing was started"
    )


def test_down_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["down"]) == 3
    assert "not built yet" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "down", "test", "ring"):
        assert command in out


@pytest.mark.parametrize("argv", [["frobnicate"], [], ["up", "--no-such-option"]])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage: torus" in capsys.readouterr().err


def test_passthrough_commands_get_every_argument_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []

    def fake_ring_cli(rest: list[str]) -> int:
        seen.append(rest)
        return 0

    monkeypatch.setitem(cli.PASSTHROUGH, "ring", fake_ring_cli)
    argv = ["ring", "object.builder", "add", "--region", "1", "--", "-h"]
    assert cli.main(argv) == 0
    assert seen == [argv[1:]]


def test_up_in_a_real_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "up"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert "storage servers are not built yet" in proc.stderr
