"""What can go wrong in the object storage engine, in terms the object server maps to statuses.

The engine knows nothing of HTTP; the server turns these into responses in one place:
ObjectNotFound → 404 (with X-Backend-Timestamp when ``timestamp`` is set), ObjectConflict →
409, EtagMismatch and ChecksumFooterMismatch → 422, ChecksumFooterMissing → 400,
SizeMismatch → 499 (body short: the client went away) or 400 (body long), DeviceUnavailable
and DiskFull → 507, Quarantined → 404 (it is an ObjectNotFound).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service import lmdb_devices

if TYPE_CHECKING:
    from service.timestamp import Timestamp

    from .metadata import ObjectMetadata


class ObjectEngineError(Exception):
    """Base of every error the engine raises on purpose."""


class ObjectNotFound(ObjectEngineError):
    """No live version: nothing stored, a tombstone, or a version whose X-Delete-At has passed.

    ``timestamp`` is the tombstone's or the expired version's (Swift's X-Backend-Timestamp);
    ``metadata`` is that version, for callers that must see it (the expirer, the replicator).
    """

    def __init__(
        self,
        message: str = "object not found",
        *,
        timestamp: Timestamp | None = None,
        metadata: ObjectMetadata | None = None,
    ) -> None:
        super().__init__(message)
        self.timestamp = timestamp
        self.metadata = metadata


class Quarantined(ObjectNotFound):
    """The body failed its checksum; it was moved aside, counted, and the version removed."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path  # where the quarantined data file went, if it was a file


class ObjectConflict(ObjectEngineError):
    """A write no newer than what is stored (newest timestamp wins; equal loses)."""

    def __init__(self, message: str, *, timestamp: Timestamp) -> None:
        super().__init__(message)
        self.timestamp = timestamp  # the stored version's, for X-Backend-Timestamp


class EtagMismatch(ObjectEngineError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"body MD5 {actual} does not match the ETag {expected}")
        self.expected = expected
        self.actual = actual


class ChecksumFooterMismatch(ObjectEngineError):
    """The sender's checksum footer is malformed or its xxh3-64 is not the data's: the body
    was damaged between the proxy and this server (objectd/checksum_footer.py)."""


class ChecksumFooterMissing(ObjectEngineError):
    """A body sent with a checksum footer ended before the footer's 48 bytes."""


class SizeMismatch(ObjectEngineError):
    def __init__(self, expected_bytes: int, received_bytes: int) -> None:
        word = "short" if received_bytes < expected_bytes else "long"
        super().__init__(
            f"body is {word}: Content-Length {expected_bytes}, received {received_bytes} bytes"
        )
        self.expected_bytes = expected_bytes
        self.received_bytes = received_bytes

    @property
    def short(self) -> bool:
        """True when the body ended early (499), False when it ran past its length (400)."""
        return self.received_bytes < self.expected_bytes


class DeviceUnavailable(lmdb_devices.DeviceUnavailable, ObjectEngineError):
    """The shared device error (service/lmdb_devices.py), also an engine error."""


class DiskFull(lmdb_devices.DiskFull, ObjectEngineError):
    """ENOSPC on a data file, or the device's LMDB map is full."""
