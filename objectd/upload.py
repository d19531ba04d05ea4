"""ObjectWrite: a PUT's body as it streams in, then its commit.

The checks both engines share live here (Content-Length, ETag, the checksum footer, stored
headers); where the bytes go is the subclass's business.  A write that fails any check
stores nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import TracebackType

from service.timestamp import Timestamp

from . import checksum_footer
from .checksum import BodyDigest
from .checksum_footer import FOOTER_BYTES, FooterHoldback, MetaLayout
from .errors import ChecksumFooterMismatch, ChecksumFooterMissing, EtagMismatch, SizeMismatch
from .metadata import BodyLocation, ObjectMetadata
from .versions import check_delete_at, check_user_meta


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


class ObjectWrite(abc.ABC):
    """Call ``write`` per chunk, then ``commit`` (or ``abort``); usable as ``async with``.

    ``checksum_footer``: the stream ends with the sender's 48-byte footer (MD5 and xxh3-64
    of the object data, objectd/checksum_footer.py), which is held back, not stored; the
    MD5 is not computed here but taken from the footer once the data's xxh3-64 matches it.
    ``expect_footer_meta``, before the first chunk: the footer is followed by a meta part
    (late sysmeta, stored with the object's other headers at commit).  ``content_length`` is
    the object data's length either way, without the footer.
    """

    def __init__(
        self,
        name: str,
        timestamp: Timestamp,
        *,
        content_length: int | None,
        inline_max_bytes: int,
        block_size_bytes: int,
        checksum_footer: bool = False,
    ) -> None:
        if content_length is not None and content_length < 0:
            raise ValueError(f"content_length {content_length} is negative")
        self.name = name
        self.timestamp = timestamp
        self.content_length = content_length
        self.inline_max_bytes = inline_max_bytes
        self._digest = BodyDigest(block_size_bytes, md5=not checksum_footer)
        self._holdback = FooterHoldback() if checksum_footer else None
        self._footer: bytes | None = None  # the footer's bytes, once the stream has ended
        self._meta_layout: MetaLayout | None = None  # what a meta part after it declares
        self._stream_bytes = 0  # object data and any footer bytes held back
        self._state = "open"  # then "committing" and "done", or "aborted"

    @property
    def etag(self) -> str:
        """MD5 hex of the bytes received so far (RuntimeError with a checksum footer)."""
        return self._digest.etag

    @property
    def size_bytes(self) -> int:
        """Object data received so far (a checksum footer's bytes not counted)."""
        return self._digest.size_bytes

    @property
    def footer_bytes(self) -> int:
        """How many bytes the stream carries besides the object data."""
        return 0 if self._holdback is None else self._holdback.tail_bytes

    def expect_footer_meta(self, layout: MetaLayout) -> None:
        """The checksum footer is followed by a meta part of ``layout`` (version
        ``md5+xxh3-64+meta``): its sysmeta is stored with the object.  Before any chunk."""
        if self._holdback is None or self._stream_bytes or self._meta_layout is not None:
            raise RuntimeError("a footer meta part needs a checksum footer and no chunk yet")
        self._meta_layout = layout
        self._holdback = FooterHoldback(FOOTER_BYTES + checksum_footer.meta_part_bytes(layout))

    @property
    def body_location(self) -> BodyLocation:
        return "file" if self.size_bytes > self.inline_max_bytes else "inline"

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take the next chunk; SizeMismatch (and the write aborted) past Content-Length.

        A ``bytes`` chunk is kept as it is (it cannot change); any other is copied, since
        the caller may reuse its buffer.
        """
        self._check_open()
        if not chunk:
            return
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        self._stream_bytes += len(chunk)
        footer_bytes = self.footer_bytes
        if (
            self.content_length is not None
            and self._stream_bytes > self.content_length + footer_bytes
        ):
            await self.abort()
            raise SizeMismatch(self.content_length, self._stream_bytes - footer_bytes)
        if self._holdback is None:
            await self._take(chunk)
        else:
            for piece in self._holdback.feed(chunk):
                await self._take(piece)

    async def _take(self, data: bytes | memoryview) -> None:
        self._digest.update(data)
        try:
            await self._received(data)
        except BaseException:
            await self.abort()
            raise

    async def commit(
        self,
        content_type: str,
        user_meta: Mapping[str, str] | None = None,
        expected_etag: str | None = None,
        *,
        delete_at: int | None = None,
    ) -> ObjectMetadata:
        """Make the version durable and current; ObjectConflict if one as new is stored."""
        self._check_open()
        try:
            await self._end_of_stream()
            meta = self._checked_metadata(content_type, user_meta, expected_etag, delete_at)
        except BaseException:
            await self.abort()
            raise
        self._state = "committing"
        try:
            return await self._store(meta)
        finally:
            self._state = "done"

    async def abort(self) -> None:
        """Discard what was received (idempotent; a no-op after commit)."""
        if self._state != "open":
            return
        self._state = "aborted"
        await self._discard()

    async def __aenter__(self) -> ObjectWrite:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.abort()

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"this object write is {self._state}")

    def _checked_metadata(
        self,
        content_type: str,
        user_meta: Mapping[str, str] | None,
        expected_etag: str | None,
        delete_at: int | None,
    ) -> ObjectMetadata:
        if not isinstance(content_type, str):
            raise TypeError("content_type must be a str")
        if self.content_length is not None and self.size_bytes != self.content_length:
            raise SizeMismatch(self.content_length, self.size_bytes)
        if self._holdback is None:
            etag = self._digest.etag
        else:
            etag = self._footer_md5()
            if self._meta_layout is not None:
                user_meta = {**(user_meta or {}), **self._footer_sysmeta(self._meta_layout)}
        checked_meta = check_user_meta(user_meta)
        check_delete_at(delete_at)
        if expected_etag is not None and normalize_etag(expected_etag) != etag:
            raise EtagMismatch(normalize_etag(expected_etag), etag)
        return ObjectMetadata(
            name=self.name,
            timestamp=self.timestamp,
            meta_timestamp=self.timestamp,
            content_type=content_type,
            etag=etag,
            size_bytes=self.size_bytes,
            user_meta=checked_meta,
            delete_at=delete_at,
            body=self.body_location,
            block_size_bytes=self._digest.block_size_bytes,
            block_hashes=self._digest.block_hashes(),
        )

    async def _end_of_stream(self) -> None:
        """Take the object data a checksum footer's holdback still has, keep the footer."""
        if self._holdback is None:
            return
        rest, self._footer = self._holdback.end()
        for piece in rest:
            await self._take(piece)

    def _footer_md5(self) -> str:
        """The footer's MD5, once its xxh3-64 vouches that the data arrived as sent."""
        if self._footer is None:
            raise ChecksumFooterMissing(
                f"the body ended after {self._stream_bytes} bytes, "
                f"before its {self.footer_bytes}-byte checksum footer"
            )
        try:
            footer = checksum_footer.decode(self._footer[:FOOTER_BYTES])
        except checksum_footer.FooterFormatError as exc:
            raise ChecksumFooterMismatch(str(exc)) from None
        xxh3_hex = self._digest.xxh3_hex
        if footer.xxh3_hex != xxh3_hex:
            raise ChecksumFooterMismatch(
                f"body xxh3-64 {xxh3_hex} does not match the checksum footer's "
                f"{footer.xxh3_hex}: damaged on its way from the proxy"
            )
        return footer.md5_hex

    def _footer_sysmeta(self, layout: MetaLayout) -> dict[str, str]:
        """The meta part's sysmeta (names title-cased, as stored_headers keeps a header's),
        once its own xxh3-64 vouches for it: ChecksumFooterMismatch if it does not."""
        assert self._footer is not None
        try:
            values = checksum_footer.decode_meta(layout, self._footer[FOOTER_BYTES:])
        except checksum_footer.FooterFormatError as exc:
            raise ChecksumFooterMismatch(str(exc)) from None
        return {name.title(): value for name, value in values.items()}

    @abc.abstractmethod
    async def _received(self, data: bytes | memoryview) -> None:
        """Keep a chunk (already counted and hashed; immutable: a view of ``bytes``)."""

    @abc.abstractmethod
    async def _store(self, meta: ObjectMetadata) -> ObjectMetadata:
        """Store the version; on any failure leave nothing behind and raise."""

    @abc.abstractmethod
    async def _discard(self) -> None:
        """Forget what was received."""
