"""ObjectWrite: a PUT's body as it streams in, then its commit.

The checks both engines share live here (Content-Length, ETag, stored headers); where the
bytes go is the subclass's business.  A write that fails any check stores nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import TracebackType

from service.timestamp import Timestamp

from .checksum import BodyDigest
from .errors import EtagMismatch, SizeMismatch
from .metadata import BodyLocation, ObjectMetadata
from .versions import check_delete_at, check_user_meta


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


class ObjectWrite(abc.ABC):
    """Call ``write`` per chunk, then ``commit`` (or ``abort``); usable as ``async with``."""

    def __init__(
        self,
        name: str,
        timestamp: Timestamp,
        *,
        content_length: int | None,
        inline_max_bytes: int,
        block_size_bytes: int,
    ) -> None:
        if content_length is not None and content_length < 0:
            raise ValueError(f"content_length {content_length} is negative")
        self.name = name
        self.timestamp = timestamp
        self.content_length = content_length
        self.inline_max_bytes = inline_max_bytes
        self._digest = BodyDigest(block_size_bytes)
        self._state = "open"  # then "committing" and "done", or "aborted"

    @property
    def etag(self) -> str:
        """MD5 hex of the bytes received so far."""
        return self._digest.etag

    @property
    def size_bytes(self) -> int:
        return self._digest.size_bytes

    @property
    def body_location(self) -> BodyLocation:
        return "file" if self.size_bytes > self.inline_max_bytes else "inline"

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take the next chunk; SizeMismatch (and the write aborted) past Content-Length."""
        self._check_open()
        if not chunk:
            return
        received = self.size_bytes + len(chunk)
        if self.content_length is not None and received > self.content_length:
            await self.abort()
            raise SizeMismatch(self.content_length, received)
        data = bytes(chunk)  # the caller may reuse its buffer
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
        checked_meta = check_user_meta(user_meta)
        check_delete_at(delete_at)
        if self.content_length is not None and self.size_bytes != self.content_length:
            raise SizeMismatch(self.content_length, self.size_bytes)
        etag = self._digest.etag
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

    @abc.abstractmethod
    async def _received(self, data: bytes) -> None:
        """Keep a chunk (already counted and hashed)."""

    @abc.abstractmethod
    async def _store(self, meta: ObjectMetadata) -> ObjectMetadata:
        """Store the version; on any failure leave nothing behind and raise."""

    @abc.abstractmethod
    async def _discard(self) -> None:
        """Forget what was received."""
