"""The checksum footer against a real object server process (`torus serve object`)."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator

import pytest
import xxhash
from server_process import ServerProcess

from objectd import checksum_footer
from objectd.checksum_footer import FOOTER_HEADER, FOOTER_KIND, ChecksumFooter
from service.timestamp import Timestamp

SIZE = 5 * (1 << 20) + 123  # several 1 MiB checksum blocks, a data file
_last_raw = 0


def next_ts() -> str:
    global _last_raw
    _last_raw = max(Timestamp.from_seconds(time.time()).raw, _last_raw + 1)
    return Timestamp(_last_raw).normal


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def footer_of(data: bytes, *, xxh3_hex: str | None = None) -> bytes:
    return checksum_footer.encode(
        ChecksumFooter(md5(data), xxh3_hex or xxhash.xxh3_64(data).hexdigest())
    )


def pieces(body: bytes, size: int = 100_003) -> Iterator[bytes]:
    return (body[i : i + size] for i in range(0, len(body), size))


def request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    chunked: bool = False,
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    conn = server.connection()
    try:
        sent: bytes | Iterator[bytes] | None = pieces(body) if chunked and body else body
        conn.request(method, path, body=sent, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def put(server: ServerProcess, path: str, body: bytes, *, chunked: bool = False, **headers: str):
    return request(
        server,
        "PUT",
        path,
        body,
        chunked=chunked,
        **{"X-Timestamp": next_ts(), "Content-Type": "application/octet-stream", **headers},
    )


FOOTER = {FOOTER_HEADER: FOOTER_KIND}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_footer_put_stores_the_data_and_the_footers_md5(
    object_server: ServerProcess, chunked: bool
) -> None:
    data = random.Random(1).randbytes(SIZE)
    path = "/sda/1/AUTH_a/c/footer"
    status, headers, _ = put(object_server, path, data + footer_of(data), chunked=chunked, **FOOTER)
    assert status == 201
    assert headers["ETag"] == f'"{md5(data)}"'
    status, headers, body = request(object_server, "GET", path)
    assert status == 200 and body == data
    assert (headers["ETag"], headers["Content-Length"]) == (f'"{md5(data)}"', str(SIZE))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_damaged_body_is_422_and_nothing_is_stored(
    object_server: ServerProcess, chunked: bool
) -> None:
    data = random.Random(2).randbytes(SIZE)
    path = "/sda/1/AUTH_a/c/damaged"
    status, _, _ = put(object_server, path, b"old" + footer_of(b"old"), **FOOTER)
    assert status == 201
    damaged = bytearray(data)
    damaged[SIZE - 1] ^= 0x80
    status, _, reply = put(
        object_server, path, bytes(damaged) + footer_of(data), chunked=chunked, **FOOTER
    )
    assert status == 422, reply
    assert request(object_server, "GET", path)[2] == b"old"
    tmp = object_server.devices / "sda" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    data_files = list((object_server.devices / "sda" / "objects").rglob("*.data"))
    assert data_files == []  # "old" is inline; the damaged body left no file behind


def test_a_client_etag_that_differs_is_422(object_server: ServerProcess) -> None:
    data = random.Random(3).randbytes(SIZE)
    path = "/sda/1/AUTH_a/c/etag"
    status, _, _ = put(object_server, path, data + footer_of(data), ETag="0" * 32, **FOOTER)
    assert status == 422
    assert request(object_server, "GET", path)[0] == 404
    status, _, _ = put(object_server, path, data + footer_of(data), ETag=md5(data), **FOOTER)
    assert status == 201


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_shorter_than_the_footer_is_400(object_server: ServerProcess, chunked: bool) -> None:
    path = "/sda/1/AUTH_a/c/short"
    status, _, _ = put(object_server, path, b"0" * 47, chunked=chunked, **FOOTER)
    assert status == 400
    assert request(object_server, "GET", path)[0] == 404


def test_without_the_header_nothing_changes(object_server: ServerProcess) -> None:
    data = random.Random(4).randbytes(1000)
    body = data + footer_of(data)
    path = "/sda/1/AUTH_a/c/plain"
    status, headers, _ = put(object_server, path, body)
    assert (status, headers["ETag"]) == (201, f'"{md5(body)}"')
    assert request(object_server, "GET", path)[2] == body
