"""Reading the checksum footer off a PUT body as it streams (format: service/checksum_footer).

The object server holds back the body's last FOOTER_BYTES (and, in version
``md5+xxh3-64+meta``, the meta part after them), which are the footer, not object data.  Why
and the integrity argument: docs/design/storage.md, "The checksum footer".
"""

from __future__ import annotations

from service.checksum_footer import (
    FOOTER_BYTES,
    FOOTER_HEADER,
    FOOTER_KIND,
    FOOTER_KIND_META,
    META_HEADER,
    ChecksumFooter,
    FooterFormatError,
    MetaLayout,
    decode,
    decode_meta,
    decode_meta_header,
    encode,
    encode_meta,
    encode_meta_header,
    meta_part_bytes,
)

__all__ = [
    "FOOTER_BYTES",
    "FOOTER_HEADER",
    "FOOTER_KIND",
    "FOOTER_KIND_META",
    "META_HEADER",
    "ChecksumFooter",
    "FooterFormatError",
    "FooterHoldback",
    "MetaLayout",
    "decode",
    "decode_meta",
    "decode_meta_header",
    "encode",
    "encode_meta",
    "encode_meta_header",
    "meta_part_bytes",
]


class FooterHoldback:
    """Splits a stream into the object data and its last ``tail_bytes``, chunk by chunk (the
    footer's 48, or those and a meta part's).

    The tail is only known to be the tail when the stream ends, so the chunks that hold the
    last ``tail_bytes`` seen are held back, whole; a chunk is released once the chunks after
    it hold ``tail_bytes``.  Nothing is copied but the tail, and each chunk is released as
    one piece (a chunk cut in two would cost a second hashing and buffering call per chunk).
    """

    def __init__(self, tail_bytes: int = FOOTER_BYTES) -> None:
        if tail_bytes < 1:
            raise ValueError(f"tail_bytes {tail_bytes} is not positive")
        self.tail_bytes = tail_bytes
        self._held: list[bytes | memoryview] = []
        self.held_bytes = 0

    def feed(self, chunk: bytes | memoryview) -> list[bytes | memoryview]:
        """The object data this chunk releases (earlier chunks, usually one), in order."""
        held, tail_bytes = self._held, self.tail_bytes
        held.append(chunk)
        self.held_bytes += len(chunk)
        released = []
        while self.held_bytes - len(held[0]) >= tail_bytes:
            first = held.pop(0)
            self.held_bytes -= len(first)
            released.append(first)
        return released

    def end(self) -> tuple[list[memoryview], bytes | None]:
        """At the end of the stream: the rest of the object data, and the tail (None, and
        no data, if the stream was shorter than the tail)."""
        if self.held_bytes < self.tail_bytes:
            return [], None
        data_bytes = self.held_bytes - self.tail_bytes
        released, footer = [], []
        for piece in self._held:
            view = memoryview(piece)
            take = min(len(view), data_bytes)
            data_bytes -= take
            if take:
                released.append(view[:take])
            if take < len(view):
                footer.append(view[take:])
        self._held, self.held_bytes = [], 0
        return released, b"".join(footer)
