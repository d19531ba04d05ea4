"""The checksum footer's wire format, shared by its writer (the proxy) and its reader (the
object server): the proxy's MD5 and xxh3-64 of the object data, after the data, and in
version ``md5+xxh3-64+meta`` sysmeta whose values were known only at the body's end.

Version ``md5+xxh3-64``, named by the ``X-Backend-Checksum-Footer`` request header: the last
``FOOTER_BYTES`` (48) bytes of the PUT body are 32 lowercase hex characters of the MD5 of the
object data, then 16 lowercase hex characters of its xxh3-64 (seed 0).  The proxy computes
the MD5 once instead of every replica doing it; the xxh3, cheap enough to compute on every
replica, checks the proxy → object server hop.  A fixed tail rather than an HTTP trailer
because aiohttp's server parser drops chunked trailers.  Why and the integrity argument:
docs/design/storage.md, "The checksum footer".

Version ``md5+xxh3-64+meta`` (``FOOTER_KIND_META``): the same 48 bytes, then the *meta part*.
The request header ``X-Backend-Footer-Meta`` (``META_HEADER``) declares, before the body, the
names and each value's length in bytes: ``Name=length`` items joined by commas, e.g.
``X-Object-Sysmeta-S3-Checksum-Crc32=8``.  The meta part is the values (UTF-8) in that order,
each exactly its declared length, then 16 lowercase hex characters of the xxh3-64 of those
values: ``meta_part_bytes(layout)`` = the lengths' sum + 16.  Declared lengths, not a
self-describing document: the object server must know how much of the body's end to hold
back before the body starts, and a writer whose values have a fixed length (an S3 checksum's
base64) knows it then too; the names in a header are checked (sysmeta only) before a byte of
the body is sent.  The meta part's own xxh3 checks its hop as the footer's checks the data's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import xxhash

FOOTER_HEADER = "X-Backend-Checksum-Footer"
FOOTER_KIND = "md5+xxh3-64"
FOOTER_KIND_META = "md5+xxh3-64+meta"  # then the meta part
FOOTER_BYTES = 48
META_HEADER = "X-Backend-Footer-Meta"
META_PREFIX = "x-object-sysmeta-"  # the only names a footer may carry
MAX_META_VALUE_BYTES = 8192  # all values together (one alone: the same as a header's value)
META_CHECK_BYTES = 16  # the meta part's xxh3-64, hex
_MD5_HEX = 32
_HEX = frozenset(b"0123456789abcdef")
# RFC 9110 tchar: what a header name is made of (no "=" or ",", so META_HEADER is unambiguous)
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class FooterFormatError(ValueError):
    """The footer is not 48 lowercase hex characters, or its meta part or declaration is not
    what this module describes."""


@dataclass(frozen=True)
class ChecksumFooter:
    md5_hex: str
    xxh3_hex: str


# The late sysmeta's names and each value's length in bytes, in the order the values come.
MetaLayout = tuple[tuple[str, int], ...]


def encode(footer: ChecksumFooter) -> bytes:
    data = (footer.md5_hex + footer.xxh3_hex).encode("ascii")
    if len(data) != FOOTER_BYTES or not _HEX.issuperset(data):
        raise FooterFormatError(f"not a {FOOTER_KIND} footer: {data!r}")
    return data


def decode(data: bytes) -> ChecksumFooter:
    if len(data) != FOOTER_BYTES or not _HEX.issuperset(data):
        raise FooterFormatError(f"not a {FOOTER_KIND} footer: {bytes(data)[:64]!r}")
    text = bytes(data).decode("ascii")
    return ChecksumFooter(md5_hex=text[:_MD5_HEX], xxh3_hex=text[_MD5_HEX:])


def meta_part_bytes(layout: MetaLayout) -> int:
    """How many bytes follow the 48 in a ``md5+xxh3-64+meta`` body."""
    return sum(length for _, length in layout) + META_CHECK_BYTES


def encode_meta_header(layout: MetaLayout) -> str:
    """``META_HEADER``'s value for ``layout`` (FooterFormatError if it is not a valid one)."""
    _check_layout(layout)
    return ",".join(f"{name}={length}" for name, length in layout)


