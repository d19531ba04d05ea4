"""Swift's constraints on what a client may send, and the values ``/info`` publishes.

The limits are Swift's defaults (swift/common/constraints.py); the storage servers enforce the
same ones (service/names.py holds them), so the proxy refuses early what a backend would refuse
anyway, with Swift's messages.  They are constants, not configuration: a cluster that raised
one here would still be held to the default by its storage servers.

- ``check_metadata(headers, target)``: user metadata (``X-<Target>-Meta-*``) over the limits,
  empty names, any header value over ``MAX_HEADER_SIZE``: 400.
- ``check_object_put(request)``: Swift's ``check_object_creation`` for what the proxy can see
  before the body: 501 for a transfer coding other than chunked, 400 for a bad
  Content-Length, 413 over ``MAX_FILE_SIZE``, 411 without a length, 400 for a Content-Type
  that is not UTF-8, for a bad ``X-Delete-At``/``X-Delete-After`` and for metadata.  The
  object's name length is the path's to check (proxy/paths.py).  A missing Content-Type is
  not refused: the object controller guesses one, as Swift's does before this check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from service import names
from service.errors import BadRequest

MAX_FILE_SIZE = names.MAX_FILE_SIZE
MAX_META_NAME_LENGTH = names.MAX_META_NAME_LENGTH
MAX_META_VALUE_LENGTH = names.MAX_META_VALUE_LENGTH
MAX_META_COUNT = names.MAX_META_COUNT
MAX_META_OVERALL_SIZE = names.MAX_META_OVERALL_SIZE
MAX_HEADER_SIZE = names.MAX_HEADER_SIZE
MAX_REQUEST_LINE = names.MAX_REQUEST_LINE
MAX_OBJECT_NAME_LENGTH = names.MAX_OBJECT_NAME_LENGTH
CONTAINER_LISTING_LIMIT = names.CONTAINER_LISTING_LIMIT
ACCOUNT_LISTING_LIMIT = names.ACCOUNT_LISTING_LIMIT
MAX_ACCOUNT_NAME_LENGTH = names.MAX_ACCOUNT_NAME_LENGTH
MAX_CONTAINER_NAME_LENGTH = names.MAX_CONTAINER_NAME_LENGTH
VALID_API_VERSIONS = ("v1", "v1.0")
EXTRA_HEADER_COUNT = 0
# Swift's request-header limit: user metadata plus 36 of its own and plain HTTP's.
MAX_HEADER_COUNT = MAX_META_COUNT + 36 + EXTRA_HEADER_COUNT
MAX_DELETE_AT = 9_999_999_999  # Swift's normalize_delete_at_timestamp clamps to ten digits

# What /info publishes under "swift" (Swift's DEFAULT_CONSTRAINTS, in its order).
CONSTRAINTS: dict[str, Any] = {
    "max_file_size": MAX_FILE_SIZE,
    "max_meta_name_length": MAX_META_NAME_LENGTH,
    "max_meta_value_length": MAX_META_VALUE_LENGTH,
    "max_meta_count": MAX_META_COUNT,
    "max_meta_overall_size": MAX_META_OVERALL_SIZE,
    "max_header_size": MAX_HEADER_SIZE,
    "max_request_line": MAX_REQUEST_LINE,
    "max_object_name_length": MAX_OBJECT_NAME_LENGTH,
    "container_listing_limit": CONTAINER_LISTING_LIMIT,
    "account_listing_limit": ACCOUNT_LISTING_LIMIT,
    "max_account_name_length": MAX_ACCOUNT_NAME_LENGTH,
    "max_container_name_length": MAX_CONTAINER_NAME_LENGTH,
    "valid_api_versions": list(VALID_API_VERSIONS),
    "extra_header_count": EXTRA_HEADER_COUNT,
}

_TARGETS = ("account", "container", "object")


def check_metadata(headers: Mapping[str, str], target: str) -> None:
    """400 with Swift's message if ``headers`` break a metadata limit for ``target``
    ("account", "container" or "object")."""
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {_TARGETS}, not {target!r}")
    try:
        names.check_metadata(headers, target)
    except BadRequest as exc:
        raise web.HTTPBadRequest(text=exc.body) from None


def check_object_put(request: web.Request) -> None:
    """What Swift checks of an object PUT before its body (the module docstring)."""
    headers = request.headers
    length = _message_length(headers)
    if length is not None and length > MAX_FILE_SIZE:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_FILE_SIZE, actual_size=length, text="Your request is too large."
        )
    if length is None and not _is_chunked(headers):
        raise web.HTTPLengthRequired(text="Missing Content-Length header.")
    content_type = headers.get("Content-Type")
    if content_type is not None and not _clean_utf8(content_type):
        raise web.HTTPBadRequest(text="Invalid Content-Type")
    delete_at(headers, _request_time(headers))
    check_metadata(headers, "object")


def delete_at(headers: Mapping[str, str], now_s: float) -> int | None:
    """The object's expiry time from ``X-Delete-After`` (first) or ``X-Delete-At``; None if
    neither is sent.  400 with Swift's message if malformed or not in the future.

    The object controller sends the result on as ``X-Delete-At`` (Swift's
    ``check_delete_headers`` rewrites the request the same way)."""
    after = headers.get("X-Delete-After")
    if after is not None:
        seconds = _integer(after, "Non-integer X-Delete-After")
        at = _clamp(int(now_s + seconds))
        if at <= now_s:
            raise web.HTTPBadRequest(text="X-Delete-After in past")
        return at
    at_text = headers.get("X-Delete-At")
    if at_text is None:
        return None
    at = _clamp(_integer(at_text, "Non-integer X-Delete-At"))
    if at <= now_s:
        raise web.HTTPBadRequest(text="X-Delete-At in past")
    return at


def _integer(text: str, message: str) -> int:
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    if not digits.isascii() or not digits.isdigit() or len(digits) > 20:
        raise web.HTTPBadRequest(text=message)
    return int(stripped)


def _clamp(at: int) -> int:
    return min(max(0, at), MAX_DELETE_AT)


def _request_time(headers: Mapping[str, str]) -> float:
    """The request's own time: its ``X-Timestamp`` when it carries a valid one, else now."""
    text = headers.get("X-Timestamp")
    if text:
        try:
            return float(text.partition("_")[0])
        except ValueError:
            pass
    return time.time()


def _message_length(headers: Mapping[str, str]) -> int | None:
    """Swift's ``Request.message_length``: None for a chunked body; 501 for another coding;
    400 for a Content-Length that is not a non-negative integer."""
    coding = headers.get("Transfer-Encoding")
    if coding is not None:
        codings = [part.strip().lower() for part in coding.split(",")]
        if codings[-1] != "chunked" or any(c not in ("chunked", "identity") for c in codings):
            raise web.HTTPNotImplemented(
                text="Unsupported Transfer-Coding header value specified in "
                "Transfer-Encoding header"
            )
        return None
    text = headers.get("Content-Length")
    if text is None:
        return None
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 20:
        raise web.HTTPBadRequest(text="Invalid Content-Length header value")
    return int(stripped)


def _is_chunked(headers: Mapping[str, str]) -> bool:
    coding = headers.get("Transfer-Encoding", "")
    return coding.split(",")[-1].strip().lower() == "chunked"


def _clean_utf8(text: str) -> bool:
    """Swift's check_utf8 for a header value (surrogates stand for bytes that were not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(text) and "\x00" not in text
