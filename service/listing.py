"""Listings: one scope's rows (a container's objects, an account's containers) paged the way
Swift's GET listing parameters ask.

The page algorithm is written once, over a cursor that can only seek and step: ``ascending
(start)`` yields ``(name, row)`` for names >= start, ``descending(stop)`` for names < stop,
both in byte order of the UTF-8 names; ``take(start, stop, limit, reverse)`` is a page
without a delimiter (the common one: no name collapses) in one loop.  Rows come in the
form a ``RowView`` makes of them where they are read (a row object, or already rendered).
``service.listing_tables`` has the two cursors: over an LMDB table (the brokers) and over a
sorted list (the in-memory twins), so the two cannot page differently.  A page costs
O(page): one seek at the marker, then a step per row listed; a collapsed subdir costs one
seek past its whole subtree, never a walk through it.

Swift semantics (swift/container/backend.py ``list_objects_iter``), byte for byte:

- ``marker`` and ``end_marker`` are exclusive; with ``reverse`` they swap roles, so a reversed
  page lists names below ``marker`` and above ``end_marker``, highest first.
- ``delimiter`` (any length) collapses every name holding it after ``prefix`` into one
  ``Subdir`` ``name[:end + len(delimiter)]``; a subdir equal to the lower marker (the marker
  the previous page ended on) is not listed again.
- ``path`` is ``prefix = path.rstrip('/') + '/'`` (or ``''``) with delimiter ``/``, listing
  only direct children and no subdirs.  Two deliberate fixes of Swift's ``path``: a child
  named exactly ``<dir>0`` right after a subtree is listed (Swift's next query skips it),
  and a reversed page lists a child ``<dir>/`` (Swift's reversed query skips it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from service.errors import BadInput

V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)
R = TypeVar("R")

MAX_NAME_BYTES = 1024  # Swift's object name limit; container names are shorter still
MAX_LIMIT = 10_000  # Swift's CONTAINER_LISTING_LIMIT and ACCOUNT_LISTING_LIMIT


@dataclass(frozen=True, slots=True)
class Subdir:
    """A collapsed run of names sharing ``name`` (which ends with the delimiter)."""

    name: str


@dataclass(frozen=True, slots=True)
class RowView(Generic[R, V]):
    """A form a listing reads its rows in, applied where a row is read: to its stored bytes
    (``from_stored``: the LMDB brokers) or to the decoded row ``R`` (``from_row``: the
    memory twins).  A server offers one per listing format, so a json page, say, is
    rendered from the stored bytes without a row object per entry."""

    name: str
    from_stored: Callable[[bytes, bytes], V]  # (name, row as stored) -> entry
    from_row: Callable[[R], V]


class ScopeCursor(Protocol[V_co]):
    steps: int  # rows visited, for tests and benchmarks: a page should cost about its size

    def ascending(self, start: bytes) -> Iterator[tuple[bytes, V_co]]:
        """Rows with name >= start, lowest first."""
        ...

    def descending(self, stop: bytes | None) -> Iterator[tuple[bytes, V_co]]:
        """Rows with name < stop (every row if None), highest first."""
        ...

    def take(self, start: bytes, stop: bytes | None, limit: int, reverse: bool) -> list[V_co]:
        """The first ``limit`` rows named in [start, stop), highest first if ``reverse``:
        a page without a delimiter, the common one, in one tight loop."""
        ...


def encode_name(name: str, what: str = "name") -> bytes:
    """A row name as the UTF-8 bytes it is stored and ordered by; BadInput if unusable."""
    raw = _utf8(name, what)
    if not raw:
        raise BadInput(f"{what} must not be empty")
    if len(raw) > MAX_NAME_BYTES:
        raise BadInput(f"{what} is {len(raw)} bytes long; at most {MAX_NAME_BYTES}")
    return raw


def _utf8(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadInput(f"{what} must be a str, not {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} {text!r} is not valid UTF-8") from None


def successor(prefix: bytes) -> bytes | None:
    """The least byte string above every string starting with ``prefix`` (None: no such)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True, slots=True)
class ListingQuery:
    """Validated listing parameters, as bytes; build with ``ListingQuery.build``."""

    prefix: bytes = b""
    delimiter: bytes = b""
    marker: bytes = b""
    end_marker: bytes = b""
    limit: int = MAX_LIMIT
    reverse: bool = False
    children_only: bool = False  # Swift's ``path``: direct children of ``prefix`` only

    @classmethod
    def build(
        cls,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = MAX_LIMIT,
        reverse: bool = False,
        path: str | None = None,
    ) -> ListingQuery:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
            raise BadInput(f"limit must be an integer in 0..{MAX_LIMIT}, not {limit!r}")
        if path is not None:
            _utf8(path, "path")
            prefix = path.rstrip("/") + "/" if path else ""
            delimiter = "/"
        return cls(
            prefix=_utf8(prefix, "prefix"),
            delimiter=_utf8(delimiter, "delimiter"),
            marker=_utf8(marker, "marker"),
            end_marker=_utf8(end_marker, "end_marker"),
            limit=limit,
            reverse=bool(reverse),
            children_only=path is not None,
        )

    def bounds(self) -> tuple[bytes, bytes | None]:
        """(start, stop): the page's names are in [start, stop), stop None meaning no end."""
        if self.reverse:
            lower, upper = self.end_marker, self.marker
        else:
            lower, upper = self.marker, self.end_marker
        start = max(self.prefix, lower + b"\x00") if lower else self.prefix
        stops = [s for s in (upper, successor(self.prefix) if self.prefix else None) if s]
        return start, min(stops) if stops else None

    def subtree(self, name: bytes) -> bytes | None:
        """The ``prefix...delimiter`` that ``name`` collapses into, or None if it is listed."""
        if not self.delimiter:
            return None
        end = name.find(self.delimiter, len(self.prefix))
        if end < 0:
            return None
        head = name[: end + len(self.delimiter)]
        if self.children_only and head == name:
            return None  # "<path>/<child>/" itself is a direct child (a directory marker)
        return head


def list_page(cursor: ScopeCursor[V], query: ListingQuery) -> list[V | Subdir]:
    """One page of rows and subdirs, in listing order; see the module docstring."""
    page: list[V | Subdir] = []
    if query.limit == 0:
        return page
    start, stop = query.bounds()
    if not query.delimiter:  # nothing collapses (``path`` always has one): a plain range
        return list(cursor.take(start, stop, query.limit, query.reverse))
    lower_marker = query.end_marker if query.reverse else query.marker
    rows = cursor.descending(stop) if query.reverse else cursor.ascending(start)
    while True:
        skip = None
        for name, row in rows:
            beyond = name < start if query.reverse else stop is not None and name >= stop
            if beyond:
                return page
            skip = query.subtree(name)
            if skip is None:
                if not (query.children_only and name == query.prefix):
                    page.append(row)
            elif not query.children_only and skip != lower_marker:
                page.append(Subdir(skip.decode("utf-8")))
            if len(page) >= query.limit:
                return page
            if skip is not None:
                break  # seek past the subtree instead of walking it
        else:
            return page
        rows = _past_subtree(cursor, query, skip)


def _past_subtree(
    cursor: ScopeCursor[V], query: ListingQuery, head: bytes
) -> Iterator[tuple[bytes, V]]:
    if query.reverse:
        # A path listing still lists the directory marker "<head>" itself, which sorts
        # just below its subtree; a delimiter listing collapsed it into the subdir.
        return cursor.descending(head + b"\x00" if query.children_only else head)
    after = successor(head)
    return iter(()) if after is None else cursor.ascending(after)
