"""Errors raised by the ring package.

Every error is a ``RingError`` so callers (the admin tool, the servers) can
catch the family in one place and turn it into an exit code or a status.
"""


class RingError(Exception):
    """Base of every ring error."""


class RingValidationError(RingError):
    """The builder or ring breaks an invariant (or cannot be balanced)."""


class EmptyRingError(RingValidationError):
    """There are no weighted devices to place partitions on."""


class DuplicateDeviceError(RingError):
    """A device id that is already in use was given to ``add_dev``."""


class UnknownDeviceError(RingError):
    """A device id names no device in the builder."""


class RingFormatError(RingError):
    """A ring or builder file is not in a format this code can read."""