def decode_meta_header(text: str) -> MetaLayout:
    layout = []
    for item in text.split(","):
        name, equals, length = item.strip().partition("=")
        if not equals or not length.isascii() or not length.isdigit() or len(length) > 5:
            raise FooterFormatError(f"{META_HEADER}: not a name=length item: {item[:80]!r}")
        layout.append((name, int(length)))
    result = tuple(layout)
    _check_layout(result)
    return result


def encode_meta(layout: MetaLayout, values: Mapping[str, str]) -> bytes:
    """The meta part: ``values`` (one for each name of ``layout``, no other) in its order."""
    if len(values) != len(layout):
        raise FooterFormatError(f"values for {sorted(values)}, declared {[n for n, _ in layout]}")
    parts = []
    for name, length in layout:
        value = values.get(name)
        if not isinstance(value, str):
            raise FooterFormatError(f"no value for {name}: {value!r}")
        data = value.encode("utf-8") if _is_header_value(value) else b""
        if len(data) != length:
            raise FooterFormatError(f"{name}: {len(data)} bytes, declared {length}: {value!r}")
        parts.append(data)
    values_data = b"".join(parts)
    return values_data + xxhash.xxh3_64(values_data).hexdigest().encode("ascii")


def decode_meta(layout: MetaLayout, data: bytes) -> dict[str, str]:
    """The values of a meta part, by name; FooterFormatError if it is not one for ``layout``
    (its length, its xxh3-64, a value that is not UTF-8 or has a control character)."""
    data = bytes(data)
    if len(data) != meta_part_bytes(layout):
        raise FooterFormatError(f"meta part of {len(data)} bytes for {meta_part_bytes(layout)}")
    values_data, check = data[:-META_CHECK_BYTES], data[-META_CHECK_BYTES:]
    if check != xxhash.xxh3_64(values_data).hexdigest().encode("ascii"):
        raise FooterFormatError(f"meta part xxh3-64 {check[:16]!r} does not match its values")
    values, at = {}, 0
    for name, length in layout:
        try:
            value = values_data[at : at + length].decode("utf-8")
        except UnicodeDecodeError:
            raise FooterFormatError(f"{name}: the value is not UTF-8") from None
        if not _is_header_value(value):
            raise FooterFormatError(f"{name}: a control character in {value[:80]!r}")
        values[name] = value
        at += length
    return values


def _check_layout(layout: MetaLayout) -> None:
    """Sysmeta names only, each once, each value at least a byte, all within the limit."""
    if not layout:
        raise FooterFormatError(f"{META_HEADER} declares nothing")
    seen = set()
    for name, length in layout:
        lower = name.lower()
        if not lower.startswith(META_PREFIX) or lower == META_PREFIX:
            raise FooterFormatError(f"{META_HEADER}: {name[:80]!r} is not an object sysmeta name")
        if not _TCHAR.issuperset(name):
            raise FooterFormatError(f"{META_HEADER}: {name[:80]!r} is not a header name")
        if lower in seen:
            raise FooterFormatError(f"{META_HEADER}: {name!r} twice")
        seen.add(lower)
        if not isinstance(length, int) or length < 1:
            raise FooterFormatError(f"{META_HEADER}: {name}'s length {length!r} is not >= 1")
    if meta_part_bytes(layout) - META_CHECK_BYTES > MAX_META_VALUE_BYTES:
        raise FooterFormatError(f"{META_HEADER}: values over {MAX_META_VALUE_BYTES} bytes")


def _is_header_value(value: str) -> bool:
    """What a GET can answer as a header's value: no control characters (CR, LF, NUL...), no
    lone surrogate, no space at either end (an HTTP parser would strip it)."""
    if value != value.strip(" \t"):
        return False
    return not any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value)
