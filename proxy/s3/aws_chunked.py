"""The aws-chunked body decoder: S3's streaming uploads, framing removed and signatures checked.

A client that sends ``Content-Encoding: aws-chunked`` with x-amz-content-sha256 set to one of
the STREAMING-* values frames its body as chunks (AWS: "sigv4-streaming" and
"sigv4-streaming-trailers")::

    <hex size>;chunk-signature=<64 hex>\\r\\n<data>\\r\\n      (signed variants)
    <hex size>\\r\\n<data>\\r\\n                                (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
    ... a last chunk of size 0, then for the *-TRAILER variants trailer lines
    x-amz-checksum-crc32:<base64>\\r\\n [x-amz-trailer-signature:<64 hex>\\r\\n] \\r\\n

Each chunk signature chains from the previous one, starting from the request's own signature
(the seed), so chunks can be neither altered, dropped nor reordered.  A signed chunk's data is
held until its signature is checked and only then handed on: a tampered chunk is never stored.
So at most one chunk is buffered, and chunks are capped at MAX_CHUNK_BYTES to bound that memory
(AWS documents a minimum chunk size, 8 KiB, and no maximum; clients send 64 KiB to 8 MiB).
Unsigned chunks have nothing to wait for and are passed on as they arrive.

What a trailer's value means (a checksum of the decoded body) is for the caller to check; this
module only checks that the trailers are the declared ones and, if signed, their signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable

from proxy.s3.errors import CODES, S3Error
from proxy.s3.sigv4 import (
    EMPTY_SHA256,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
)

MIN_CHUNK_BYTES = 8192  # AWS: every chunk but the last holds at least 8 KiB
MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_CHUNK_HEADER_BYTES = 4096  # "<hex>;chunk-signature=<64 hex>" is under 100 bytes
MAX_TRAILER_BYTES = 16 * 1024
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-fA-F]{64}")
_TRAILER_NAME = re.compile(r"[a-z0-9-]+")
_DECIMAL = re.compile(r"[0-9]{1,19}")


def _code(aws_code: str, fallback: str) -> str:
    """AWS's code if proxy/s3/errors.py knows it yet, else the nearest one it does (the two
    aws-chunked codes below are missing there; asked of the file's owner)."""
    return aws_code if aws_code in CODES else fallback


def declared_trailers(x_amz_trailer: str | None) -> tuple[str, ...]:
    """The trailer names an ``x-amz-trailer`` header declares, lowercase."""
    if not x_amz_trailer:
        return ()
    return tuple(name.strip().lower() for name in x_amz_trailer.split(",") if name.strip())


def decoded_length(x_amz_decoded_content_length: str | None) -> int:
    """x-amz-decoded-content-length, which S3 requires of every aws-chunked upload."""
    value = x_amz_decoded_content_length
    if value is None:
        raise S3Error("MissingContentLength")
    if not _DECIMAL.fullmatch(value.strip()):
        raise S3Error(
            "InvalidArgument",
            extra={"ArgumentName": "x-amz-decoded-content-length", "ArgumentValue": value},
        )
    return int(value)


def _incomplete(message: str = "The request body terminated unexpectedly") -> S3Error:
    return S3Error("IncompleteBody", message)


def _malformed_trailer(message: str) -> S3Error:
    return S3Error(
        _code("MalformedTrailerError", "InvalidRequest"),
        "The request contained trailing data that was not well-formed or did not conform to "
        f"our published schema: {message}.",
    )


