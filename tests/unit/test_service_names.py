"""service.names and service.errors."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from service.errors import BadRequest, HTTPStatusError, PreconditionFailed
from service.names import (
    MAX_META_COUNT,
    MAX_META_OVERALL_SIZE,
    MAX_OBJECT_NAME_LENGTH,
    BackendPath,
    check_metadata,
    parse_backend_path,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/sda1/7/AUTH_a/c/o", BackendPath("sda1", 7, "AUTH_a", "c", "o")),
        ("/sda1/0/a/c/dir/sub//o/", BackendPath("sda1", 0, "a", "c", "dir/sub//o/")),
        ("/sda1/0/a/c/o%2Fx", BackendPath("sda1", 0, "a", "c", "o/x")),
        ("/sda1/0/a/c/%E2%98%83%20%3F%25", BackendPath("sda1", 0, "a", "c", "☃ ?%")),
        ("/sda1/0/a/c/o?multipart-manifest=get", BackendPath("sda1", 0, "a", "c", "o")),
        ("/d-1.x_~/4294967295/a/c/o", BackendPath("d-1.x_~", 2**32 - 1, "a", "c", "o")),
    ],
)
def test_object_paths(raw: str, expected: BackendPath) -> None:
    assert parse_backend_path(raw, min_parts=5, max_parts=5) == expected


def test_container_and_account_servers_take_shorter_paths() -> None:
    assert parse_backend_path("/d/1/a/c", min_parts=4) == BackendPath("d", 1, "a", "c")
    assert parse_backend_path("/d/1/a", max_parts=4) == BackendPath("d", 1, "a")
    assert parse_backend_path("/d/1/a/c", max_parts=4).container == "c"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("/d/1/a/c", "Invalid path"),  # too short for an object server
        ("d/1/a/c/o", "Invalid path"),
        ("/d/1/a//o", "Invalid path"),
        ("/d/1/a/c/", "Invalid path"),
        ("//1/a/c/o", "Invalid path"),
        ("/../1/a/c/o", "Invalid device: .."),
        ("/sd%2Fa/1/a/c/o", "Invalid partition: a"),  # decoded first, then split
        ("/sd%20a/1/a/c/o", "Invalid device: sd%20a"),
        ("/d/-1/a/c/o", "Invalid partition: -1"),
        ("/d/+1/a/c/o", "Invalid partition"),
        ("/d/1_0/a/c/o", "Invalid partition"),
        ("/d/4294967296/a/c/o", "Invalid partition"),
        ("/d/x/a/c/o", "Invalid partition: x"),
        ("/d/1/" + "a" * 257 + "/c/o", "Account name length of 257 longer than 256"),
        ("/d/1/a/" + "é" * 129 + "/o", "Container name length of 258 longer than 256"),
        ("/d/1/a/c/" + "o" * 1025, "Object name length of 1025 longer than 1024"),
    ],
)
def test_bad_paths_are_400(raw: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as caught:
        parse_backend_path(raw, min_parts=5, max_parts=5)
    assert caught.value.status == 400
    assert caught.value.body.startswith(message)


def test_an_object_name_of_exactly_the_limit_is_fine() -> None:
    name = "ö" * (MAX_OBJECT_NAME_LENGTH // 2)
    assert parse_backend_path(f"/d/1/a/c/{name}").obj == name


def test_a_longer_path_than_the_server_takes_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_backend_path("/d/1/a/c/o", max_parts=4)


@pytest.mark.parametrize("raw", ["/d/1/a/c/%FF", "/d/1/a/%ED%A0%80/o", "/d/1/a/c/o%00"])
def test_names_that_are_not_utf8_or_hold_nul_are_412(raw: str) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        parse_backend_path(raw)
    assert caught.value.status == 412
    assert caught.value.body == "Invalid UTF8 or contains NULL"


def test_errors_carry_status_body_and_headers() -> None:
    err = BadRequest("nope", {"X-Why": "because"})
    assert isinstance(err, HTTPStatusError)
    assert (err.status, err.body, err.headers) == (400, "nope", {"X-Why": "because"})


def test_metadata_within_limits_passes() -> None:
    headers = CIMultiDict({f"X-Object-Meta-K{i}": "v" for i in range(MAX_META_COUNT)})
    headers["Content-Type"] = "text/plain"
    check_metadata(headers, "object")


@pytest.mark.parametrize(
    ("headers", "target", "message"),
    [
        ({"X-Object-Meta-": "v"}, "object", "Metadata name cannot be empty"),
        (
            {"X-Object-Meta-" + "n" * 129: "v"},
            "object",
            "Metadata name too long: x-object-meta-" + "n" * 129,
        ),
        (
            {"X-Container-Meta-Color": "v" * 257},
            "container",
            "Metadata value longer than 256: x-container-meta-Color",
        ),
        (
            {f"X-Account-Meta-K{i}": "v" for i in range(MAX_META_COUNT + 1)},
            "account",
            "Too many metadata items; max 90",
        ),
        (
            {f"X-Object-Meta-K{i:02d}": "v" * 250 for i in range(17)},
            "object",
            f"Total metadata too large; max {MAX_META_OVERALL_SIZE}",
        ),
        ({"X-Container-Meta-Bad": "\udcff"}, "container", "Metadata must be valid UTF-8"),
        ({"X-Account-Meta-Nul": "a\x00b"}, "account", "Metadata must be valid UTF-8"),
        ({"X-Anything": "v" * 8193}, "object", "Header value too long: X-Anything"),
    ],
)
def test_metadata_limits_give_swifts_messages(headers, target: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_metadata(CIMultiDict(headers), target)
    assert caught.value.body == message


def test_object_metadata_may_hold_any_bytes_but_counts_them() -> None:
    check_metadata({"X-Object-Meta-Raw": "\udcff"}, "object")
    # 128 surrogate-escaped bytes fit; the limit is on bytes, so 129 two-byte chars do not.
    check_metadata({"X-Object-Meta-" + "\udcff" * 128: "v"}, "object")
    with pytest.raises(BadRequest, match="Metadata value longer than 256"):
        check_metadata({"X-Object-Meta-V": "é" * 129}, "object")


def test_other_targets_metadata_is_not_ours_to_count() -> None:
    check_metadata({"X-Container-Meta-" + "n" * 200: "v"}, "object")
    with pytest.raises(ValueError):
        check_metadata({}, "bucket")
