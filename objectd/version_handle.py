"""OpenVersion: one version of an object pinned for a GET, so that it can be read to the end.

``get()`` then ``read(meta)`` looks the body up again when the read starts: an overwrite or a
DELETE committed in between has removed it, and the GET of an object that exists would fail.
An OpenVersion holds the body as it was when the metadata was read — an inline body's bytes
(read in the same transaction), a data file's open fd (the inode outlives its unlink) — so
every ``read`` of it, multipart ranges included, serves that version.  ``close`` (or ``with``)
when the answer is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import TracebackType

from .checksum import check_range
from .metadata import ObjectMetadata

Reader = Callable[[int, int], AsyncIterator[bytes]]  # (start, end) -> verified chunks


class OpenVersion:
    def __init__(
        self, meta: ObjectMetadata, reader: Reader, close: Callable[[], None] | None = None
    ) -> None:
        self.meta = meta
        self._reader = reader
        self._close = close

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the body, each block verified before any of it is yielded.

        Raises (while iterating) Quarantined if the body is corrupt.
        """
        start, end = check_range(self.meta.size_bytes, start, end)
        if self._reader is None:
            raise RuntimeError("this version is closed")
        if start == end:
            return
        async for chunk in self._reader(start, end):
            yield chunk

    def close(self) -> None:
        self._reader = None  # type: ignore[assignment]
        close, self._close = self._close, None
        if close is not None:
            close()

    def __enter__(self) -> OpenVersion:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
