"""proxy/paths.py: client paths decoded and checked as Swift's proxy does."""

from __future__ import annotations

import pytest
from aiohttp import web

from proxy.paths import SwiftPath, parse_swift_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/v1/AUTH_test", SwiftPath("AUTH_test")),
        ("/v1/AUTH_test/", SwiftPath("AUTH_test")),
        ("/v1.0/AUTH_test/c", SwiftPath("AUTH_test", "c")),
        ("/v1/AUTH_test/c/", SwiftPath("AUTH_test", "c")),
        ("/v1/AUTH_test/c/o", SwiftPath("AUTH_test", "c", "o")),
        ("/v1/a/c/dir/sub/o", SwiftPath("a", "c", "dir/sub/o")),
        ("/v1/a/c//o/", SwiftPath("a", "c", "/o/")),
        ("/v1/a/c/o%2Fx", SwiftPath("a", "c", "o/x")),
        ("/v1/a/c%2Fo", SwiftPath("a", "c", "o")),  # decoded first, split second
        ("/v1/a/%E2%98%83/%F0%9F%98%80", SwiftPath("a", "\u2603", "\U0001f600")),
        ("/v1/a/c/o?multipart-manifest=get", SwiftPath("a", "c", "o")),
        ("/v1/a/c/with%3Fquestion", SwiftPath("a", "c", "with?question")),
    ],
)
def test_names(raw: str, expected: SwiftPath) -> None:
    assert parse_swift_path(raw) == expected


def test_kind() -> None:
    assert SwiftPath("a").kind == "account"
    assert SwiftPath("a", "c").kind == "container"
    assert SwiftPath("a", "c", "o").kind == "object"


def _error(raw: str) -> web.HTTPException:
    with pytest.raises(web.HTTPException) as info:
        parse_swift_path(raw)
    return info.value


@pytest.mark.parametrize("raw", ["/v1/a/c/%FF", "/v1/a/%C3", "/v1/a%00b", "/v1/a/c/o%00"])
def test_invalid_utf8_or_nul_is_412(raw: str) -> None:
    error = _error(raw)
    assert error.status == 412
    assert error.text == "Invalid UTF8 or contains NULL"


@pytest.mark.parametrize("raw", ["/v1", "/v1/"])
def test_no_account_is_412_bad_url(raw: str) -> None:
    error = _error(raw)
    assert (error.status, error.text) == (412, "Bad URL")


@pytest.mark.parametrize("raw", ["/v1//c", "/v1/a//o", "/v1//c/o", "/v1/a//", "//a"])
def test_an_empty_segment_before_the_last_is_404(raw: str) -> None:
    assert _error(raw).status == 404


def test_unknown_version_is_400() -> None:
    error = _error("/v2/a/c")
    assert (error.status, error.text) == (400, "Invalid path")


@pytest.mark.parametrize("raw", ["/", "", "v1/a"])
def test_no_version_is_404(raw: str) -> None:
    assert _error(raw).status == 404


def test_length_limits_count_utf8_bytes() -> None:
    assert parse_swift_path("/v1/" + "a" * 256).account == "a" * 256
    error = _error("/v1/" + "a" * 257)
    assert (error.status, error.text) == (400, "Account name length of 257 longer than 256")
    snowmen = "%E2%98%83" * 86  # 258 bytes in 86 characters
    error = _error(f"/v1/a/{snowmen}")
    assert (error.status, error.text) == (400, "Container name length of 258 longer than 256")
    assert parse_swift_path("/v1/a/c/" + "o" * 1024).obj == "o" * 1024
    error = _error("/v1/a/c/" + "o" * 1025)
    assert (error.status, error.text) == (400, "Object name length of 1025 longer than 1024")
