"""`torus serve`: the service table, config loading, and what a bad config does."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ObjectServerConfig
from tools import cli, serve


def test_serve_help_lists_the_services(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(service in out for service in serve.SERVICES)
    assert "--config" in out


def test_each_service_names_a_build_app_with_a_config_class() -> None:
    from objectd.server import build_app

    assert serve.load_factory("object") == (build_app, ObjectServerConfig)
    for service in serve.SERVICES:
        _factory, config_cls = serve.load_factory(service)
        assert config_cls.__name__.endswith("Config")


def test_a_bad_config_exits_2_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "torus.toml"
    config.write_text('[cluster]\nhash_path_secret = "s"\n[object]\nbind_prot = 1\n')
    assert cli.main(["serve", "object", "--config", str(config)]) == serve.EXIT_CONFIG
    assert "[object] unknown key 'bind_prot'" in capsys.readouterr().err
    config.write_text("[object]\n")
    assert serve.run("object", str(config), env={}) == serve.EXIT_CONFIG
    assert "[cluster] hash_path_secret is required" in capsys.readouterr().err
    assert serve.run("object", str(tmp_path / "missing.toml"), env={}) == serve.EXIT_CONFIG


def test_an_unknown_service_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "frobnicate", "--config", "x.toml"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
