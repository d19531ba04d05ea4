"""A ``multipart/form-data`` body (RFC 7578) read part by part as it arrives, never whole.

S3's PostObject (proxy/s3/post_object.py) gets its form fields and then the file in one such
body: the fields are small and read whole (``read_value``, bounded), the file streams on to
the object PUT piece by piece (``read_piece``) without being held.

The parser keeps in memory only what it has not handed on yet: a part's headers (bounded by
``header_limit_bytes``) or, within a part's body, the last ``len(delimiter) - 1`` bytes,
which could be the start of the delimiter that ends the part.  A body's delimiter is
``CRLF "--" boundary``; the first one has no CRLF before it (it may start the body), so the
buffer starts with a CRLF of its own and the first delimiter is found as every other.

Pure: the body comes from a ``PieceSource`` (an async callable, ``b""`` at the end), so the
same reader runs on the client's socket and on test pieces split anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

PieceSource = Callable[[], Awaitable[bytes]]  # as proxy/streaming.py's
HEADER_LIMIT_BYTES = 8192  # one part's header block; a browser's is ~100 bytes
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class FormDataError(Exception):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True)
class PartHeaders:
    name: str  # Content-Disposition's name, as sent
    filename: str | None  # its filename, None when the part is not a file
    content_type: str | None


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type; None if it is not one or names
    none (or an invalid one: RFC 2046 allows 1-70 characters of a small set)."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for name, value in _PARAM.findall(";" + params):
        if name.lower() == "boundary":
            value = _unquote(value.strip())
            return value.encode() if _BOUNDARY.fullmatch(value) else None
    return None


class FormReader:
    """Parts in order: ``next_part()`` for the next one's headers (None after the last),
    then its body through ``read_piece()`` (b"" at its end) or ``read_value()``.

    ``source`` may be replaced between calls: the reader holds no state about it (the S3 PUT
    reads the rest of the client's body through the proxy's own reader, with its timeouts)."""

    def __init__(
        self, source: PieceSource, boundary: bytes, header_limit_bytes: int = HEADER_LIMIT_BYTES
    ) -> None:
        self.source = source
        self._delimiter = b"\r\n--" + boundary
        self._header_limit_bytes = header_limit_bytes
        self._buffer = bytearray(b"\r\n")
        self._in_body = False
        self._closed = False  # the close delimiter ("--" boundary "--") was read

    async def next_part(self) -> PartHeaders | None:
        while self._in_body:  # the rest of a part the caller did not read
            await self.read_piece()
        if self._closed:
            return None
        buffer, delimiter = self._buffer, self._delimiter
        while (at := buffer.find(delimiter)) < 0:  # the preamble, before the first part
            if len(buffer) > self._header_limit_bytes:
                raise FormDataError("no boundary where the form's body starts")
            await self._fill("the body ends before its first boundary")
        del buffer[: at + len(delimiter)]
        while len(buffer) < 2:
            await self._fill("the body ends after a boundary")
        if buffer[:2] == b"--":
            self._closed = True
            return None
        while (end := buffer.find(b"\r\n\r\n")) < 0 and len(buffer) <= self._header_limit_bytes:
            await self._fill("the body ends in a part's headers")
        if end < 0 or end > self._header_limit_bytes:
            raise FormDataError("a part's headers are too long")
        block = bytes(buffer[:end])
        del buffer[: end + 4]
        self._in_body = True
        return _part_headers(block)

    async def read_piece(self) -> bytes:
        """The next piece of the current part's body; b"" at its end."""
        if not self._in_body:
            return b""
        buffer, delimiter = self._buffer, self._delimiter
        while True:
            at = buffer.find(delimiter)
            if at >= 0:
                piece = bytes(memoryview(buffer)[:at])
                del buffer[:at]
                self._in_body = bool(piece)
                return piece
            # All but what could be the delimiter's start is the part's for sure.
            safe = len(buffer) - len(delimiter) + 1
            if safe > 0:
                piece = bytes(memoryview(buffer)[:safe])
                del buffer[:safe]
                return piece
            await self._fill("the body ends inside a part")

    async def read_value(self, limit_bytes: int) -> bytes:
        """The current part's whole body; FormDataError past ``limit_bytes``."""
        pieces, size = [], 0
        while piece := await self.read_piece():
            size += len(piece)
            if size > limit_bytes:
                raise FormDataError("the form's fields are too large")
            pieces.append(piece)
        return b"".join(pieces)

    async def _fill(self, at_end: str) -> None:
        piece = await self.source()
        if not piece:
            raise FormDataError(at_end)
        self._buffer += piece


def _part_headers(block: bytes) -> PartHeaders:
    """A part's header block: transport padding, CRLF, then header lines (RFC 2046 5.1.1)."""
    padding, crlf, lines = block.partition(b"\r\n")
    if padding.strip(b" \t") or not crlf:
        raise FormDataError("a part has no Content-Disposition")
    headers: dict[str, str] = {}
    for line in lines.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            raise FormDataError("a part's header line has no colon")
        # UTF-8 as browsers send non-ASCII file names; latin-1 cannot fail on what is left.
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        headers[name.decode("latin-1").strip().lower()] = text.strip()
    disposition = headers.get("content-disposition", "")
    kind, _, params = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise FormDataError("a part's Content-Disposition is not form-data")
    fields = {n.lower(): _unquote(v.strip()) for n, v in _PARAM.findall(";" + params)}
    if "name" not in fields:
        raise FormDataError("a part's Content-Disposition has no name")
    return PartHeaders(fields["name"], fields.get("filename"), headers.get("content-type"))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
