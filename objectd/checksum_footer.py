"""Reading the checksum footer off a PUT body as it streams (format: service/checksum_footer).

The object server holds back the body's last FOOTER_BYTES, which are the footer, not object
data.  Why and the integrity argument: docs/design/storage.md, "The checksum footer".
"""

from __future__ import annotations

from service.checksum_footer import (
    FOOTER_BYTES,
    FOOTER_HEADER,
    FOOTER_KIND,
    ChecksumFooter,
    FooterFormatError,
    decode,
    encode,
)

__all__ = [
    "FOOTER_BYTES",
    "FOOTER_HEADER",
    "FOOTER_KIND",
    "ChecksumFooter",
    "FooterFormatError",
    "FooterHoldback",
    "decode",
    "encode",
]


class FooterHoldback:
    """Splits a stream into the object data and its last FOOTER_BYTES, chunk by chunk.

    The footer is only known to be the footer when the stream ends, so the chunks that hold
    the last 48 bytes seen are held back, whole; a chunk is released once the chunks after
    it hold 48 bytes.  Nothing is copied but the footer, and each chunk is released as one
    piece (a chunk cut in two would cost a second hashing and buffering call per chunk).
    """

    def __init__(self) -> None:
        self._held: list[bytes | memoryview] = []
        self.held_bytes = 0

    def feed(self, chunk: bytes | memoryview) -> list[bytes | memoryview]:
        """The object data this chunk releases (earlier chunks, usually one), in order."""
        held = self._held
        held.append(chunk)
        self.held_bytes += len(chunk)
        released = []
        while self.held_bytes - len(held[0]) >= FOOTER_BYTES:
            first = held.pop(0)
            self.held_bytes -= len(first)
            released.append(first)
        return released

    def end(self) -> tuple[list[memoryview], bytes | None]:
        """At the end of the stream: the rest of the object data, and the footer (None, and
        no data, if the stream was shorter than a footer)."""
        if self.held_bytes < FOOTER_BYTES:
            return [], None
        data_bytes = self.held_bytes - FOOTER_BYTES
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
