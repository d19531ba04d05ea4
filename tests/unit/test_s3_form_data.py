"""proxy/s3/form_data.py: bodies from urllib3's multipart/form-data encoder (what botocore's
HTTP stack ships), split at every position, plus hand-written RFC 2046 edge cases."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata

from proxy.s3.form_data import FormDataError, FormReader, PartHeaders, boundary_of

BOUNDARY = "TorusBoundary7MA4YWxkTrZu0gW"


def pieces_of(body: bytes, cuts: list[int]):
    """A PieceSource giving ``body`` cut at ``cuts``; b"" at the end, forever."""
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(body))), len(body)]
    pieces = [body[a:b] for a, b in itertools.pairwise(bounds)]

    async def source() -> bytes:
        return pieces.pop(0) if pieces else b""

    return source


async def read_all(reader: FormReader) -> list[tuple[PartHeaders, bytes]]:
    parts = []
    while (part := await reader.next_part()) is not None:
        chunks = []
        while piece := await reader.read_piece():
            chunks.append(piece)
        parts.append((part, b"".join(chunks)))
    return parts


def parse(body: bytes, cuts: list[int] = (), boundary: str = BOUNDARY):
    reader = FormReader(pieces_of(body, list(cuts)), boundary.encode())
    return asyncio.run(read_all(reader))


# A file whose bytes hold near-delimiters: CRLF, "--", the boundary less its last character.
TRICKY_FILE = b"\r\n--" + BOUNDARY[:-1].encode() + b"x\r\n\r\n--\r\n" + os.urandom(300) + b"\r"


def form(file_data: bytes = TRICKY_FILE) -> bytes:
    body, content_type = encode_multipart_formdata(
        [
            ("key", "user/${filename}"),
            ("x-amz-meta-note", "caf\u00e9"),
            ("empty", ""),
            ("file", ("photo \u00e9.jpg", file_data, "image/jpeg")),
        ],
        boundary=BOUNDARY,
    )
    assert boundary_of(content_type) == BOUNDARY.encode()
    return body


EXPECTED = [
    (PartHeaders("key", None, None), b"user/${filename}"),
    (PartHeaders("x-amz-meta-note", None, None), "caf\u00e9".encode()),
    (PartHeaders("empty", None, None), b""),
    (PartHeaders("file", "photo \u00e9.jpg", "image/jpeg"), TRICKY_FILE),
]


def test_urllib3_form_whole() -> None:
    assert parse(form()) == EXPECTED


def test_urllib3_form_split_at_every_position() -> None:
    body = form()
    for cut in range(len(body)):
        assert parse(body, [cut]) == EXPECTED, cut


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), max_size=40))
def test_urllib3_form_any_splits(cuts: list[int]) -> None:
    assert parse(form(), cuts) == EXPECTED


def test_one_byte_pieces() -> None:
    body = form()
    assert parse(body, list(range(len(body)))) == EXPECTED


def test_preamble_epilogue_and_transport_padding() -> None:
    body = (
        b"This is the preamble.\r\n"
        b"--B  \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
        b'--B\r\ncontent-disposition: FORM-DATA; NAME="b"; filename="q\\"uote"\r\n\r\n2\r\n'
        b"--B--\r\nthe epilogue, ignored"
    )
    assert parse(body, boundary="B") == [
        (PartHeaders("a", None, None), b"1"),
        (PartHeaders("b", 'q"uote', None), b"2"),
    ]


def test_next_part_skips_an_unread_body() -> None:
    async def run() -> list[str]:
        reader = FormReader(pieces_of(form(), [7, 100]), BOUNDARY.encode())
        names = []
        while (part := await reader.next_part()) is not None:
            names.append(part.name)
        return names

    assert asyncio.run(run()) == ["key", "x-amz-meta-note", "empty", "file"]


def test_a_large_file_is_never_held() -> None:
    """The buffer holds at most a piece and a delimiter's worth, whatever the file's size."""
    piece = os.urandom(1 << 20)
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\n'.encode()
    pieces = [head] + [piece] * 32 + [f"\r\n--{BOUNDARY}--\r\n".encode()]

    async def source() -> bytes:
        return pieces.pop(0) if pieces else b""

    async def run() -> tuple[int, int]:
        reader = FormReader(source, BOUNDARY.encode())
        assert (await reader.next_part()).name == "file"
        size, most = 0, 0
        while got := await reader.read_piece():
            size += len(got)
            most = max(most, len(reader._buffer))
        return size, most

    size, most = asyncio.run(run())
    assert size == 32 << 20
    # What could be a delimiter, and at the end the delimiter and its "--\r\n".
    assert most <= len(f"\r\n--{BOUNDARY}--\r\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body ends before its first boundary"),
        (b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nno end", "ends inside a part"),
        (b"--B\r\nContent-Disposition: form-data; name=a", "ends in a part's headers"),
        (b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--", "not form-data"),
        (b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--", "has no name"),
        (b"--B\r\n\r\nx\r\n--B--", "has no Content-Disposition"),
        (b"--B\r\nno colon here\r\n\r\nx\r\n--B--", "has no colon"),
        (b"--Bjunk\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--", "no Content-D"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(FormDataError, match=message):
        parse(body, boundary="B")


def test_headers_and_preamble_are_bounded() -> None:
    long_header = b"--B\r\nX-Long: " + b"a" * 10000 + b"\r\n\r\n"
    with pytest.raises(FormDataError, match="too long"):
        parse(long_header, [100, 5000], boundary="B")
    with pytest.raises(FormDataError, match="no boundary"):
        parse(b"p" * 10000 + b"--B--", [100, 5000], boundary="B")


def test_read_value_is_bounded() -> None:
    async def run() -> None:
        reader = FormReader(pieces_of(form(b"x" * 100), []), BOUNDARY.encode())
        await reader.next_part()
        assert await reader.read_value(16) == b"user/${filename}"
        await reader.next_part()
        await reader.next_part()
        await reader.next_part()
        await reader.read_value(10)

    with pytest.raises(FormDataError, match="too large"):
        asyncio.run(run())


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c"', b"a b:c"),
        ("multipart/form-data", None),
        ("multipart/mixed; boundary=abc", None),
        ("application/x-www-form-urlencoded", None),
        ("multipart/form-data; boundary=" + "a" * 71, None),
        ('multipart/form-data; boundary="trailing "', None),
    ],
)
def test_boundary_of(content_type: str, boundary: bytes | None) -> None:
    assert boundary_of(content_type) == boundary
