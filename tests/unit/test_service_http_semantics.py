"""service.http_semantics: Range, multipart/byteranges, HTTP dates, preconditions."""

from __future__ import annotations

import random

import pytest
from multidict import CIMultiDict

from service.http_semantics import (
    content_range,
    evaluate_preconditions,
    http_date,
    multipart_body,
    multipart_content_type,
    multipart_length,
    new_boundary,
    parse_http_date,
    parse_range_header,
    ranges_for_length,
    resolve_range,
    unsatisfied_content_range,
)
from service.timestamp import Timestamp

# --- Range --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "specs"),
    [
        ("bytes=0-9", [(0, 9)]),
        ("bytes=0-9,20-", [(0, 9), (20, None)]),
        ("bytes=-5", [(None, 5)]),
        ("Bytes = 1 - 2 , -0", [(1, 2), (None, 0)]),
        ("bytes=5-5", [(5, 5)]),
    ],
)
def test_range_headers_parse(header: str, specs) -> None:
    assert parse_range_header(header) == specs


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "items=0-9",
        "bytes=",
        "bytes=5-3",
        "bytes=-",
        "bytes=45",
        "bytes=a-9",
        "bytes=0-9,x",
        "bytes=--1",
        "bytes=+1-5",
        "bytes=0-9,,20-",
    ],
)
def test_invalid_range_headers_are_ignored(header: str | None) -> None:
    assert parse_range_header(header) is None
    assert resolve_range(header, 100) is None  # the whole body, 200


@pytest.mark.parametrize(
    ("header", "length", "ranges"),
    [
        ("bytes=0-9", 100, [(0, 10)]),
        ("bytes=90-200", 100, [(90, 100)]),
        ("bytes=-10", 100, [(90, 100)]),
        ("bytes=-200", 100, [(0, 100)]),
        ("bytes=50-", 100, [(50, 100)]),
        ("bytes=0-0,-1", 100, [(0, 1), (99, 100)]),
        ("bytes=100-", 100, []),  # unsatisfiable: 416
        ("bytes=-0", 100, []),
        ("bytes=200-300,100-", 100, []),
        ("bytes=200-300,0-1", 100, [(0, 2)]),  # the satisfiable ones are served
        ("bytes=0-", 0, []),
        ("bytes=-5", 0, None),  # suffix of an empty body: 200, as Swift, Apache and nginx
    ],
)
def test_ranges_resolve_against_the_length(header: str, length: int, ranges) -> None:
    assert resolve_range(header, length) == ranges


def test_swifts_limits_on_egregious_range_sets() -> None:
    fifty = ",".join(f"{i * 2}-{i * 2}" for i in range(50))
    assert len(resolve_range(f"bytes={fifty}", 1000)) == 50
    assert resolve_range(f"bytes={fifty},200-200", 1000) == []  # 51 ranges
    # Overlapping pairs: two are allowed, three are not.
    assert len(resolve_range("bytes=0-10,5-15,20-30,25-35", 100)) == 4
    assert resolve_range("bytes=0-10,5-15,8-20", 100) == []
    # Identical ranges do not count as overlapping in Swift's test.
    assert len(resolve_range("bytes=0-9,0-9,0-9,0-9", 100)) == 4
    # Out of order: seven are allowed, eight are not.
    seven = ",".join(f"{i}-{i}" for i in reversed(range(7)))
    assert len(resolve_range(f"bytes={seven}", 100)) == 7
    eight = ",".join(f"{i}-{i}" for i in reversed(range(8)))
    assert resolve_range(f"bytes={eight}", 100) == []


def test_ranges_for_length_takes_parsed_specs() -> None:
    assert ranges_for_length([(None, 3), (0, None)], 10) == [(7, 10), (0, 10)]


def test_content_range_values() -> None:
    assert content_range(0, 10, 100) == "bytes 0-9/100"
    assert unsatisfied_content_range(100) == "bytes */100"


def test_multipart_byteranges_layout_and_length() -> None:
    boundary = new_boundary(random.Random(7))
    assert len(boundary) == 32 and int(boundary, 16) >= 0
    assert new_boundary(random.Random(7)) == boundary
    body = bytes(range(100))
    ranges = [(0, 2), (98, 100)]
    out = multipart_body(body, ranges, "application/octet-stream", "b0")
    assert out == (
        b"--b0\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-1/100\r\n\r\n"
        b"\x00\x01\r\n"
        b"--b0\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 98-99/100\r\n\r\n"
        b"\x62\x63\r\n"
        b"--b0--"
    )
    assert multipart_length(ranges, "application/octet-stream", "b0", 100) == len(out)
    assert multipart_content_type("b0") == "multipart/byteranges;boundary=b0"


