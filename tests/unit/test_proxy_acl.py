"""proxy/acl.py: Swift's v1 container ACLs (clean, parse, referrer rules)."""

from __future__ import annotations

import pytest

from proxy.acl import clean_acl, parse_acl, referrer_allowed


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("bob, sue", "bob,sue"),
        ("bob , sue", "bob,sue"),
        ("bob,,,sue", "bob,sue"),
        (".referrer : *", ".r:*"),
        (".ref:*.example.com", ".r:.example.com"),
        (".r:*, .rlistings", ".r:*,.rlistings"),
        (".r:-thief.com", ".r:-thief.com"),
        (".r: - .thief.com", ".r:-.thief.com"),
        ("test2:tester2", "test2:tester2"),
        ("", ""),
        ("  ,  ", ""),
    ],
)
def test_clean_read_acl(value: str, cleaned: str) -> None:
    assert clean_acl("X-Container-Read", value) == cleaned


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Container-Read", ".r:", "No host/domain value after referrer designation"),
        ("X-Container-Read", ".r:-", "No host/domain value after referrer designation"),
        ("X-Container-Read", ".r:*.", "No host/domain value after referrer designation"),
        ("X-Container-Read", ".bogus:x", "Unknown designator '.bogus' in ACL"),
        ("X-Container-Write", ".r:*", "Referrers not allowed in write ACL"),
    ],
)
def test_clean_refuses_malformed(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clean_acl(name, value)


def test_write_acl_keeps_groups() -> None:
    assert clean_acl("X-Container-Write", "test2:tester2, test3") == "test2:tester2,test3"


def test_parse() -> None:
    assert parse_acl(None) == ([], [])
    assert parse_acl("") == ([], [])
    assert parse_acl(".r:*,.rlistings,test2:tester2,a%20b") == (
        ["*"],
        [".rlistings", "test2:tester2", "a b"],
    )
    assert parse_acl(".r:.example.com,.r:-bad.example.com") == (
        [".example.com", "-bad.example.com"],
        [],
    )


@pytest.mark.parametrize(
    ("referrer", "rules", "allowed"),
    [
        (None, ["*"], True),
        ("", ["*"], True),
        (None, [], False),
        ("http://www.example.com/index.html", ["www.example.com"], True),
        ("http://www.example.com/index.html", ["example.com"], False),
        ("http://www.example.com/", [".example.com"], True),
        ("http://www.example.com/", [".example.com", "-www.example.com"], False),
        ("http://thief.example.com/", [".example.com", "-.thief.example.com"], True),
        ("http://a.thief.example.com/", [".example.com", "-.thief.example.com"], False),
        ("http://thief.com/", ["*", "-thief.com"], False),
        ("http://thief.com/", ["-thief.com", "*"], True),  # the last match decides
        ("http://[::1/", ["*"], True),  # unparsable: the host "unknown"
        (None, ["www.example.com"], False),
    ],
)
def test_referrer_allowed(referrer: str | None, rules: list[str], allowed: bool) -> None:
    assert referrer_allowed(referrer, rules) is allowed
