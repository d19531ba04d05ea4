"""service/listing_http.py: listing parameters, format negotiation and bodies, as pure
functions (the servers' tests cover them over HTTP)."""

from __future__ import annotations

import pytest

from service.errors import BadRequest, NotAcceptable, PreconditionFailed
from service.listing_http import (
    OFFERED_TYPES,
    best_match,
    isoformat,
    listing_content_type,
    listing_params,
    parse_query,
    to_json,
    to_plain,
)
from service.timestamp import Timestamp


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "text/plain"),
        ("*/*", "text/plain"),
        ("application/*", "application/json"),
        ("text/*", "text/plain"),
        ("text/xml", "text/xml"),
        ("application/xml;q=0.9, application/json;q=0.8", "application/xml"),
        ("text/*;q=0.9, application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("Application/JSON", "application/json"),  # media types are case-insensitive
        ("application/json;q=0, */*;q=0.1", "text/plain"),  # q=0: not acceptable
        ("image/png", None),
        ("application/json;q=0", None),
    ],
)
def test_best_match(accept: str, expected: str | None) -> None:
    assert best_match(accept, OFFERED_TYPES) == expected


@pytest.mark.parametrize("accept", ["json", "text/plain;q=0.5;q=0.4", "a/b;q=high", "/"])
def test_a_malformed_accept_is_an_error(accept: str) -> None:
    with pytest.raises(ValueError):
        best_match(accept, OFFERED_TYPES)
    with pytest.raises(BadRequest, match="Invalid Accept header"):
        listing_content_type({}, accept)


def test_format_overrides_accept_and_unknown_formats_are_plain() -> None:
    assert listing_content_type(parse_query("format=JSON"), "nonsense") == "application/json"
    assert listing_content_type(parse_query("format=csv"), None) == "text/plain"
    with pytest.raises(NotAcceptable):
        listing_content_type({}, "image/png")


def test_parameters_are_checked_only_when_read() -> None:
    query = parse_query("prefix=%C3%A9+x&marker=&junk=%FF&limit=5&reverse=Yes&path=")
    params = listing_params(query, None, max_limit=10, with_path=True)
    assert (params.prefix, params.marker, params.limit, params.reverse) == ("é x", "", 5, True)
    assert params.broker_kwargs()["path"] == ""  # present though empty: the top level
    assert "path" not in listing_params({}, None, max_limit=10, with_path=True).broker_kwargs()
    assert listing_params(query, None, max_limit=10, with_path=False).path is None
    with pytest.raises(BadRequest, match='"marker" parameter not valid UTF-8'):
        listing_params(parse_query("marker=%FF"), None, max_limit=10, with_path=False)


@pytest.mark.parametrize(("text", "limit"), [("", 10), ("-1", 10), ("1.5", 10), ("²", 10)])
def test_a_limit_that_is_not_a_number_is_ignored(text: str, limit: int) -> None:
    query = {"limit": text.encode("utf-8").decode("latin-1")}
    assert listing_params(query, None, max_limit=10, with_path=False).limit == limit


def test_a_limit_above_the_maximum_is_412() -> None:
    with pytest.raises(PreconditionFailed, match="Maximum limit is 10"):
        listing_params({"limit": "11"}, None, max_limit=10, with_path=False)
    assert listing_params({"limit": "0"}, None, max_limit=10, with_path=False).limit == 0


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("0000000000.00000", "1970-01-01T00:00:00.000000"),
        ("1700000000.12345", "2023-11-14T22:13:20.123450"),
        ("1700000000.00001_00000000000000ff", "2023-11-14T22:13:20.000010"),
    ],
)
def test_isoformat_is_swifts(timestamp: str, expected: str) -> None:
    assert isoformat(Timestamp.parse(timestamp)) == expected


def test_json_is_ascii_and_plain_is_utf8() -> None:
    records = [{"name": "é"}, {"subdir": "d/"}]
    assert to_json(records) == b'[{"name": "\\u00e9"}, {"subdir": "d/"}]'
    assert to_plain(records) == "é\nd/\n".encode()
