"""HTTP semantics the servers share, as pure functions: Range, preconditions, dates.

Range follows Swift's ``swob.Range``: a header with any syntactically invalid range is ignored
(the whole body, 200); a valid header none of whose ranges fits the body is 416; and, against
RFC 9110 §14.2's denial-of-service warning, more than 50 ranges, more than 2 overlapping pairs
or 8+ ranges out of order are answered 416 too.  Ranges come back half-open: ``(start, stop)``.

Preconditions follow RFC 9110 §13.2.2's order, which differs from Swift's swob in corners only
(Swift checks If-None-Match before If-Match and does not skip If-Modified-Since when
If-None-Match is present).  Last-Modified has whole seconds, rounded up as Swift rounds, so a
client that echoes it back in If-Modified-Since gets 304.
"""

from __future__ import annotations

import email.utils
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from service.timestamp import UNITS_PER_SECOND, Timestamp

# Swift's limits (swob.py) on ranges in one request.
MAX_RANGES = 50
MAX_RANGE_OVERLAPS = 2
MAX_NONASCENDING_RANGES = 8

ByteRangeSpec = tuple[int | None, int | None]  # (first, last) as sent; None where left out


def parse_range_header(value: str | None) -> list[ByteRangeSpec] | None:
    """``bytes=0-9,20-,-5`` → ``[(0, 9), (20, None), (None, 5)]``; None if absent or invalid."""
    if not value:
        return None
    value = value.replace(" ", "")
    if value[:6].lower() != "bytes=":
        return None
    specs: list[ByteRangeSpec] = []
    for spec in value[6:].split(","):
        first_text, dash, last_text = spec.partition("-")
        if not dash or not (first_text or last_text):
            return None
        if not all(_is_digits(t) for t in (first_text, last_text) if t):
            return None
        first = int(first_text) if first_text else None
        last = int(last_text) if last_text else None
        if first is not None and last is not None and last < first:
            return None
        specs.append((first, last))
    return specs


def ranges_for_length(specs: Sequence[ByteRangeSpec], length: int) -> list[tuple[int, int]]:
    """The half-open ranges of a body of ``length`` bytes that ``specs`` ask for; [] → 416."""
    ranges: list[tuple[int, int]] = []
    for first, last in specs:
        if first is None:  # suffix range: the last `last` bytes
            assert last is not None
            if last:  # "bytes=-0" asks for nothing
                ranges.append((max(length - last, 0), length))
        elif first < length:
            ranges.append((first, length if last is None else min(last + 1, length)))
    if len(ranges) > MAX_RANGES:
        return []
    overlaps = sum(
        1 for i, first in enumerate(ranges) for second in ranges[i + 1 :] if _overlap(first, second)
    )
    if overlaps > MAX_RANGE_OVERLAPS:
        return []
    ascending = all(a <= b for a, b in itertools.pairwise(ranges))
    if not ascending and len(ranges) >= MAX_NONASCENDING_RANGES:
        return []
    return ranges


def _overlap(first: tuple[int, int], second: tuple[int, int]) -> bool:
    # Swift's test, kept as is: an edge strictly inside the other range.  Identical ranges
    # do not count, so "bytes=0-9,0-9,0-9" is served as Swift serves it.
    (start1, stop1), (start2, stop2) = first, second
    return (
        start1 < start2 < stop1
        or start1 < stop2 < stop1
        or start2 < start1 < stop2
        or start2 < stop1 < stop2
    )


def resolve_range(header: str | None, length: int) -> list[tuple[int, int]] | None:
    """What a GET answers: None → 200 whole body, [] → 416, else 206 with these ranges."""
    specs = parse_range_header(header)
    if specs is None:
        return None
    ranges = ranges_for_length(specs, length)
    if ranges and length == 0:
        return None  # "bytes=-5" of an empty body: nothing to put in a Content-Range
    return ranges


def content_range(start: int, stop: int, length: int) -> str:
    return f"bytes {start}-{stop - 1}/{length}"


def unsatisfied_content_range(length: int) -> str:
    """The Content-Range of a 416 answer."""
    return f"bytes */{length}"


# --- multipart/byteranges, laid out exactly as Swift's multi_range_iterator does ------------


