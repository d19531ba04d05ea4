"""The `torus` command line: options reach their commands, argparse exit codes.

Real `up`/`down` processes are tested in tests/functional/test_torus_up.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_up_and_down_hand_their_options_to_tools_up(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    def fake_up(data: str, port: int, *, detach: bool, daemons: bool) -> int:
        calls.append(("up", data, port, detach, daemons))
        return 0

    def fake_down(data: str, *, grace_s: float) -> int:
        calls.append(("down", data, grace_s))
        return 0

    monkeypatch.setattr("tools.up.up", fake_up)
    monkeypatch.setattr("tools.up.down", fake_down)
    assert cli.main(["up", "--data", "d", "--port", "0", "--detach"]) == 0
    assert cli.main(["up"]) == 0
    assert cli.main(["up", "--no-daemons"]) == 0
    assert cli.main(["down", "--data", "d", "--grace", "3"]) == 0
    assert cli.main(["down"]) == 0
    assert calls == [
        ("up", "d", 0, True, True),
        ("up", "./data", 8080, False, True),
        ("up", "./data", 8080, False, False),
        ("down", "d", 3.0),
        ("down", "./data", 15.0),
    ]


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_up_refuses_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["up", "--port", port])
    assert exit_info.value.code == 2
    assert "invalid port value" in capsys.readouterr().err


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


def test_up_without_daemons_plans_the_servers_only(tmp_path: Path) -> None:
    from tools import up
    from tools.aio_layout import ALL_NODE_DAEMONS, DataDir

    data = DataDir.at(tmp_path / "data")
    data.make()
    with_daemons, _ = up._prepare(data, 0)
    servers_only, _ = up._prepare(data, 0, daemons=False)
    kinds = {spec.name.rpartition("-")[0] for spec in with_daemons}
    assert set(ALL_NODE_DAEMONS) <= kinds
    assert [spec.name for spec in servers_only] == [
        spec.name for spec in with_daemons if spec.port is not None
    ]
