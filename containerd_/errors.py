"""What the container broker raises on purpose; the server maps each to a status in one place:

- ``ContainerNotFound`` → 404 (never created, or deleted; ``info(include_deleted=True)``
  tells the two apart);
- ``ContainerNotEmpty`` → 409 (DELETE of a container holding objects);
- ``ContainerConflict`` → 409 (a PUT older than the container's DELETE, or a DELETE older
  than its PUT: the timestamps decided, and the request lost);
- ``DeviceUnavailable``, ``DiskFull`` → 507;
- ``service.errors.BadInput`` (a ValueError) → 400 (a name that is empty, not UTF-8 or over
  1024 bytes; a bad listing parameter or row field; metadata over Swift's limits).  Any other
  ValueError (a stored record that does not decode) is a logged 500.
"""

from __future__ import annotations

from service.lmdb_devices import DeviceUnavailable, DiskFull

__all__ = [
    "ContainerConflict",
    "ContainerError",
    "ContainerNotEmpty",
    "ContainerNotFound",
    "DeviceUnavailable",
    "DiskFull",
]


class ContainerError(Exception):
    """Base of the container broker's own errors."""


class ContainerNotFound(ContainerError):
    def __init__(self, account: str, container: str) -> None:
        super().__init__(f"container /{account}/{container} not found")


class ContainerNotEmpty(ContainerError):
    def __init__(self, account: str, container: str, object_count: int) -> None:
        super().__init__(f"container /{account}/{container} holds {object_count} objects")
        self.object_count = object_count


class ContainerConflict(ContainerError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
