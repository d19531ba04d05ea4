"""What the account broker raises on purpose; the server maps each to a status in one place:

- ``AccountNotFound`` → 404 (never created, or deleted: ``info(include_deleted=True)`` tells
  them apart, for Swift's ``X-Account-Status: Deleted``);
- ``AccountDeleted`` → 403 "Recently deleted" (a PUT of an account deleted and not yet
  reclaimed: Swift never re-creates it while the reaper may be emptying it);
- ``AccountConflict`` → 409 (a DELETE older than the account's PUT);
- ``DeviceUnavailable``, ``DiskFull`` → 507;
- ``service.errors.BadInput`` (a ValueError) → 400 (bad names, listing parameters, row fields
  or metadata).  Any other ValueError (a stored record that does not decode) is a logged 500.
"""

from __future__ import annotations

from service.lmdb_devices import DeviceUnavailable, DiskFull

__all__ = [
    "AccountConflict",
    "AccountDeleted",
    "AccountError",
    "AccountNotFound",
    "DeviceUnavailable",
    "DiskFull",
]


class AccountError(Exception):
    """Base of the account broker's own errors."""


class AccountNotFound(AccountError):
    def __init__(self, account: str) -> None:
        super().__init__(f"account /{account} not found")


class AccountDeleted(AccountError):
    def __init__(self, account: str) -> None:
        super().__init__(f"account /{account} was recently deleted")


class AccountConflict(AccountError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
