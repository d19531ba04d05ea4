"""X-Timestamp: the version every write carries, in Swift's format.

The normal form is ten digits, a dot, five digits (``1700000000.12345``): a
resolution of 10 microseconds.  The internal form adds ``_`` and sixteen hex
digits of offset (``1700000000.12345_000000000000000a``) for orderings that
must differ at one instant (e.g. a DELETE and its tombstone's row update).
Newest wins everywhere; comparison is by (time, offset).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

UNITS_PER_SECOND = 100_000
MAX_RAW = 10**10 * UNITS_PER_SECOND  # exclusive: ten digits of seconds
MAX_OFFSET = (1 << 64) - 1
_PATTERN = re.compile(r"^(\d{1,10})(?:\.(\d{1,5})\d*)?(?:_([0-9a-f]{16}))?$")


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    raw: int  # units of 10 microseconds since the Unix epoch
    offset: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.raw < MAX_RAW:
            raise ValueError(f"timestamp {self.raw / UNITS_PER_SECOND!r} is out of range")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise ValueError(f"timestamp offset {self.offset!r} is out of range")

    @classmethod
    def now(cls, clock=time.time) -> Timestamp:
        return cls.from_seconds(clock())

    @classmethod
    def from_seconds(cls, seconds: float, offset: int = 0) -> Timestamp:
        return cls(round(seconds * UNITS_PER_SECOND), offset)

    @classmethod
    def parse(cls, text: str | bytes) -> Timestamp:
        """Parse an ``X-Timestamp`` header; ``ValueError`` with the bad value if malformed."""
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        match = _PATTERN.match(text.strip())
        if not match:
            raise ValueError(f"invalid timestamp {text!r}")
        whole, fraction, offset = match.groups()
        raw = int(whole) * UNITS_PER_SECOND + int((fraction or "0").ljust(5, "0"))
        return cls(raw, int(offset, 16) if offset else 0)

    @property
    def seconds(self) -> float:
        return self.raw / UNITS_PER_SECOND

    @property
    def normal(self) -> str:
        whole, fraction = divmod(self.raw, UNITS_PER_SECOND)
        return f"{whole:010d}.{fraction:05d}"

    @property
    def internal(self) -> str:
        return self.normal if not self.offset else f"{self.normal}_{self.offset:016x}"

    def with_offset(self, offset: int) -> Timestamp:
        return Timestamp(self.raw, offset)

    def __str__(self) -> str:
        return self.internal
