"""What the object auditor reads and checks, in blocking functions for worker threads.

The auditor walks a device's ``index`` table (objectd/layout.py: keys sort partition by
partition, then by suffix and name hash) in pages, each read in its own short transaction
so that no read transaction stays open while bodies are verified (an old snapshot pins
pages and the file only grows).  A body is then checked as a GET checks it (objectd/reader.py):
its length against the stored size, and every block against its xxh3-64
(``objectd.checksum.block_matches``); a data file must also exist.  Nothing here writes:
a failing body is quarantined by the caller, through objectd's own ``quarantine``.

A version may be replaced or deleted between the page that listed it and the check: then
there is nothing left to check (``GONE``), and a missing body is only a problem while its
index entry remains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from objectd import index, layout, reader
from objectd.checksum import block_matches
from objectd.device import Device
from objectd.metadata import ObjectMetadata, decode

GONE = "gone"  # a check's outcome: the version was replaced or deleted meanwhile
UNREADABLE = "unreadable"  # ...: its metadata no longer decodes (counted as an error)


@dataclass(frozen=True, slots=True)
class Listed:
    """One version with a body, as a page of the index listed it."""

    key: bytes
    meta: ObjectMetadata  # with ``device`` and ``partition`` set, as the engine sets them
    value: bytes = b""  # the index value it was decoded from (b"": unknown)

    @property
    def digest(self) -> bytes:
        return layout.key_name_hash(self.key)


@dataclass
class Page:
    versions: list[Listed]  # tombstones left out: they have no body to audit
    last_key: bytes | None  # where the next page starts after; None: the index ended
    undecodable: list[bytes] = field(default_factory=list)  # keys of metadata we cannot read


def list_page(dev: Device, after: bytes, limit: int) -> Page:
    """Up to ``limit`` index entries after key ``after`` (b"": from the start)."""
    page = Page([], None)
    with dev.env.begin() as txn:
        cursor = txn.cursor(db=dev.index)
        found = cursor.set_range(after)
        if found and after and cursor.key() == after:
            found = cursor.next()
        seen = 0
        while found and seen < limit:
            key, value = cursor.item()
            seen += 1
            page.last_key = key
            try:
                meta = decode(value)
            except ValueError:
                page.undecodable.append(key)
            else:
                if meta.body is not None:
                    located = replace(meta, device=dev.name, partition=layout.key_partition(key))
                    page.versions.append(Listed(key, located, value))
            found = cursor.next()
    return page


def block_count(meta: ObjectMetadata) -> int:
    return -(-meta.size_bytes // meta.block_size_bytes) if meta.block_size_bytes > 0 else 0


def metadata_problem(meta: ObjectMetadata) -> str | None:
    """What is wrong with a version's checksums before any byte is read (a body whose
    metadata names too few block checksums would fail its GET at the first block without one)."""
    if meta.block_size_bytes < 1:
        return f"block size {meta.block_size_bytes}"
    if len(meta.block_hashes) != block_count(meta):
        blocks = block_count(meta)
        return f"{len(meta.block_hashes)} block checksums for {blocks} blocks"
    return None


@dataclass(frozen=True, slots=True)
class InlineResult:
    listed: Listed
    outcome: str | None  # None: the body is good; GONE; else the reason it failed
    size_bytes: int  # bytes read and hashed


def check_inline(dev: Device, batch: list[Listed]) -> list[InlineResult]:
    """Check inline bodies, reading each with its metadata in one read transaction."""
    results = []
    with dev.env.begin() as txn:
        for listed in batch:
            value = txn.get(listed.key, db=dev.index)
            if value is None:
                results.append(InlineResult(listed, GONE, 0))
                continue
            if value == listed.value:
                now = listed
            else:  # a POST since the page rewrote the metadata: check against what is there
                try:
                    meta = replace(decode(value), device=dev.name, partition=listed.meta.partition)
                except ValueError:
                    results.append(InlineResult(listed, UNREADABLE, 0))
                    continue
                now = Listed(listed.key, meta, value)
            meta = now.meta
            body = txn.get(listed.key, db=dev.bodies)
            if body is None:
                results.append(InlineResult(now, "inline body missing", 0))
            else:
                results.append(InlineResult(now, inline_problem(meta, body), len(body)))
    return results


def inline_problem(meta: ObjectMetadata, body: bytes) -> str | None:
    """objectd/reader.py's check of an inline body, over all of it."""
    if len(body) != meta.size_bytes:
        return f"inline body is {len(body)} bytes, not {meta.size_bytes}"
    problem = metadata_problem(meta)
    if problem is not None:
        return problem
    size = meta.block_size_bytes
    view = memoryview(body)
    for number in range(block_count(meta)):
        if not block_matches(meta.block_hashes, number, view[number * size : (number + 1) * size]):
            return f"block {number} failed its checksum"
    return None


def data_file_path(dev: Device, listed: Listed) -> str:
    path = reader.data_file_path(dev, listed.meta, listed.digest)
    assert path is not None, "only file-backed versions have a data file"
    return path


def open_data_file(path: str) -> tuple[int, int]:
    """(fd, size) of a data file; FileNotFoundError if there is none."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # read whole: a larger readahead
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def read_block_matches(fd: int, meta: ObjectMetadata, number: int) -> tuple[bool, int]:
    """(whether block ``number`` of the file matches its checksum, bytes read)."""
    size = meta.block_size_bytes
    want = min(size, meta.size_bytes - number * size)
    data = _pread_all(fd, want, number * size)
    return len(data) == want and block_matches(meta.block_hashes, number, data), len(data)


def close_data_file(fd: int) -> None:
    """Close, first dropping the file's pages from the page cache (as Swift's auditor does):
    a pass over the whole disk must not evict the objects GETs keep hot."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass  # advice only
    finally:
        os.close(fd)


def still_indexed(dev: Device, key: bytes) -> bool:
    with dev.env.begin() as txn:
        return index.has_key(txn, dev, key)


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size:
        data = os.pread(fd, size, offset)
        if not data:
            break
        parts.append(data)
        size -= len(data)
        offset += len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)
