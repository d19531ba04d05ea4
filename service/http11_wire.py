"""HTTP/1.1 on the wire, as the lean client (service/http11.py) speaks it: a request's bytes,
and an answer's status line and headers.  Pure functions, no I/O.

A request is the request line, ``Host``, the caller's headers as given (UTF-8; the framing
headers are ours: a caller's ``Host``, ``Content-Length``, ``Transfer-Encoding``,
``Connection`` and ``Expect`` are dropped), a Content-Length when there is a body or the method
usually has one, and the body; or, for a body streamed after the head (``encode_upload_head``),
``Expect: 100-continue`` with a Content-Length or the chunked coding.  CR or LF inside a
name, a value or the target would smuggle a header or a request: refused (``ValueError``), as
aiohttp refuses them.

An answer's head is read as RFC 9112 asks of a client: header names are tokens, a line folded
onto the next (obsolete folding) or holding no colon is an error, conflicting Content-Lengths
are an error.  Values are decoded as UTF-8 with ``surrogateescape``, as aiohttp's parser does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

# Framing is ours to set: a caller's copy of these is dropped.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # sent with Content-Length: 0 when empty
# RFC 9110's token characters for a name; a value runs to the line's end, outer blanks dropped.
_HEADER_LINE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*\r\n", re.M)
_STATUS_LINE = re.compile(r"HTTP/1\.([01]) ([0-9]{3})(?: .*)?")


class ProtocolError(ConnectionError):
    """The node's answer was not valid HTTP/1.1 (or not one this client reads)."""


def encode_request(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The bytes of a request (``host``: the ``Host`` header's value, ``ip:port``)."""
    if body is not None:
        framing = f"Content-Length: {len(body)}\r\n"
    elif method in _BODY_METHODS:
        framing = "Content-Length: 0\r\n"
    else:
        framing = ""
    data = _encode_head(method, target, host, headers, framing)
    return data + body if body else data


def encode_upload_head(
    method: str, target: str, host: str, headers: Mapping[str, str], length: int | None
) -> bytes:
    """The head of a request whose body follows as it is written (service/http11_upload.py):
    ``Expect: 100-continue``, and ``Content-Length: length`` or (``length`` None) the chunked
    coding."""
    if length is None:
        framing = "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
    else:
        framing = f"Content-Length: {length}\r\nExpect: 100-continue\r\n"
    return _encode_head(method, target, host, headers, framing)


def _encode_head(
    method: str, target: str, host: str, headers: Mapping[str, str], framing: str
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers.items():
        if name.lower() not in _FRAMING:
            lines.append(f"{name}: {value}\r\n")
    lines.append(framing)
    lines.append("\r\n")
    head = "".join(lines)
    # Every CR and LF must be one of ours: one per item but the first (two: the request
    # line's and Host's) and the framing's (as many as it holds, maybe none).  Two scans in
    # C, not one per header.
    expected = len(lines) + framing.count("\n")
    if head.count("\n") != expected or head.count("\r") != expected or " " in target:
        raise ValueError("a request line or header holds CR, LF or (in the target) a space")
    return head.encode("utf-8")


class Response(NamedTuple):
    """A whole answer (service/http11.py's ``ConnectionPool.request``)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Head(NamedTuple):
    status: int
    headers: CIMultiDict[str]
    keep_alive: bool  # neither side asked to close (HTTP/1.0: the node asked to keep it)
    chunked: bool  # the body comes in the chunked coding
    length: int | None  # the Content-Length; None: chunked, or to the connection's end


def parse_head(data: bytes) -> Head:
    """A status line and its headers, each line ending in CRLF (the blank line excluded)."""
    text = data.decode("utf-8", "surrogateescape")
    status_line, _, rest = text.partition("\r\n")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise ProtocolError(f"bad status line {status_line[:80]!r}")
    pairs = _HEADER_LINE.findall(rest)
    if len(pairs) != rest.count("\n"):  # a line that is not "name: value"
        raise ProtocolError(f"bad header lines {rest[:160]!r}")
    headers = CIMultiDict(pairs)
    connection = headers.get("Connection", "").lower()
    if match[1] == "1":
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection
    coding = headers.get("Transfer-Encoding")
    chunked = coding is not None and coding.rsplit(",", 1)[-1].strip().lower() == "chunked"
    length = None
    if coding is not None and not chunked:
        keep_alive = False  # a coding we do not frame: the body runs to the connection's end
    elif not chunked:
        lengths = set(headers.getall("Content-Length", ()))
        if len(lengths) > 1:
            raise ProtocolError("conflicting Content-Length headers")
        if lengths:
            value = lengths.pop()
            if not value.isdigit() or not value.isascii():
                raise ProtocolError(f"bad Content-Length {value[:40]!r}")
            length = int(value)
    return Head(int(match[2]), headers, keep_alive, chunked, length)


def parse_chunk_size(line: bytes) -> int:
    """The size on a chunk's first line (extensions after ';' are ignored)."""
    text = line.split(b";", 1)[0].strip(b" \t")
    if not text or text.strip(b"0123456789abcdefABCDEF"):
        raise ProtocolError(f"bad chunk size {text[:20]!r}")
    return int(text, 16)
