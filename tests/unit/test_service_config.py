"""service.config: one TOML file, one frozen dataclass per table."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from service.config import (
    AccountServerConfig,
    ClusterConfig,
    ConfigError,
    ContainerServerConfig,
    ObjectServerConfig,
    load_section,
    load_toml,
)

CLUSTER_TOML = """
[cluster]
hash_path_secret = "s3cret"
ring_dir = "/etc/torus-test"

[object]
bind_ip = "10.0.0.5"
devices = "/srv/node"
mount_check = false
node_timeout_s = 10
workers = 4

[container]
bind_port = 7201
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "torus.toml"
    path.write_text(CLUSTER_TOML, encoding="utf-8")
    return path


def test_a_file_loads_into_each_services_dataclass(config_file: Path) -> None:
    cluster = load_section(config_file, "cluster", ClusterConfig)
    assert cluster == ClusterConfig("s3cret", Path("/etc/torus-test"))
    obj = load_section(config_file, "object", ObjectServerConfig)
    assert (obj.bind_ip, obj.bind_port, obj.workers) == ("10.0.0.5", 6200, 4)
    assert obj.mount_check is False
    assert obj.node_timeout_s == 10.0 and isinstance(obj.node_timeout_s, float)
    assert (obj.inline_max_bytes, obj.max_batch, obj.devices) == (65536, 256, Path("/srv/node"))
    assert load_section(config_file, "container", ContainerServerConfig).bind_port == 7201
    assert load_section(config_file, "account", AccountServerConfig).bind_port == 6202


def test_configs_are_frozen(config_file: Path) -> None:
    obj = load_section(config_file, "object", ObjectServerConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.workers = 2  # type: ignore[misc]


def test_a_parsed_document_works_as_well() -> None:
    doc = {"cluster": {"hash_path_secret": "x"}}
    assert load_section(doc, "cluster", ClusterConfig).ring_dir == Path("/etc/torus")
    assert load_section(doc, "object", ObjectServerConfig) == ObjectServerConfig()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"bind_prot": 1}, r"\[container\] unknown key 'bind_prot'; known keys: .*bind_port"),
        ({"inline_max_bytes": 1}, r"\[container\] unknown key 'inline_max_bytes'"),
        ({"bind_port": "6200"}, r"\[container\] bind_port must be an integer, got '6200'"),
        ({"bind_port": 62.5}, r"bind_port must be an integer"),
        ({"mount_check": 1}, r"\[container\] mount_check must be a boolean, got 1"),
        ({"workers": True}, r"workers must be an integer, got True"),
        ({"node_timeout_s": "3"}, r"node_timeout_s must be a number"),
        ({"devices": ""}, r"devices must be a non-empty path string"),
        ({"bind_port": 70000}, r"\[container\] bind_port must be 0..65535, got 70000"),
        ({"workers": -1}, r"workers must be >= 0"),
        ({"log_level": "LOUD"}, r"log_level must be one of"),
        ({"conn_timeout_s": 0}, r"conn_timeout_s and node_timeout_s must be > 0"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_section({"container": table}, "container", ContainerServerConfig)


def test_unknown_key_names_the_section_for_objects() -> None:
    with pytest.raises(ConfigError, match=r"\[object\] unknown key 'bind_prot'"):
        load_section({"object": {"bind_prot": 1}}, "object", ObjectServerConfig)


def test_the_secret_is_required_and_not_empty() -> None:
    with pytest.raises(ConfigError, match=r"\[cluster\] hash_path_secret is required"):
        load_section({}, "cluster", ClusterConfig)
    with pytest.raises(ConfigError, match="hash_path_secret must not be empty"):
        load_section({"cluster": {"hash_path_secret": ""}}, "cluster", ClusterConfig)


def test_a_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[object\] must be a table"):
        load_section({"object": 3}, "object", ObjectServerConfig)


def test_the_environment_overrides_the_file_when_passed(config_file: Path) -> None:
    env = {
        "TORUS_CLUSTER_HASH_PATH_SECRET": "from-env",
        "TORUS_OBJECT_BIND_PORT": "6300",
        "TORUS_OBJECT_MOUNT_CHECK": "TRUE",
        "TORUS_OBJECT_NODE_TIMEOUT_S": "2.5",
        "TORUS_OBJECT_DEVICES": "/mnt/disks",
        "UNRELATED": "x",
    }
    assert load_section(config_file, "cluster", ClusterConfig, env=env).hash_path_secret == (
        "from-env"
    )
    obj = load_section(config_file, "object", ObjectServerConfig, env=env)
    assert (obj.bind_port, obj.mount_check, obj.node_timeout_s) == (6300, True, 2.5)
    assert obj.devices == Path("/mnt/disks")
    # Without env nothing is read from the process environment.
    assert load_section(config_file, "object", ObjectServerConfig).bind_port == 6200


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TORUS_OBJECT_BIND_PORT", "high", "TORUS_OBJECT_BIND_PORT .* must be an integer"),
        ("TORUS_OBJECT_MOUNT_CHECK", "yes", "must be true or false"),
    ],
)
def test_bad_environment_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_section({}, "object", ObjectServerConfig, env={name: value})


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[object\nbind_port = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_section(bad, "object", ObjectServerConfig)


@dataclass(frozen=True)
class _WithTable:
    name: str = "x"
    labels: dict[str, str] = field(default_factory=dict)


def test_a_table_of_strings_loads_into_a_dict_field() -> None:
    doc = tomllib.loads('[t]\nname = "y"\n\n[t.labels]\n"a:b" = "one two"\nc = ""\n')
    loaded = load_section(doc, "t", _WithTable)
    assert loaded == _WithTable("y", {"a:b": "one two", "c": ""})
    assert loaded.labels is not doc["t"]["labels"]  # a copy, not the parsed document's table
    assert load_section({}, "t", _WithTable).labels == {}  # the default_factory
    assert load_section({"t": {"labels": {}}}, "t", _WithTable).labels == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a=b", r"\[t\] labels must be a table of strings, got 'a=b'"),
        (["a", "b"], r"labels must be a table of strings"),
        ({"a": 1}, r"\[t\] labels.a must be a string, got 1"),
        ({"a": {"b": "c"}}, r"labels.a must be a string"),
        ({"a": ["b"]}, r"labels.a must be a string"),
    ],
)
def test_a_dict_field_refuses_what_is_not_a_table_of_strings(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_section({"t": {"labels": value}}, "t", _WithTable)


def test_a_dict_field_from_the_environment_is_json() -> None:
    doc = {"t": {"labels": {"old": "gone"}}}
    env = {"TORUS_T_LABELS": '{"a:b": "k .admin", "c": "d"}'}
    assert load_section(doc, "t", _WithTable, env=env).labels == {"a:b": "k .admin", "c": "d"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=b", r"TORUS_T_LABELS \(\[t\] labels\) must be a JSON object of strings"),
        ('["a"]', r"must be a JSON object of strings"),
        ("", r"must be a JSON object of strings"),
        ('{"a": 1}', r"\[t\] labels.a must be a string, got 1"),
    ],
)
def test_a_bad_dict_from_the_environment_names_the_variable(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_section({}, "t", _WithTable, env={"TORUS_T_LABELS": text})


def test_other_dict_types_are_still_unsupported() -> None:
    @dataclass(frozen=True)
    class Counts:
        counts: dict[str, int] = field(default_factory=dict)

    with pytest.raises(ConfigError, match=r"\[t\] counts: unsupported field type"):
        load_section({"t": {"counts": {"a": 1}}}, "t", Counts)