class AwsChunkedDecoder:
    """Decodes an aws-chunked body read with ``next_piece`` (raw body bytes in any pieces, b""
    at the end: proxy/streaming.py's ``read_piece``).

    ``payload``: the request's x-amz-content-sha256, one of the STREAMING-* values.
    ``signing_key``, ``seed_signature``, ``amz_date``, ``scope``: from proxy/s3/sigv4.py's
    ``verify`` and ``SignedRequest``; needed for the signed variants only.
    ``decoded_length``: x-amz-decoded-content-length (None: not checked).
    ``trailer_names``: ``declared_trailers(x-amz-trailer)``.
    """

    def __init__(
        self,
        next_piece: Callable[[], Awaitable[bytes]],
        *,
        payload: str,
        decoded_length: int | None,
        trailer_names: tuple[str, ...] = (),
        signing_key: bytes | None = None,
        seed_signature: str | None = None,
        amz_date: str = "",
        scope: str = "",
    ) -> None:
        if payload not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            raise ValueError(f"not an aws-chunked payload: {payload!r}")
        self._signed = payload != STREAMING_UNSIGNED_TRAILER
        if self._signed and (signing_key is None or seed_signature is None):
            raise ValueError("signed aws-chunked bodies need the signing key and seed signature")
        self._has_trailers = payload != STREAMING_SIGNED
        if trailer_names and not self._has_trailers:
            raise S3Error("InvalidRequest", f"x-amz-trailer needs a *-TRAILER payload: {payload}")
        self._next_piece = next_piece
        self._decoded_length = decoded_length
        self._trailer_names = frozenset(trailer_names)
        self._key = signing_key or b""
        self._previous_signature = seed_signature or ""
        self._sts_prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n"
        self._trailer_sts_prefix = f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n"
        self._buf = bytearray()
        self._eof = False
        self._chunk_left = 0  # unsigned chunk data still to pass on
        self._chunk_number = 0
        self._last_chunk_size: int | None = None
        self._decoded = 0
        self._done = False
        self.trailers: dict[str, str] = {}

    async def read_piece(self) -> bytes:
        """The next piece of decoded data; b"" only at the end, after the final chunk, the
        trailers and their signature are checked and the decoded length matched."""
        while not self._done:
            if self._chunk_left:
                return await self._unsigned_data()
            size, signature = self._chunk_header(await self._line(MAX_CHUNK_HEADER_BYTES))
            if size == 0:
                await self._finish(signature)
                break
            if not self._signed:
                self._chunk_left = size
                continue
            data = await self._take(size)
            self._check_chunk_signature(hashlib.sha256(data).hexdigest(), signature)
            await self._crlf()
            self._decoded += size
            return data
        return b""

    # --- framing ---

    def _chunk_header(self, line: bytes) -> tuple[int, bytes]:
        self._chunk_number += 1
        size_field, _, params = line.partition(b";")
        if not _CHUNK_SIZE.fullmatch(size_field):
            raise _incomplete(f"Invalid chunk header: {line[:80]!r}")
        size = int(size_field, 16)
        if size > MAX_CHUNK_BYTES:
            raise S3Error(
                "InvalidRequest",
                f"Chunk {self._chunk_number} holds {size} bytes; this server accepts "
                f"aws-chunked chunks of up to {MAX_CHUNK_BYTES} bytes.",
            )
        previous, self._last_chunk_size = self._last_chunk_size, size
        if size and previous is not None and previous < MIN_CHUNK_BYTES:
            raise S3Error(
                _code("InvalidChunkSizeError", "InvalidRequest"),
                "Only the last chunk is allowed to have a size less than 8192 bytes",
                extra={"Chunk": str(self._chunk_number - 1), "BadChunkSize": str(previous)},
            )
        if self._decoded_length is not None and self._decoded + size > self._decoded_length:
            raise self._length_error(self._decoded + size)
        signature = b""
        if self._signed:
            name, _, signature = params.partition(b"=")
            if not params:
                raise _incomplete("Missing chunk-signature in a chunk header")
            if name.strip() != b"chunk-signature" or not _SIGNATURE.fullmatch(signature):
                raise S3Error("SignatureDoesNotMatch")
        return size, signature

    async def _unsigned_data(self) -> bytes:
        """Up to the rest of an unsigned chunk; a piece that fits whole is passed on uncopied."""
        data = None
        if not self._buf:
            piece = b"" if self._eof else await self._next_piece()
            if not piece:
                self._eof = True
                raise _incomplete()
            if len(piece) <= self._chunk_left:
                data = piece
            else:
                self._buf += piece
        if data is None:
            with memoryview(self._buf) as view:
                data = bytes(view[: self._chunk_left])
            del self._buf[: len(data)]
        self._chunk_left -= len(data)
        self._decoded += len(data)
        if not self._chunk_left:
            await self._crlf()
        return data

    async def _finish(self, signature: bytes) -> None:
        """The size-0 chunk: its signature, the length, the trailers, then nothing more."""
        if self._signed:
            self._check_chunk_signature(EMPTY_SHA256, signature)
        if self._decoded_length is not None and self._decoded != self._decoded_length:
            raise self._length_error(self._decoded)
        if self._has_trailers:
            await self._read_trailers()
        elif await self._line_or_eof(2) not in (b"", None):
            raise _incomplete("Expected CRLF after the final chunk")
        if self._buf or await self._fill():  # one look, so that junk is never accumulated
            raise S3Error("InvalidRequest", "Data after the end of the aws-chunked body.")
        self._done = True

    async def _read_trailers(self) -> None:
        """``name:value`` lines up to an empty line (or the end of the body, which Swift's
        s3api also accepts in its place)."""
        received: dict[str, str] = {}
        budget = MAX_TRAILER_BYTES
        while (line := await self._line_or_eof(budget)) is not None and line:
            budget -= len(line) + 2
            if budget < 0:
                raise _malformed_trailer(f"more than {MAX_TRAILER_BYTES} bytes of trailers")
            name, colon, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if not colon or not _TRAILER_NAME.fullmatch(name) or name in received:
                raise _malformed_trailer(f"bad trailer line {line[:80]!r}")
            received[name] = value.strip()
        signature = received.pop(TRAILER_SIGNATURE, None)
        if set(received) != self._trailer_names:
            raise _malformed_trailer(
                f"trailers {sorted(received)} but x-amz-trailer declared "
                f"{sorted(self._trailer_names)}"
            )
        if self._signed:
            if signature is None:
                raise _incomplete("Missing x-amz-trailer-signature")
            self._check_trailer_signature(received, signature)
        elif signature is not None:
            raise _malformed_trailer("x-amz-trailer-signature in an unsigned payload")
        self.trailers = received

    # --- signatures ---

    def _check_chunk_signature(self, data_sha256: str, signature: bytes) -> None:
        to_sign = f"{self._sts_prefix}{self._previous_signature}\n{EMPTY_SHA256}\n{data_sha256}"
        self._check(to_sign, signature.decode("ascii").lower())

    def _check_trailer_signature(self, trailers: dict[str, str], signature: str) -> None:
        """AWS signs the trailer lines as ``name:value\\n``, sorted by name."""
        canonical = "".join(f"{name}:{trailers[name]}\n" for name in sorted(trailers)) or "\n"
        digest = hashlib.sha256(canonical.encode("latin-1")).hexdigest()
        to_sign = f"{self._trailer_sts_prefix}{self._previous_signature}\n{digest}"
        if not _SIGNATURE.fullmatch(signature.encode("latin-1")):
            raise S3Error("SignatureDoesNotMatch")
        self._check(to_sign, signature.lower())

    def _check(self, to_sign: str, signature: str) -> None:
        expected = hmac.digest(self._key, to_sign.encode(), "sha256").hex()
        if not hmac.compare_digest(expected, signature):
            raise S3Error("SignatureDoesNotMatch", extra={"StringToSign": to_sign})
        self._previous_signature = signature

    def _length_error(self, provided: int) -> S3Error:
        return S3Error(
            "IncompleteBody",
            "The decoded body does not hold the x-amz-decoded-content-length bytes declared.",
            extra={
                "NumberBytesExpected": str(self._decoded_length),
                "NumberBytesProvided": str(provided),
            },
        )

    # --- the raw input ---

    async def _fill(self) -> bool:
        if self._eof:
            return False
        piece = await self._next_piece()
        if not piece:
            self._eof = True
            return False
        self._buf += piece
        return True

    async def _line(self, limit: int) -> bytes:
        line = await self._line_or_eof(limit)
        if line is None:
            raise _incomplete()
        return line

    async def _line_or_eof(self, limit: int) -> bytes | None:
        """The next CRLF-terminated line without its CRLF; None at a clean end of the body."""
        start = 0
        while (end := self._buf.find(b"\r\n", start)) < 0:
            if len(self._buf) > limit:
                raise _incomplete("A chunk header or trailer line is too long")
            start = max(0, len(self._buf) - 1)
            if not await self._fill():
                if self._buf:
                    raise _incomplete()
                return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    async def _take(self, size: int) -> bytes:
        """Exactly ``size`` bytes, copied once: pieces are gathered and joined, not appended
        to the buffer (which would copy a megabyte chunk twice more)."""
        if len(self._buf) >= size:
            with memoryview(self._buf) as view:
                data = bytes(view[:size])
            del self._buf[:size]
            return data
        parts: list[bytes | bytearray | memoryview] = [self._buf]  # handed over, not copied
        have = len(self._buf)
        self._buf = bytearray()
        while have < size:
            piece = b"" if self._eof else await self._next_piece()
            if not piece:
                self._eof = True
                raise _incomplete()
            need = size - have
            if len(piece) > need:
                view = memoryview(piece)
                parts.append(view[:need])
                self._buf += view[need:]
            else:
                parts.append(piece)
            have += min(len(piece), need)
        return b"".join(parts)

    async def _crlf(self) -> None:
        if await self._take(2) != b"\r\n":
            raise _incomplete("Expected CRLF after a chunk's data")
