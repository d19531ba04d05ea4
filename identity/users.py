"""Users, keys and groups from the cluster config, as Swift's tempauth keeps them.

The config holds one entry per user, ``"account:user" = "key group group ..."`` (tempauth's
``user_<account>_<user> = key groups``)::

    [identity.users]
    "test:tester" = "testing .admin"
    "admin:admin" = "admin .admin .reseller_admin"

Groups, as tempauth gives them to a user who authenticates:

- ``<account>`` and ``<account>:<user>``: every user is in both;
- each group listed in the entry, except ``.admin``;
- ``.admin`` is replaced by the storage account, ``<reseller_prefix><account>``
  (``AUTH_test``): a user in the group named like an account owns that account;
- ``.reseller_admin`` is kept as it is: its users own every account of the reseller prefix.

Other groups are free-form names that container ACLs can grant (``X-Container-Read: eng``).
Per-user storage URLs (tempauth's optional last value ``http://...``) are not supported.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

ADMIN = ".admin"
RESELLER_ADMIN = ".reseller_admin"

# The all-in-one's users: the ones Swift's SAIO and its functional tests expect.  Copy it before
# changing it; a production config starts with no users at all.
TEST_USERS: dict[str, str] = {
    "test:tester": "testing .admin",
    "test:tester2": "testing2 .admin",
    "test:tester3": "testing3",
    "test2:tester2": "testing2 .admin",
    "admin:admin": "admin .admin .reseller_admin",
}

# Compared against when the user is unknown, so that a wrong user costs what a wrong key does.
_NO_KEY = b"\0" * 32


@dataclass(frozen=True)
class _User:
    account: str
    user: str
    key: bytes
    groups: frozenset[str]


class UserDirectory:
    """Who may have a token: each ``account:user`` with its key and groups."""

    def __init__(self, users: Mapping[str, _User]) -> None:
        self._users = dict(users)

    @classmethod
    def from_config(
        cls, users: Mapping[str, str], *, reseller_prefix: str = "AUTH_"
    ) -> UserDirectory:
        """Parse the config's entries; a malformed one is a ``ValueError`` naming it."""
        return cls(
            {name: _parse_entry(name, entry, reseller_prefix) for name, entry in users.items()}
        )

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, account_user: object) -> bool:
        return account_user in self._users

    def entries(self) -> list[tuple[str, str, str, str, frozenset[str]]]:
        """``(account:user, account, user, key, groups)`` of every user (identity/ec2.py)."""
        return [
            (name, u.account, u.user, u.key.decode("utf-8"), u.groups)
            for name, u in self._users.items()
        ]

    def authenticate(self, account_user: str, key: str) -> tuple[str, str, frozenset[str]] | None:
        """``(account, user, groups)`` when ``key`` is the user's key, else None.

        The key is compared in constant time, and an unknown user costs a comparison too.
        """
        found = self._users.get(account_user)
        expected = found.key if found is not None else _NO_KEY
        matches = hmac.compare_digest(expected, key.encode("utf-8", "surrogateescape"))
        if found is None or not matches:
            return None
        return found.account, found.user, found.groups


def _parse_entry(name: str, entry: str, reseller_prefix: str) -> _User:
    account, colon, user = name.partition(":")
    if not colon or not account or not user:
        raise ValueError(f"users: {name!r} must be 'account:user'")
    if "/" in account:
        raise ValueError(f"users: {name!r}: an account name cannot hold '/'")
    values = entry.split()
    if not values:
        raise ValueError(f"users: {name!r} has no key")
    key, listed = values[0], values[1:]
    for group in listed:
        if "://" in group or group.startswith("$HOST"):
            raise ValueError(f"users: {name!r}: per-user storage URLs are not supported")
    groups = {account, name, *listed}
    if ADMIN in groups:
        groups.discard(ADMIN)
        groups.add(reseller_prefix + account)
    return _User(account, user, key.encode("utf-8"), frozenset(groups))
