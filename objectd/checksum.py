"""Body checksums: the MD5 the APIs call the ETag, and an xxh3-64 per block.

The per-block checksums let a read verify exactly the blocks it sends, so a ranged GET of a
large object costs one block of extra reading, not the whole body.
"""

from __future__ import annotations

import hashlib
from typing import Any

import xxhash


class BodyDigest:
    """Incremental per-block xxh3-64 of a body as it streams in, and of the whole body either
    its MD5 (``md5=True``) or its xxh3-64 (when the sender's checksum footer brings the MD5:
    objectd/checksum_footer.py)."""

    def __init__(self, block_size_bytes: int, *, md5: bool = True) -> None:
        if block_size_bytes < 1:
            raise ValueError("block_size_bytes must be positive")
        self.block_size_bytes = block_size_bytes
        self.size_bytes = 0
        self.computes_md5 = md5
        self._whole: Any = hashlib.md5(usedforsecurity=False) if md5 else xxhash.xxh3_64()
        self._block = xxhash.xxh3_64()
        self._in_block = 0
        self._hashes: list[int] = []

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self._whole.update(view)
        size = len(view)
        self.size_bytes += size
        if self._in_block + size < self.block_size_bytes:  # the usual case: within a block
            self._block.update(view)
            self._in_block += size
            return
        while view:
            take = min(len(view), self.block_size_bytes - self._in_block)
            self._block.update(view[:take])
            self._in_block += take
            view = view[take:]
            if self._in_block == self.block_size_bytes:
                self._hashes.append(self._block.intdigest())
                self._block.reset()
                self._in_block = 0

    @property
    def etag(self) -> str:
        if not self.computes_md5:
            raise RuntimeError("this digest does not compute the MD5")
        return self._whole.hexdigest()

    @property
    def xxh3_hex(self) -> str:
        """The whole body's xxh3-64, when the MD5 is not computed."""
        if self.computes_md5:
            raise RuntimeError("this digest computes the MD5, not the whole body's xxh3")
        return self._whole.hexdigest()

    def block_hashes(self) -> tuple[int, ...]:
        """Every block's checksum, the last (partial) block included; () for an empty body."""
        if self._in_block:
            return (*self._hashes, self._block.intdigest())
        return tuple(self._hashes)


def block_matches(expected: tuple[int, ...], index: int, data: bytes | memoryview) -> bool:
    return index < len(expected) and xxhash.xxh3_64_intdigest(data) == expected[index]


def blocks_touched(start: int, end: int, block_size_bytes: int) -> range:
    """Indices of the blocks holding bytes [start, end); empty when the range is."""
    if start >= end:
        return range(0)
    return range(start // block_size_bytes, (end - 1) // block_size_bytes + 1)


def check_range(size_bytes: int, start: int, end: int | None) -> tuple[int, int]:
    """[start, end) within a body of size_bytes; end None means to the end."""
    end = size_bytes if end is None else end
    if not 0 <= start <= end <= size_bytes:
        raise ValueError(f"range [{start}, {end}) is outside a body of {size_bytes} bytes")
    return start, end
