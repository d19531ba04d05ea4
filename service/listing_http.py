"""Account and container listings over HTTP, as Swift's servers answer them.

Pure functions the container and account servers share, knowing nothing of brokers: the
listing's query parameters (swift/common/request_helpers.py), the output format chosen from
``format=`` or ``Accept`` (swift/common/middleware/listing_formats.py) and the json, xml and
plain bodies.  The servers turn their rows into Swift's records (dicts) for xml; a json
listing's entries they render one by one with ``object_json``/``container_json`` (byte for
byte what ``json.dumps`` makes of the records, without a dict per row) and join with
``json_list``.

Swift's rules kept:

- A parameter that is not valid UTF-8 is a 400 (``"marker" parameter not valid UTF-8``), but
  only for the parameters a listing reads; a given parameter repeated: the last one counts.
- ``limit`` above the maximum is 412 ``Maximum limit is 10000``; a limit that is not a
  non-negative integer is ignored (the maximum applies), as Swift ignores it.
- ``format=json|xml|plain`` (any case; anything else is plain) overrides ``Accept``;
  otherwise the best match of ``Accept`` among text/plain, application/json,
  application/xml, text/xml (q-values, then exact types before wildcards); a malformed
  ``Accept`` is 400, one matching nothing 406.
- A listing whose body is empty (plain, nothing listed) is 204.

Two deliberate differences: media types match case-insensitively (RFC 9110 §8.3.1; Swift
matches them case-sensitively), and ``q=0`` means "not acceptable" (RFC 9110 §12.4.2; Swift
still picks such a type, last).
"""

from __future__ import annotations

import functools
import json
import json.encoder
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web

from service.db_requests import is_true
from service.errors import BadRequest, NotAcceptable, PreconditionFailed
from service.timestamp import UNITS_PER_SECOND, Timestamp

Record = dict[str, Any]  # one listing entry as Swift's servers build it
FORMAT_TYPES = {"plain": "text/plain", "json": "application/json", "xml": "application/xml"}
OFFERED_TYPES = ("text/plain", "application/json", "application/xml", "text/xml")

# RFC 9110 tokens and media ranges, as Swift's swob.Accept parses them.
_TOKEN = r'[^()<>@,;:\\"/\[\]?={}\x00-\x20\x7f]+'
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = rf"(?:\s*;\s*(?:{_TOKEN})\s*=\s*(?:{_TOKEN}|{_QUOTED}))"
_MEDIA_RANGE = re.compile(rf"^\s*({_TOKEN})/({_TOKEN})({_PARAM}*?\s*)$")
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


@dataclass(frozen=True, slots=True)
class ListingParams:
    """What a listing GET asked for, checked; ``broker_kwargs`` is what the brokers take."""

    content_type: str
    limit: int
    prefix: str = ""
    delimiter: str = ""
    marker: str = ""
    end_marker: str = ""
    reverse: bool = False
    path: str | None = None  # containers only; "" is a real value (the top level)

    def broker_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "prefix": self.prefix,
            "delimiter": self.delimiter,
            "marker": self.marker,
            "end_marker": self.end_marker,
            "limit": self.limit,
            "reverse": self.reverse,
        }
        if self.path is not None:
            kwargs["path"] = self.path
        return kwargs


def parse_query(raw_query: str) -> dict[str, str]:
    """``a=1&b=%FF`` → names to values, each a "byte string" (one char per byte, latin-1).

    Bytes, not text, so that each parameter is checked for UTF-8 only when it is read.
    """
    as_bytes = raw_query.encode("utf-8", "surrogateescape").decode("latin-1")
    return dict(parse_qsl(as_bytes, keep_blank_values=True, encoding="latin-1"))


def get_param(query: Mapping[str, str], name: str) -> str | None:
    """The parameter as text; 400 if it is not valid UTF-8 (Swift's get_param)."""
    value = query.get(name)
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f'"{name}" parameter not valid UTF-8') from None