def new_boundary(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def multipart_content_type(boundary: str) -> str:
    return f"multipart/byteranges;boundary={boundary}"


def part_header(boundary: str, content_type: str, start: int, stop: int, length: int) -> bytes:
    """What goes before the bytes of one part; ``PART_END`` goes after them."""
    return (
        f"--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Range: {content_range(start, stop, length)}\r\n\r\n"
    ).encode()


PART_END = b"\r\n"


def closing_delimiter(boundary: str) -> bytes:
    return f"--{boundary}--".encode("ascii")


def multipart_length(
    ranges: Iterable[tuple[int, int]], content_type: str, boundary: str, length: int
) -> int:
    """The Content-Length of a multipart/byteranges body, known before sending any of it."""
    return sum(
        len(part_header(boundary, content_type, start, stop, length)) + stop - start + 2
        for start, stop in ranges
    ) + len(closing_delimiter(boundary))


def multipart_body(
    body: bytes, ranges: Iterable[tuple[int, int]], content_type: str, boundary: str
) -> bytes:
    """The whole multipart/byteranges body for a body held in memory (inline in LMDB)."""
    pieces: list[bytes] = []
    for start, stop in ranges:
        pieces += [part_header(boundary, content_type, start, stop, len(body)), body[start:stop]]
        pieces.append(PART_END)
    pieces.append(closing_delimiter(boundary))
    return b"".join(pieces)


# --- HTTP dates ----------------------------------------------------------------------------


def last_modified_seconds(timestamp: Timestamp) -> int:
    """Whole seconds, rounded up as Swift does for Last-Modified."""
    return -(-timestamp.raw // UNITS_PER_SECOND)


def http_date(value: Timestamp | float) -> str:
    """IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``); a Timestamp is rounded up."""
    seconds = last_modified_seconds(value) if isinstance(value, Timestamp) else value
    return email.utils.formatdate(seconds, usegmt=True)


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch, or None if ``value`` is not a date (the header is then ignored).

    Takes the three forms RFC 9110 §5.6.7 makes recipients accept (IMF-fixdate, RFC 850 and
    asctime); a date without a zone is read as GMT, which is what HTTP dates are.
    """
    if not value:
        return None
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    try:  # datetime, unlike timegm, refuses "32 Nov" rather than reading it as "2 Dec"
        when = datetime(*parsed[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return int(when.timestamp()) - (parsed[9] or 0)


# --- preconditions -------------------------------------------------------------------------


# The preconditions an object PUT honours (Swift's object server, only If-None-Match); the
# object servers check them under the object's lease (objectd/write_leases.py).
PUT_PRECONDITIONS = ("If-None-Match", "If-Match")
# On an object server's 409 to a conditional PUT: another conditional write of the object is
# in progress there (objectd/write_leases.py), not "a newer version is stored".
CONDITIONAL_CONFLICT_HEADER = "X-Backend-Conditional-Conflict"


def evaluate_preconditions(
    headers: Mapping[str, str],
    *,
    method: str,
    etag: str | None,
    last_modified: Timestamp | None,
    exists: bool = True,
) -> int | None:
    """None to go on with the request, else the status to answer instead: 304 or 412.

    ``headers`` must be case-insensitive (aiohttp's are).  ``etag`` and ``last_modified`` are
    the current representation's (None if it has none); ``exists=False`` when there is no
    current representation (a PUT of a new object).  Call it only when the request would
    otherwise succeed: RFC 9110 §13.2.1 has a GET of a missing object answer 404, whatever
    its preconditions (Swift answers 412 there for ``If-Match: *``).
    """
    safe = method.upper() in ("GET", "HEAD")
    modified = (
        last_modified_seconds(last_modified) if last_modified is not None and exists else None
    )
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _matches(if_match, etag if exists else None, weak=False, exists=exists):
            return 412
    else:
        since = parse_http_date(headers.get("If-Unmodified-Since"))
        if since is not None and modified is not None and modified > since:
            return 412
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _matches(if_none_match, etag if exists else None, weak=True, exists=exists):
            return 304 if safe else 412
    elif safe:
        since = parse_http_date(headers.get("If-Modified-Since"))
        if since is not None and modified is not None and modified <= since:
            return 304
    return None


def _matches(field: str, etag: str | None, *, weak: bool, exists: bool) -> bool:
    """Whether an If-Match/If-None-Match list holds the current entity tag.

    If-Match compares strongly (a ``W/`` tag never matches), If-None-Match weakly.  Tags may
    come unquoted, which Swift tolerates and so do we.
    """
    tags = [tag.strip() for tag in field.split(",") if tag.strip()]
    if "*" in tags:
        return exists
    if etag is None:
        return False
    current = _opaque(etag)
    for tag in tags:
        is_weak = tag.startswith("W/")
        if is_weak and not weak:
            continue
        if _opaque(tag[2:] if is_weak else tag) == current:
            return True
    return False


def _opaque(tag: str) -> str:
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        return tag[1:-1]
    return tag


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
