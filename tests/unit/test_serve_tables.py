"""`torus serve`: build_app parameters typed as config dataclasses get their own TOML table."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.config import ClusterConfig, ServerConfig
from tools import serve


@dataclass(frozen=True)
class FakeConfig(ServerConfig):
    greeting: str = "hello"


@dataclass(frozen=True)
class FakeIdentityConfig:
    token_secret: str
    token_lifetime_s: float = 3600.0


@dataclass(frozen=True)
class FakeQuotaConfig:
    max_objects: int = 10


class NotAConfig:
    pass


def fake_build_app(
    config: FakeConfig,
    cluster: ClusterConfig,
    identity: FakeIdentityConfig,
    *,
    quota: FakeQuotaConfig,
    engine: NotAConfig | None = None,
    clock: Any = None,
) -> object:
    return (config, cluster, identity, quota, engine, clock)


CONFIG = """
[cluster]
hash_path_secret = "s"

[fake]
bind_port = 9999
greeting = "hi"

[identity]
token_secret = "t"
"""


@pytest.fixture
def fake_service(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType("fake_service_module")
    module.build_app = fake_build_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_service_module", module)
    monkeypatch.setitem(serve.SERVICES, "fake", "fake_service_module:build_app")
    return "fake"


def test_only_config_dataclass_parameters_name_tables() -> None:
    assert serve.table_parameters(fake_build_app) == {
        "identity": FakeIdentityConfig,
        "quota": FakeQuotaConfig,
    }


def test_each_table_parameter_is_loaded_from_its_table(
    fake_service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        "service.runner.serve", lambda factory, config: served.append((factory, config)) or 0
    )
    path = tmp_path / "torus.toml"
    path.write_text(CONFIG)
    env = {"TORUS_QUOTA_MAX_OBJECTS": "7"}
    assert serve.run(fake_service, str(path), env=env) == 0
    [(factory, config)] = served
    assert config == FakeConfig(bind_port=9999, greeting="hi")
    built = factory(config)
    assert built == (
        config,
        ClusterConfig(hash_path_secret="s"),
        FakeIdentityConfig(token_secret="t"),
        FakeQuotaConfig(max_objects=7),  # a missing table is all defaults; env overrides
        None,
        None,
    )


def test_a_bad_extra_table_exits_2_before_starting(
    fake_service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "torus.toml"
    path.write_text(CONFIG.replace('token_secret = "t"', "token_lifetime_s = 5"))
    assert serve.run(fake_service, str(path), env={}) == serve.EXIT_CONFIG
    assert "[identity] token_secret is required" in capsys.readouterr().err


def test_a_service_whose_module_is_missing_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(serve.SERVICES, "ghost", "no_such_torus_module.server:build_app")
    path = tmp_path / "torus.toml"
    path.write_text(CONFIG)
    assert serve.run("ghost", str(path), env={}) == serve.EXIT_NOT_BUILT
    assert "no_such_torus_module.server is not built yet" in capsys.readouterr().err