def listing_params(
    query: Mapping[str, str], accept: str | None, *, max_limit: int, with_path: bool
) -> ListingParams:
    """Every listing parameter of a GET, checked in Swift's order (values, limit, format)."""
    names = ("prefix", "delimiter", "marker", "end_marker")
    values = {name: get_param(query, name) or "" for name in names}
    path = get_param(query, "path") if with_path else None
    reverse = is_true(get_param(query, "reverse"))
    limit = _limit(get_param(query, "limit"), max_limit)
    return ListingParams(
        content_type=listing_content_type(query, accept),
        limit=limit,
        reverse=reverse,
        path=path,
        **values,
    )


def _limit(text: str | None, max_limit: int) -> int:
    if not text or not text.isascii() or not text.isdigit():
        return max_limit  # Swift ignores a limit it cannot read
    limit = int(text)
    if limit > max_limit:
        raise PreconditionFailed(f"Maximum limit is {max_limit}")
    return limit


def listing_content_type(query: Mapping[str, str], accept: str | None) -> str:
    """The listing's media type: from ``format=`` if given, else negotiated from ``Accept``."""
    requested = get_param(query, "format")
    if requested:
        return FORMAT_TYPES.get(requested.lower(), FORMAT_TYPES["plain"])
    try:
        chosen = best_match(accept or "", OFFERED_TYPES)
    except ValueError:
        raise BadRequest("Invalid Accept header") from None
    if chosen is None:
        raise NotAcceptable("Not Acceptable")
    return chosen


def best_match(accept: str, offered: Sequence[str]) -> str | None:
    """The first of ``offered`` the best ``Accept`` range takes; ValueError if malformed."""
    if not accept.strip():
        return offered[0] if offered else None
    ranges: list[tuple[float, bool, str, str]] = []
    for item in accept.split(","):
        match = _MEDIA_RANGE.match(item)
        if not match:
            raise ValueError(f"invalid media range {item!r}")
        kind, subtype, params = match.groups()
        quality = _quality(params)
        if quality > 0:  # NaN too is not > 0: such a range accepts nothing
            exact = "*" not in (kind, subtype)
            ranges.append((quality, exact, kind.lower(), subtype.lower()))
    ranges.sort(key=lambda r: (r[0], r[1]), reverse=True)  # stable: ties keep header order
    for _, _, kind, subtype in ranges:
        for option in offered:
            option_kind, _, option_subtype = option.partition("/")
            if kind in ("*", option_kind) and subtype in ("*", option_subtype):
                return option
    return None


def _quality(params: str) -> float:
    quality = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip() != "q":
            continue
        if quality is not None:
            raise ValueError('several "q" parameters')
        quality = float(value.strip())
    return 1.0 if quality is None else quality


# -- bodies --------------------------------------------------------------------------------


def isoformat(timestamp: Timestamp) -> str:
    """Swift's ``Timestamp.isoformat``: UTC, microseconds always shown, no zone suffix."""
    return isoformat_raw(timestamp.raw)


def isoformat_raw(raw: int) -> str:
    """``isoformat`` of ``Timestamp(raw)``, for a caller holding the stored integer."""
    whole, fraction = divmod(raw, UNITS_PER_SECOND)
    # Six digits as str(10**6 + n) without its leading 1: a format spec (":06d") costs
    # three times as much, and a 10,000-row listing formats 10,000 of these.
    return f"{_utc_second(whole)}.{str(1_000_000 + fraction * _MICROSECONDS_PER_UNIT)[1:]}"


_MICROSECONDS_PER_UNIT = 1_000_000 // UNITS_PER_SECOND


