"""identity.config: the [identity] table, loaded by service.config like every other table."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from identity.config import IdentityConfig
from identity.tokens import TokenCodec
from identity.users import TEST_USERS
from service.config import ConfigError, load_section

SECRET = "identity-config-secret"

IDENTITY_TOML = f"""
[cluster]
hash_path_secret = "s3cret"

[identity]
bind_port = 5001
token_secret = "{SECRET}"
token_ttl_s = 600
storage_url_base = "https://swift.example.com"

[identity.users]
"test:tester" = "testing .admin"
"test:tester3" = "testing3"
"""


def test_a_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "torus.toml"
    path.write_text(IDENTITY_TOML, encoding="utf-8")
    config = load_section(path, "identity", IdentityConfig)
    assert (config.bind_ip, config.bind_port, config.token_ttl_s) == ("127.0.0.1", 5001, 600.0)
    assert config.token_secret == SECRET and config.reseller_prefix == "AUTH_"
    assert config.storage_url_base == "https://swift.example.com"
    assert config.users == {"test:tester": "testing .admin", "test:tester3": "testing3"}


def test_defaults_have_no_users() -> None:
    config = load_section({"identity": {"token_secret": SECRET}}, "identity", IdentityConfig)
    assert config == IdentityConfig(token_secret=SECRET)
    assert config.users == {} and config.bind_port == 5000 and config.token_ttl_s == 86400.0
    assert config.storage_url_base == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.users = {}  # type: ignore[misc]


def test_the_test_users_fit_the_config() -> None:
    doc = {"identity": {"token_secret": SECRET, "users": TEST_USERS}}
    assert load_section(doc, "identity", IdentityConfig).users == TEST_USERS


def test_an_inline_table_works_as_well() -> None:
    doc = tomllib.loads(f'[identity]\ntoken_secret = "{SECRET}"\nusers = {{ "a:b" = "k" }}\n')
    assert load_section(doc, "identity", IdentityConfig).users == {"a:b": "k"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"token_secret": ""}, r"token_secret is required"),
        ({"token_secret": "too-short"}, r"token_secret must be at least 16 characters"),
        ({"token_ttl_s": 0}, r"\[identity\] token_ttl_s must be > 0"),
        ({"reseller_prefix": "AUTH"}, r"reseller_prefix must end with '_'"),
        ({"storage_url_base": "swift.example.com"}, r"storage_url_base must be 'http"),
        ({"storage_url_base": "ftp://h"}, r"storage_url_base must be"),
        ({"storage_url_base": "https://"}, r"storage_url_base must be"),
        ({"users": {"tester": "testing"}}, r"\[identity\] users: 'tester' must be 'account:user'"),
        ({"users": {"test:tester": ""}}, r"\[identity\] users: 'test:tester' has no key"),
        ({"users": {"test:tester": 1}}, r"\[identity\] users.test:tester must be a string, got 1"),
        ({"users": "test:tester testing"}, r"\[identity\] users must be a table of strings"),
        ({"bind_port": 70000}, r"bind_port must be 0..65535"),
        ({"user_test_tester": "testing"}, r"unknown key 'user_test_tester'"),
    ],
)
def test_bad_values_are_refused(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_section({"identity": {"token_secret": SECRET, **table}}, "identity", IdentityConfig)


def test_no_secret_at_all_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[identity\] token_secret is required"):
        load_section({}, "identity", IdentityConfig)


def test_good_optional_values() -> None:
    table = {
        "token_secret": SECRET,
        "reseller_prefix": "",
        "storage_url_base": "http://10.0.0.1:8080/swift/",
    }
    config = load_section({"identity": table}, "identity", IdentityConfig)
    assert config.reseller_prefix == "" and config.storage_url_base.endswith("/swift/")


def test_secret_and_users_from_the_environment() -> None:
    env = {
        "TORUS_IDENTITY_TOKEN_SECRET": "secret-from-the-environment",
        "TORUS_IDENTITY_USERS": json.dumps({"ops:ann": "k1 .admin"}),
    }
    doc = {"identity": {"token_secret": SECRET, "users": TEST_USERS}}
    config = load_section(doc, "identity", IdentityConfig, env=env)
    assert config.token_secret == "secret-from-the-environment"
    assert config.users == {"ops:ann": "k1 .admin"}  # replaced, not merged


def test_the_codec_follows_the_config() -> None:
    config = IdentityConfig(token_secret=SECRET, token_ttl_s=60, reseller_prefix="KEY_")
    codec = TokenCodec.from_config(config, clock=lambda: 1000.0)
    token, expires_at = codec.issue("eng", "ann", ["eng"])
    assert token.startswith("KEY_tk") and expires_at == 1060.0
    assert TokenCodec.from_config(config, clock=lambda: 1000.0).validate(token) is not None
