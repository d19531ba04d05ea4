"""proxy/constraints.py: Swift's limits and messages, checked before any backend call."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from proxy import constraints
from proxy.constraints import CONSTRAINTS, check_metadata, check_object_put, delete_at


def _error(call, *args) -> web.HTTPException:
    with pytest.raises(web.HTTPException) as info:
        call(*args)
    return info.value


def test_published_constraints_are_swifts_defaults() -> None:
    assert CONSTRAINTS == {
        "max_file_size": 5368709122,
        "max_meta_name_length": 128,
        "max_meta_value_length": 256,
        "max_meta_count": 90,
        "max_meta_overall_size": 4096,
        "max_header_size": 8192,
        "max_request_line": 8192,
        "max_object_name_length": 1024,
        "container_listing_limit": 10000,
        "account_listing_limit": 10000,
        "max_account_name_length": 256,
        "max_container_name_length": 256,
        "valid_api_versions": ["v1", "v1.0"],
        "extra_header_count": 0,
    }


@pytest.mark.parametrize("target", ["account", "container", "object"])
def test_metadata_limits(target: str) -> None:
    prefix = f"X-{target.title()}-Meta-"
    check_metadata({prefix + "n" * 128: "v" * 256}, target)
    cases = [
        ({prefix + "n" * 129: "v"}, f"Metadata name too long: {prefix.lower()}{'n' * 129}"),
        ({prefix + "n": "v" * 257}, f"Metadata value longer than 256: {prefix.lower()}n"),
        ({prefix: "v"}, "Metadata name cannot be empty"),
        ({f"{prefix}{i}": "v" for i in range(91)}, "Too many metadata items; max 90"),
        ({f"{prefix}{i}": "v" * 250 for i in range(17)}, "Total metadata too large; max 4096"),
        ({"X-Other": "v" * 8193}, "Header value too long: X-Other"),
    ]
    for headers, message in cases:
        error = _error(check_metadata, headers, target)
        assert (error.status, error.text) == (400, message)


def test_metadata_of_another_target_is_not_counted() -> None:
    check_metadata({f"X-Object-Meta-{i}": "v" for i in range(200)}, "container")


def test_metadata_target_must_be_known() -> None:
    with pytest.raises(ValueError):
        check_metadata({}, "bucket")


def _put(headers: dict[str, str]) -> web.Request:
    if any(not value.isascii() for value in headers.values()):
        # What aiohttp's parser hands over for bytes that are not UTF-8 (surrogateescape);
        # make_mocked_request cannot encode such values, so a stand-in carries them.
        return cast(web.Request, SimpleNamespace(headers=CIMultiDict(headers)))
    return make_mocked_request("PUT", "/v1/a/c/o", headers=CIMultiDict(headers))


def test_object_put_ok() -> None:
    check_object_put(_put({"Content-Length": "0"}))
    check_object_put(_put({"Content-Length": str(constraints.MAX_FILE_SIZE)}))
    check_object_put(_put({"Transfer-Encoding": "chunked", "Content-Type": "text/plain"}))


@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({}, 411, "Missing Content-Length header."),
        ({"Content-Length": "5368709123"}, 413, "Your request is too large."),
        ({"Content-Length": "-1"}, 400, "Invalid Content-Length header value"),
        ({"Content-Length": "abc"}, 400, "Invalid Content-Length header value"),
        ({"Transfer-Encoding": "gzip"}, 501, None),
        ({"Content-Length": "1", "Content-Type": "\udcff"}, 400, "Invalid Content-Type"),
        ({"Content-Length": "1", "X-Delete-At": "soon"}, 400, "Non-integer X-Delete-At"),
        ({"Content-Length": "1", "X-Delete-At": "1000"}, 400, "X-Delete-At in past"),
        ({"Content-Length": "1", "X-Delete-After": "1.5"}, 400, "Non-integer X-Delete-After"),
        ({"Content-Length": "1", "X-Delete-After": "-10"}, 400, "X-Delete-After in past"),
        (
            {"Content-Length": "1", "X-Object-Meta-" + "k" * 129: "v"},
            400,
            "Metadata name too long: x-object-meta-" + "k" * 129,
        ),
    ],
)
def test_object_put_refused(headers: dict[str, str], status: int, text: str | None) -> None:
    error = _error(check_object_put, _put(headers))
    assert error.status == status
    if text is not None:
        assert error.text == text


def test_delete_at() -> None:
    now = 1_700_000_000.5
    assert delete_at({}, now) is None
    assert delete_at({"X-Delete-After": "60"}, now) == 1_700_000_060
    assert delete_at({"X-Delete-At": "1700000100"}, now) == 1_700_000_100
    # X-Delete-After wins over X-Delete-At, as Swift's check_delete_headers has it.
    assert delete_at({"X-Delete-After": "10", "X-Delete-At": "1"}, now) == 1_700_000_010
    assert delete_at({"X-Delete-At": "99999999999"}, now) == 9_999_999_999


def test_delete_at_uses_the_request_timestamp() -> None:
    past = f"{time.time() - 3600:.5f}"
    in_half_an_hour_of_that = str(int(time.time() - 1800))
    check_object_put(
        _put({"Content-Length": "1", "X-Timestamp": past, "X-Delete-At": in_half_an_hour_of_that})
    )


# -- what an account or container write passes on (proxy/account.py) ------------------------


def test_transfer_headers_keeps_metadata_and_pass_through_only() -> None:
    from proxy.account import transfer_headers
    from proxy.container import PASS_THROUGH_HEADERS

    incoming = CIMultiDict(
        {
            "X-Container-Meta-Color": "blue",
            "X-Remove-Container-Meta-Shape": "x",
            "X-Remove-Container-Meta-Color": "x",  # a value sent for it wins
            "X-Container-Read": ".r:*",
            "X-Remove-Container-Write": "x",
            "X-Container-Sysmeta-Secret": "no",
            "X-Account-Host": "10.0.0.1:6202",
            "X-Object-Meta-Other": "no",
            "Content-Type": "text/plain",
        }
    )
    assert transfer_headers(incoming, "container", PASS_THROUGH_HEADERS) == {
        "x-container-meta-color": "blue",
        "x-container-meta-shape": "",
        "x-container-read": ".r:*",
        "x-container-write": "",
    }
    account = CIMultiDict({"X-Account-Meta-A": "1", "X-Remove-Account-Meta-B": "y"})
    assert transfer_headers(account, "account", frozenset()) == {
        "x-account-meta-a": "1",
        "x-account-meta-b": "",
    }