@functools.lru_cache(maxsize=4096)
def _utc_second(whole: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole second: a listing's rows mostly share a few
    seconds, and formatting a datetime costs more than the rest of a row's rendering."""
    return f"{datetime.fromtimestamp(whole, UTC):%Y-%m-%dT%H:%M:%S}"


def to_json(records: Sequence[Record]) -> bytes:
    return json.dumps(records).encode("ascii")  # Swift's: ASCII with \u escapes


def object_json(size: int, etag: str, name: str, content_type_json: str, last_modified: str) -> str:
    """One object of a container listing in json, keys in Swift's order (``", "`` and
    ``": "``, ASCII with ``\\u`` escapes, as ``json.dumps`` writes them).

    ``content_type_json`` is already quoted (``json_string``): a container's rows share a
    few content types, which a caller may quote once.  ``last_modified`` is ``isoformat``'s,
    which needs no escaping."""
    return (
        f'{{"bytes": {size}, "hash": {_JSON_STRING(etag)}, "name": {_JSON_STRING(name)}, '
        f'"content_type": {content_type_json}, "last_modified": "{last_modified}"}}'
    )


def container_json(name: str, count: int, bytes_used: int, last_modified: str) -> str:
    """One container of an account listing in json, as ``object_json`` writes an object."""
    return (
        f'{{"name": {_JSON_STRING(name)}, "count": {count}, "bytes": {bytes_used}, '
        f'"last_modified": "{last_modified}"}}'
    )


def subdir_json(name: str) -> str:
    return f'{{"subdir": {_JSON_STRING(name)}}}'


def json_list(items: Iterable[str]) -> bytes:
    """A json array of items already rendered, as ``json.dumps`` separates them."""
    return ("[" + ", ".join(items) + "]").encode("ascii")


_JSON_STRING = json.encoder.encode_basestring_ascii  # how json.dumps quotes a str


def json_string(text: str) -> str:
    """``text`` as a json string, as ``json.dumps`` writes it (ASCII, ``\\u`` escapes)."""
    return _JSON_STRING(text)


def to_plain(records: Iterable[Record]) -> bytes:
    return b"".join(
        (record["name"] if "name" in record else record["subdir"]).encode("utf-8") + b"\n"
        for record in records
    )


def container_xml(records: Iterable[Record], container: str) -> bytes:
    doc = Element("container", name=container)
    for record in records:
        if "subdir" in record:
            sub = SubElement(doc, "subdir", name=record["subdir"])
            SubElement(sub, "name").text = record["subdir"]
            continue
        sub = SubElement(doc, "object")
        for field in ("name", "hash", "bytes", "content_type", "last_modified"):
            SubElement(sub, field).text = str(record[field])
    return _xml(doc)


def account_xml(records: Iterable[Record], account: str) -> bytes:
    # Swift's account listing puts newlines between entries; its container listing does not.
    doc = Element("account", name=account)
    doc.text = "\n"
    for record in records:
        if "subdir" in record:
            sub = SubElement(doc, "subdir", name=record["subdir"])
        else:
            sub = SubElement(doc, "container")
            for field in ("name", "count", "bytes", "last_modified"):
                SubElement(sub, field).text = str(record[field])
        sub.tail = "\n"
    return _xml(doc)


def _xml(doc: Element) -> bytes:
    return _XML_DECLARATION + b"\n" + tostring(doc, encoding="unicode").encode("utf-8")


def render_listing(records: Sequence[Record], content_type: str, kind: str, name: str) -> bytes:
    """The body for ``content_type``; ``kind`` ("account" or "container") and ``name`` name
    the XML root, as Swift's do."""
    if content_type.endswith("/xml"):
        return (account_xml if kind == "account" else container_xml)(records, name)
    if content_type.endswith("/json"):
        return to_json(records)
    return to_plain(records)


def listing_response(body: bytes, content_type: str, headers: Mapping[str, str]) -> web.Response:
    """200 with the body, or 204 when it is empty (a plain listing of nothing), as Swift."""
    return web.Response(
        status=200 if body else 204,
        body=body or None,
        headers=dict(headers),
        content_type=content_type,
        charset="utf-8",
    )
