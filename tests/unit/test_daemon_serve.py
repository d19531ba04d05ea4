"""`torus serve` for the daemons: their table names, config classes and `--once`."""

from __future__ import annotations

from pathlib import Path

import pytest

from replicator.config import ContainerUpdaterConfig, ObjectUpdaterConfig
from service.config import load_toml
from tools import cli, serve


def test_each_daemon_has_an_opener_and_a_config_class() -> None:
    assert serve.load_factory("object-updater")[1] is ObjectUpdaterConfig
    assert serve.load_factory("container-updater")[1] is ContainerUpdaterConfig
    assert not set(serve.DAEMONS) & set(serve.SERVICES)


def test_a_daemon_reads_its_underscored_table_and_its_environment(tmp_path: Path) -> None:
    path = tmp_path / "torus.toml"
    path.write_text(
        '[cluster]\nhash_path_secret = "s"\n'
        "[object_updater]\ninterval_s = 30\nmount_check = false\nupdates_per_s = 5\n"
    )
    opener, config_cls = serve.load_factory("object-updater")
    env = {"TORUS_OBJECT_UPDATER_DEVICES": "/srv/node3"}
    config, arguments = serve.load_arguments(
        "object-updater", opener, config_cls, load_toml(path), env
    )
    assert config == ObjectUpdaterConfig(
        devices=Path("/srv/node3"), interval_s=30.0, mount_check=False, updates_per_s=5.0
    )
    assert arguments["cluster"].hash_path_secret == "s"


def test_once_is_for_daemons_and_a_bad_daemon_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "torus.toml"
    path.write_text('[cluster]\nhash_path_secret = "s"\n[container_updater]\nconcurrency = 0\n')
    assert cli.main(["serve", "object", "--once", "--config", str(path)]) == serve.EXIT_CONFIG
    assert "--once is for daemons only" in capsys.readouterr().err
    assert serve.run("container-updater", str(path), env={}, once=True) == serve.EXIT_CONFIG
    assert "[container_updater] concurrency must be >= 1" in capsys.readouterr().err


def test_serve_help_lists_the_daemons(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "object-updater" in out and "container-updater" in out and "--once" in out
