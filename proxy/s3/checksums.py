"""S3's additional checksums and Content-MD5: which one a write asks for, computing it as the
body passes, and the errors S3 answers when it is malformed or does not match.

A PUT or UploadPart names at most one checksum, either as a header carrying its value
(``x-amz-checksum-crc32: <base64>``) or in ``x-amz-trailer`` (the value then comes after an
aws-chunked body).  ``x-amz-sdk-checksum-algorithm`` only names the algorithm the SDK used and
must agree.  Values are the base64 of the big-endian digest; S3 refuses a value that is not the
canonical base64 of a digest of the right length (``y/Q5Jh==`` for CRC32 decodes, but its
padding bits are not zero: InvalidRequest), so ``decode_digest`` is strict in the same way.

The CRCs come from awscrt (hardware CRC instructions; botocore uses the same library) and the
SHAs from hashlib.  ``ChecksumTap`` sits on the decoded body stream so that a mismatch is found
before the proxy commits the object: the caller verifies after the last piece and before it
lets the last backend write finish.

Multipart objects have a checksum of their own (``x-amz-checksum-type``): COMPOSITE, the
checksum of the concatenated part digests with ``-N`` appended, or FULL_OBJECT, the CRC of the
whole object, combined from the part CRCs and sizes without reading the data again.  The
messages are AWS's, as Swift's s3api tests (run against AWS) record them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from awscrt import checksums as crt

from .errors import S3Error

ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
DIGEST_BYTES: dict[str, int] = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
HEADER_PREFIX = "x-amz-checksum-"
# x-amz-checksum-* names that are not checksum values.
_NOT_VALUES = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})

COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"
# Which multipart checksum types each algorithm allows; the first is S3's default.
MULTIPART_TYPES: dict[str, tuple[str, ...]] = {
    "CRC32": (COMPOSITE, FULL_OBJECT),
    "CRC32C": (COMPOSITE, FULL_OBJECT),
    "CRC64NVME": (FULL_OBJECT,),
    "SHA1": (COMPOSITE,),
    "SHA256": (COMPOSITE,),
}

_UNSUPPORTED = (
    "Checksum algorithm provided is unsupported. Please try again with any of the valid types: "
    f"[{', '.join(ALGORITHMS)}]"
)
_SINGLE = "Expecting a single x-amz-checksum- header"
_SINGLE_TYPE = _SINGLE + ". Multiple checksum Types are not allowed."


def header_name(algorithm: str) -> str:
    """``CRC32`` → ``x-amz-checksum-crc32``."""
    return HEADER_PREFIX + algorithm.lower()


HEADER_NAMES: dict[str, str] = {header_name(a): a for a in ALGORITHMS}  # header → algorithm


def algorithm_of_header(name: str) -> str | None:
    """``x-amz-checksum-crc32`` (any case) → ``CRC32``; None for any other name."""
    return HEADER_NAMES.get(name.strip().lower())


# --- computing --------------------------------------------------------------------------------


class Checksum(Protocol):
    algorithm: str

    def update(self, data: bytes | bytearray | memoryview) -> None: ...
    def digest(self) -> bytes: ...
    def b64(self) -> str: ...


class _Crc:
    """A running CRC: awscrt takes the previous value, so the state is one integer."""

    __slots__ = ("_function", "_width", "algorithm", "value")

    def __init__(self, algorithm: str, function: Callable[[bytes, int], int], width: int) -> None:
        self.algorithm = algorithm
        self._function = function
        self._width = width
        self.value = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.value = self._function(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self._width, "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _Hash:
    __slots__ = ("_hash", "algorithm")

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm.lower())

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


_CRCS: dict[str, tuple[Callable[[bytes, int], int], Callable[[int, int, int], int], int]] = {
    "CRC32": (crt.crc32, crt.combine_crc32, 4),
    "CRC32C": (crt.crc32c, crt.combine_crc32c, 4),
    "CRC64NVME": (crt.crc64nvme, crt.combine_crc64nvme, 8),
}


def new_checksum(algorithm: str) -> Checksum:
    """An incremental checksum: ``update(bytes)``, then ``digest()`` / ``b64()`` (as S3 prints
    it).  ``algorithm`` is one of ALGORITHMS (upper case); anything else is a KeyError."""
    if algorithm in _CRCS:
        function, _, width = _CRCS[algorithm]
        return _Crc(algorithm, function, width)
    if algorithm in ("SHA1", "SHA256"):
        return _Hash(algorithm)
    raise KeyError(algorithm)


def decode_digest(algorithm: str, value: str | None) -> bytes | None:
    """The digest a base64 value holds, or None unless it is exactly the canonical base64 of
    ``DIGEST_BYTES[algorithm]`` bytes (what S3 accepts; anything else it calls invalid)."""
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != DIGEST_BYTES[algorithm] or base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


# --- what a request asks for ------------------------------------------------------------------


class RequestedChecksum(NamedTuple):
    algorithm: str
    expected_b64: str | None  # None: the value comes in the trailer
    from_trailer: bool


def requested_checksum(headers: Mapping[str, str]) -> RequestedChecksum | None:
    """The checksum a PUT or UploadPart names, or None.  ``headers`` must look names up
    without regard to case (aiohttp's CIMultiDict does; a plain dict must be lower-case).

    Raises InvalidRequest as S3 does: an unknown ``x-amz-checksum-*`` name, two checksums
    (headers, trailers or one of each), an ``x-amz-trailer`` that is not a checksum, a header
    value that is not a well-formed digest, an ``x-amz-sdk-checksum-algorithm`` that disagrees.
    """
    named = [
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower().startswith(HEADER_PREFIX) and name.lower() not in _NOT_VALUES
    ]
    if any(name not in HEADER_NAMES for name, _ in named):
        raise S3Error(
            "InvalidRequest",
            "The algorithm type you specified in x-amz-checksum- header is invalid.",
        )
    if len(named) > 1:
        raise S3Error("InvalidRequest", _SINGLE_TYPE)
    trailers = _declared_trailers(headers.get("x-amz-trailer", ""))
    if named and trailers:
        raise S3Error("InvalidRequest", _SINGLE)  # AWS's message, without the second sentence

    found: RequestedChecksum | None = None
    if named:
        name, value = named[0]
        algorithm = HEADER_NAMES[name]
        value = value.strip()
        if decode_digest(algorithm, value) is None:
            raise S3Error("InvalidRequest", f"Value for {name} header is invalid.")
        found = RequestedChecksum(algorithm, value, False)
    elif trailers:
        found = RequestedChecksum(HEADER_NAMES[trailers[0]], None, True)

    sdk = headers.get("x-amz-sdk-checksum-algorithm", "").strip().upper()
    if sdk:
        if found is None:
            raise S3Error(
                "InvalidRequest",
                "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
                "or x-amz-trailer headers were found.",
            )
        if sdk != found.algorithm:
            raise S3Error(
                "InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid."
            )
    return found


def _declared_trailers(value: str) -> list[str]:
    names = [part.strip().lower() for part in value.strip().rstrip(",").split(",")]
    names = [name for name in names if name]
    if any(name not in HEADER_NAMES for name in names):
        raise S3Error(
            "InvalidRequest", "The value specified in the x-amz-trailer header is not supported"
        )
    if len(names) > 1:
        raise S3Error("InvalidRequest", _SINGLE_TYPE)
    return names


def trailer_digest(algorithm: str, value: str | None) -> bytes:
    """The digest a checksum trailer carries; InvalidRequest (AWS's "trailing header" message)
    if it is missing or malformed."""
    raw = decode_digest(algorithm, (value or "").strip())
    if raw is None:
        raise S3Error(
            "InvalidRequest", f"Value for {header_name(algorithm)} trailing header is invalid."
        )
    return raw


def mismatch(algorithm: str) -> S3Error:
    """The BadDigest S3 answers when a checksum does not match (``The CRC32 you specified...``:
    AWS names the algorithm, not the header)."""
    return S3Error(
        "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
    )


def content_md5_hex(value: str | None) -> str | None:
    """A Content-MD5 header as hex (the ETag the object servers verify), None if there is none
    (S3 takes a blank one for none); InvalidDigest unless it is the base64 of 16 bytes."""
    stripped = (value or "").strip()
    if not stripped:
        return None
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise S3Error(
            "InvalidDigest",
            "The Content-MD5 you specified was invalid.",
            extra={"Content-MD5": stripped},
        )
    return raw.hex()


def content_md5_mismatch(expected_b64: str, calculated_hex: str | None = None) -> S3Error:
    """The BadDigest S3 answers when the body's MD5 is not the Content-MD5 (the object
    servers' 422 for a wrong ETag, translated)."""
    extra = {"ExpectedDigest": expected_b64.strip()}
    if calculated_hex:
        extra["CalculatedDigest"] = base64.b64encode(bytes.fromhex(calculated_hex)).decode()
    return S3Error(
        "BadDigest", "The Content-MD5 you specified did not match what we received.", extra=extra
    )


# --- the body stream --------------------------------------------------------------------------


class ChecksumTap:
    """Wraps ``next_piece`` (decoded body pieces, b"" at the end) and checksums what passes.

    ``algorithms``: every checksum to compute (the requested one, and any the proxy stores
    for itself).  After the last piece, ``verify(requested, trailer_value)`` raises BadDigest
    if the requested value does not match; the caller does that before committing the object,
    and stores ``b64(algorithm)``.
    """

    def __init__(
        self, next_piece: Callable[[], Awaitable[bytes]], algorithms: Iterable[str]
    ) -> None:
        self._next_piece = next_piece
        self.checksums: dict[str, Checksum] = {
            a: new_checksum(a) for a in dict.fromkeys(algorithms)
        }
        self.size_bytes = 0
        self.done = False

    async def next_piece(self) -> bytes:
        piece = await self._next_piece()
        if not piece:
            self.done = True
            return piece
        self.size_bytes += len(piece)
        for checksum in self.checksums.values():
            checksum.update(piece)
        return piece

    def b64(self, algorithm: str) -> str:
        return self.checksums[algorithm].b64()

    def verify(self, requested: RequestedChecksum | None, trailer_value: str | None = None) -> None:
        """Check the requested checksum against the header value, or the trailer's value when
        the request declared it in ``x-amz-trailer``.  Only after the body's end."""
        if not self.done:
            raise RuntimeError("verify before the body's end")
        if requested is None:
            return
        if requested.from_trailer:
            expected = trailer_digest(requested.algorithm, trailer_value)
        else:
            expected = decode_digest(requested.algorithm, requested.expected_b64)
        if self.checksums[requested.algorithm].digest() != expected:
            raise mismatch(requested.algorithm)


# --- multipart --------------------------------------------------------------------------------


class MultipartChecksum(NamedTuple):
    algorithm: str
    type: str  # COMPOSITE or FULL_OBJECT


def multipart_checksum(headers: Mapping[str, str]) -> MultipartChecksum | None:
    """What CreateMultipartUpload asks for (``x-amz-checksum-algorithm`` and
    ``x-amz-checksum-type``), with S3's default type and its refusals."""
    algorithm = headers.get("x-amz-checksum-algorithm", "").strip().upper()
    kind = headers.get("x-amz-checksum-type", "").strip().upper()
    if kind and kind not in (COMPOSITE, FULL_OBJECT):
        raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if not algorithm:
        if kind:
            raise S3Error(
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the "
                "x-amz-checksum-algorithm header.",
            )
        return None
    if algorithm not in MULTIPART_TYPES:
        raise S3Error("InvalidRequest", _UNSUPPORTED)
    allowed = MULTIPART_TYPES[algorithm]
    if kind and kind not in allowed:
        raise S3Error(
            "InvalidRequest",
            f"The {kind} checksum type cannot be used with the {algorithm.lower()} checksum "
            "algorithm.",
        )
    return MultipartChecksum(algorithm, kind or allowed[0])


def composite_b64(algorithm: str, part_digests: Sequence[bytes]) -> str:
    """COMPOSITE: the checksum of the parts' raw digests, concatenated, then ``-N``."""
    checksum = new_checksum(algorithm)
    for digest in part_digests:
        checksum.update(digest)
    return f"{checksum.b64()}-{len(part_digests)}"


def full_object_b64(algorithm: str, parts: Sequence[tuple[bytes, int]]) -> str:
    """FULL_OBJECT: the CRC of the whole object from ``(part digest, part size_bytes)`` pairs,
    combined without the data (only the CRCs can be combined; a SHA is a KeyError)."""
    _, combine, width = _CRCS[algorithm]
    value = 0
    for index, (digest, size_bytes) in enumerate(parts):
        part = int.from_bytes(digest, "big")
        value = part if index == 0 else combine(value, part, size_bytes)
    return base64.b64encode(value.to_bytes(width, "big")).decode("ascii")
