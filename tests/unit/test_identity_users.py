"""identity.users: tempauth's users, keys and groups, from the config's string form."""

from __future__ import annotations

import pytest

from identity.users import TEST_USERS, UserDirectory


def test_the_all_in_one_users_are_swifts_test_users() -> None:
    directory = UserDirectory.from_config(TEST_USERS)
    assert len(directory) == 5
    assert directory.authenticate("test:tester", "testing") == (
        "test",
        "tester",
        frozenset({"test", "test:tester", "AUTH_test"}),
    )
    assert directory.authenticate("test:tester2", "testing2") == (
        "test",
        "tester2",
        frozenset({"test", "test:tester2", "AUTH_test"}),
    )
    # tester3 is no admin: it owns nothing and gets in only through ACLs.
    assert directory.authenticate("test:tester3", "testing3") == (
        "test",
        "tester3",
        frozenset({"test", "test:tester3"}),
    )
    assert directory.authenticate("test2:tester2", "testing2") == (
        "test2",
        "tester2",
        frozenset({"test2", "test2:tester2", "AUTH_test2"}),
    )
    assert directory.authenticate("admin:admin", "admin") == (
        "admin",
        "admin",
        frozenset({"admin", "admin:admin", "AUTH_admin", ".reseller_admin"}),
    )


@pytest.mark.parametrize(
    ("account_user", "key"),
    [
        ("test:tester", "testing2"),
        ("test:tester", ""),
        ("test:tester", "testing "),
        ("test:tester", "TESTING"),
        ("test:nobody", "testing"),
        ("test2:tester", "testing"),  # the user is in another account
        ("tester", "testing"),
        ("", ""),
        ("test:tester", "testingé"),
    ],
)
def test_wrong_keys_and_unknown_users_get_nothing(account_user: str, key: str) -> None:
    assert UserDirectory.from_config(TEST_USERS).authenticate(account_user, key) is None


def test_the_reseller_prefix_names_the_admins_storage_account() -> None:
    directory = UserDirectory.from_config({"eng:ann": "k .admin"}, reseller_prefix="KEY_")
    assert directory.authenticate("eng:ann", "k") == (
        "eng",
        "ann",
        frozenset({"eng", "eng:ann", "KEY_eng"}),
    )


def test_other_groups_are_kept_for_acls_and_a_user_may_hold_a_colon() -> None:
    directory = UserDirectory.from_config({"eng:ann:ops": "s3cr3t  readers  writers"})
    assert "eng:ann:ops" in directory
    assert directory.authenticate("eng:ann:ops", "s3cr3t") == (
        "eng",
        "ann:ops",
        frozenset({"eng", "eng:ann:ops", "readers", "writers"}),
    )


def test_keys_may_hold_any_non_space_text() -> None:
    directory = UserDirectory.from_config({"a:b": "pä$$:w0rd/é"})
    assert directory.authenticate("a:b", "pä$$:w0rd/é") is not None


def test_no_users_means_nobody_authenticates() -> None:
    directory = UserDirectory.from_config({})
    assert len(directory) == 0
    assert directory.authenticate("test:tester", "testing") is None


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ({"tester": "testing"}, r"'tester' must be 'account:user'"),
        ({":tester": "testing"}, r"must be 'account:user'"),
        ({"test:": "testing"}, r"must be 'account:user'"),
        ({"a/b:c": "testing"}, r"cannot hold '/'"),
        ({"test:tester": ""}, r"'test:tester' has no key"),
        ({"test:tester": "   "}, r"has no key"),
        ({"test:tester": "testing .admin http://h:8080/v1/AUTH_t"}, r"storage URLs"),
        ({"test:tester": "testing $HOST/v1/AUTH_t"}, r"storage URLs"),
    ],
)
def test_malformed_entries_are_refused(users: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UserDirectory.from_config(users)