# --- dates --------------------------------------------------------------------------------

RFC_EXAMPLE = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT


def test_http_date_formats_a_timestamp_rounded_up() -> None:
    assert http_date(RFC_EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(Timestamp.parse(f"{RFC_EXAMPLE}.00000")) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(Timestamp.parse(f"{RFC_EXAMPLE - 1}.00001")) == (
        "Sun, 06 Nov 1994 08:49:37 GMT"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE),
        ("Sunday, 06-Nov-94 08:49:37 GMT", RFC_EXAMPLE),
        ("Sun Nov  6 08:49:37 1994", RFC_EXAMPLE),
        ("Sun, 06 Nov 1994 09:49:37 +0100", RFC_EXAMPLE),
        ("garbage", None),
        ("", None),
        (None, None),
        ("Sun, 32 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 99999999999 08:49:37 GMT", None),
    ],
)
def test_parse_http_date(text: str | None, seconds: int | None) -> None:
    assert parse_http_date(text) == seconds


# --- preconditions ------------------------------------------------------------------------

ETAG = "d41d8cd98f00b204e9800998ecf8427e"
MODIFIED = Timestamp.parse(f"{RFC_EXAMPLE - 1}.5")  # Last-Modified: 08:49:37
BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT"
AT = "Sun, 06 Nov 1994 08:49:37 GMT"


def evaluate(method: str = "GET", exists: bool = True, **headers: str) -> int | None:
    fields = CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})
    return evaluate_preconditions(
        fields, method=method, etag=ETAG, last_modified=MODIFIED, exists=exists
    )


@pytest.mark.parametrize(
    ("headers", "get", "put"),
    [
        ({}, None, None),
        ({"If_Match": f'"{ETAG}"'}, None, None),
        ({"If_Match": ETAG}, None, None),  # unquoted, as Swift tolerates
        ({"If_Match": f'"x", "{ETAG}"'}, None, None),
        ({"If_Match": "*"}, None, None),
        ({"If_Match": '"x"'}, 412, 412),
        ({"If_Match": f'W/"{ETAG}"'}, 412, 412),  # If-Match compares strongly
        ({"If_None_Match": f'"{ETAG}"'}, 304, 412),
        ({"If_None_Match": f'W/"{ETAG}"'}, 304, 412),  # If-None-Match compares weakly
        ({"If_None_Match": "*"}, 304, 412),
        ({"If_None_Match": '"x"'}, None, None),
        ({"If_Modified_Since": AT}, 304, None),  # only GET and HEAD look at it
        ({"If_Modified_Since": BEFORE}, None, None),
        ({"If_Modified_Since": "not a date"}, None, None),
        ({"If_Unmodified_Since": BEFORE}, 412, 412),
        ({"If_Unmodified_Since": AT}, None, None),
        # If-Match decides alone: If-Unmodified-Since is not looked at.
        ({"If_Match": ETAG, "If_Unmodified_Since": BEFORE}, None, None),
        # If-None-Match decides alone: If-Modified-Since is not looked at.
        ({"If_None_Match": '"x"', "If_Modified_Since": AT}, None, None),
        ({"If_None_Match": ETAG, "If_Modified_Since": BEFORE}, 304, 412),
        # If-Match is evaluated first.
        ({"If_Match": '"x"', "If_None_Match": ETAG}, 412, 412),
    ],
)
def test_preconditions(headers: dict[str, str], get: int | None, put: int | None) -> None:
    assert evaluate("GET", **headers) == get
    assert evaluate("HEAD", **headers) == get
    assert evaluate("PUT", **headers) == put


def test_preconditions_without_a_current_representation() -> None:
    assert evaluate("PUT", exists=False, If_None_Match="*") is None  # create only if absent
    assert evaluate("PUT", exists=False, If_Match="*") == 412
    assert evaluate("PUT", exists=False, If_Match=ETAG) == 412
    assert evaluate("PUT", exists=False, If_Unmodified_Since=BEFORE) is None


def test_preconditions_with_no_etag_or_date_known() -> None:
    fields = CIMultiDict({"If-Match": '"x"', "If-Modified-Since": AT})
    assert evaluate_preconditions(fields, method="GET", etag=None, last_modified=None) == 412
    fields = CIMultiDict({"If-Modified-Since": AT, "If-Match": "*"})
    assert evaluate_preconditions(fields, method="GET", etag=None, last_modified=None) is None
