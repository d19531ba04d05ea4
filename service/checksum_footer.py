"""The checksum footer's wire format, shared by its writer (the proxy) and its reader (the
object server): the proxy's MD5 and xxh3-64 of the object data, after the data.

Wire format (version ``md5+xxh3-64``, named by the ``X-Backend-Checksum-Footer`` request
header): the last ``FOOTER_BYTES`` (48) bytes of the PUT body are 32 lowercase hex characters
of the MD5 of the object data, then 16 lowercase hex characters of its xxh3-64 (seed 0).  The
proxy computes the MD5 once instead of every replica doing it; the xxh3, cheap enough to
compute on every replica, checks the proxy → object server hop.  A fixed tail rather than an
HTTP trailer because aiohttp's server parser drops chunked trailers.  Why and the integrity
argument: docs/design/storage.md, "The checksum footer".
"""

from __future__ import annotations

from dataclasses import dataclass

FOOTER_HEADER = "X-Backend-Checksum-Footer"
FOOTER_KIND = "md5+xxh3-64"  # the only version so far
FOOTER_BYTES = 48
_MD5_HEX = 32
_HEX = frozenset(b"0123456789abcdef")


class FooterFormatError(ValueError):
    """The footer is not 48 lowercase hex characters."""


@dataclass(frozen=True)
class ChecksumFooter:
    md5_hex: str
    xxh3_hex: str


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
