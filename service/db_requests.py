"""What the container and account servers read from a request's headers, checked.

Both keep their state as rows and metadata registers, so they read the same kinds of
header: timestamps (``X-Timestamp`` and the row's own), counts (``X-Size``,
``X-Object-Count``, ``X-Bytes-Used``) and metadata.  A missing or malformed header is a 400
here, before any write (Swift answers a missing row field with a 500 from a KeyError).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from service.db_metadata import Metadata
from service.errors import BadRequest
from service.names import check_metadata
from service.timestamp import Timestamp

TRUE_VALUES = frozenset({"true", "1", "yes", "on", "t", "y"})  # Swift's config_true_value


def request_timestamp(headers: Mapping[str, str]) -> Timestamp:
    """The write's ``X-Timestamp``, with Swift's messages when it is missing or malformed."""
    value = headers.get("X-Timestamp")
    if value is None:
        raise BadRequest("Missing X-Timestamp header")
    try:
        return Timestamp.parse(value)
    except ValueError:
        raise BadRequest("Invalid X-Timestamp header") from None


def header_timestamp(headers: Mapping[str, str], name: str) -> Timestamp | None:
    """An optional timestamp header; None if absent, 400 if malformed."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return Timestamp.parse(value)
    except ValueError:
        raise BadRequest(f"Invalid {name} header: {value!r}") from None


def required_timestamp(headers: Mapping[str, str], name: str) -> Timestamp:
    found = header_timestamp(headers, name)
    if found is None:
        raise BadRequest(f"Missing {name} header")
    return found


def header_count(headers: Mapping[str, str], name: str, default: int | None = None) -> int:
    """A non-negative integer header (a size, a count): required unless ``default`` is given."""
    value = headers.get(name)
    if value is None:
        if default is None:
            raise BadRequest(f"Missing {name} header")
        return default
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise BadRequest(f"Invalid {name} header: {value!r}")
    try:
        return int(text)
    except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits)
        raise BadRequest(f"Invalid {name} header: {value[:64]!r}...") from None


def required_text(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise BadRequest(f"Missing {name} header")
    return value


def metadata_updates(
    headers: Mapping[str, str],
    target: str,
    timestamp: Timestamp,
    saved: Collection[str] = (),
) -> Metadata:
    """The metadata a PUT or POST sets: ``X-<Target>-Meta-*``, ``X-<Target>-Sysmeta-*`` and
    the ``saved`` headers (lower case), each at ``timestamp``; an empty value deletes.

    Keys are stored the way Swift's WSGI layer spells them (``X-Container-Meta-Color``,
    whatever case was sent), so one key sent in two cases is one register, not two.
    Swift's per-request limits are checked first (400 with Swift's message); the limits on
    all the metadata a container or account holds are the broker's.
    """
    check_metadata(headers, target)
    prefixes = (f"x-{target}-meta-", f"x-{target}-sysmeta-")
    updates: Metadata = {}
    for key, value in headers.items():
        lowered = key.lower()
        is_meta = any(lowered.startswith(p) and len(lowered) > len(p) for p in prefixes)
        if is_meta or lowered in saved:
            updates[key.title()] = (value, timestamp)
    return updates


def is_true(value: str | None) -> bool:
    """Swift's config_true_value for a header or parameter."""
    return value is not None and value.lower() in TRUE_VALUES
