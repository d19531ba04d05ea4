"""Suffix hashes for REPLICATE: what the replicator compares between replicas.

A suffix's hash covers every version in it — (name hash, data timestamp, metadata timestamp,
content-type timestamp, tombstone flag), in index order — so two replicas agree on a suffix
exactly when they hold the same versions.  The LMDB engine computes one from the index with a
range scan, caches it in the ``suffix_hashes`` table (key ``partition | suffix``), and every
write marks its suffix's entry invalid in its own transaction, with a marker unique to that
transaction (objectd/index.py).  The key ``partition | 0xFFFF`` says the cache lists every
suffix of the partition, so a partition is scanned whole only once; after that only invalid
suffixes are rescanned.

The scan runs in a read transaction in a worker thread, never in the device's writer: a big
partition takes seconds to hash, and every write on the device would wait for it.  The writer
then stores a suffix's hash only if the suffix's cache entry is still the one the scan read
(compare-and-set): a write since the scan left a newer marker, and the suffix stays invalid.

Like Swift's hashing, a rescan reclaims tombstones older than ``reclaim_age``: deleted through
the writer in small batches, each of which invalidates the suffixes it touched.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import lmdb
import xxhash

from . import index, layout
from .device import Device
from .metadata import ObjectMetadata, decode
from .versions import is_reclaimable

_ENTRY = struct.Struct(">16sQQQQQQ?")
_COMPLETE = 0xFFFF  # never a suffix: suffixes are 12 bits
_COMPLETE_VALUE = b"complete"
RECLAIM_BATCH = 500  # tombstones deleted per write transaction


def hash_suffix(entries: Iterable[tuple[bytes, ObjectMetadata]]) -> str | None:
    """The hash of a suffix's (name hash, version) pairs in index order; None if empty."""
    digest = xxhash.xxh3_128()
    empty = True
    for name_hash, meta in entries:
        ts, meta_ts, ctype_ts = meta.timestamp, meta.meta_timestamp, meta.ctype_timestamp
        digest.update(
            _ENTRY.pack(
                name_hash,
                ts.raw,
                ts.offset,
                meta_ts.raw,
                meta_ts.offset,
                ctype_ts.raw,
                ctype_ts.offset,
                meta.deleted,
            )
        )
        empty = False
    return None if empty else digest.hexdigest()


def hash_by_suffix(entries: Iterable[tuple[bytes, ObjectMetadata]]) -> dict[str, str]:
    """{suffix hex: hash} of one partition's (name hash, newest version) pairs, any order."""
    by_suffix: dict[int, list[tuple[bytes, ObjectMetadata]]] = {}
    for digest, meta in sorted(entries, key=lambda entry: entry[0]):
        by_suffix.setdefault(layout.suffix_of(digest), []).append((digest, meta))
    hashes = {layout.suffix_hex(s): hash_suffix(by_suffix[s]) for s in sorted(by_suffix)}
    return {suffix: value for suffix, value in hashes.items() if value is not None}


@dataclass
class _Scan:
    """What one scan of a partition found, in one read transaction."""

    cached: dict[int, bytes]  # the cache entries it read
    complete: bool
    computed: dict[int, str | None] = field(default_factory=dict)  # rescanned suffixes
    reclaim: list[bytes] = field(default_factory=list)  # keys of reclaimable tombstones


async def suffix_hashes(
    dev: Device, partition: int, recalculate: set[int], now: float, reclaim_age_s: float
) -> dict[str, str]:
    with dev.env.begin() as txn:
        cached, complete = _read_cache(txn, dev, partition)
    if complete and not recalculate and all(map(index.is_valid_hash, cached.values())):
        return _as_hex(cached)
    scan = await asyncio.to_thread(_scan, dev, partition, recalculate, now, reclaim_age_s)
    for start in range(0, len(scan.reclaim), RECLAIM_BATCH):
        batch = scan.reclaim[start : start + RECLAIM_BATCH]
        await dev.submit(lambda txn, batch=batch: _reclaim(txn, dev, batch))
    await dev.submit(lambda txn: _store(txn, dev, partition, scan))
    result = {s: v for s, v in scan.cached.items() if index.is_valid_hash(v)}
    for suffix, value in scan.computed.items():
        result.pop(suffix, None)
        if value is not None:
            result[suffix] = value.encode()
    return _as_hex(result)


def _scan(
    dev: Device, partition: int, recalculate: set[int], now: float, reclaim_age_s: float
) -> _Scan:
    with dev.env.begin() as txn:
        scan = _Scan(*_read_cache(txn, dev, partition))
        todo = set(recalculate)
        todo |= {s for s, value in scan.cached.items() if not index.is_valid_hash(value)}
        if not scan.complete:
            todo |= _present_suffixes(txn, dev, partition)
        for suffix in sorted(todo):
            scan.computed[suffix] = _compute(
                txn, dev, partition, suffix, now, reclaim_age_s, scan.reclaim
            )
    return scan


def _reclaim(txn: lmdb.Transaction, dev: Device, keys: list[bytes]) -> None:
    for key in keys:
        # A key names one version: still there, it is the tombstone the scan saw.
        if txn.delete(key, db=dev.index):
            index.invalidate_suffix(txn, dev, layout.key_partition(key), layout.key_suffix(key))


def _store(txn: lmdb.Transaction, dev: Device, partition: int, scan: _Scan) -> None:
    for suffix, value in scan.computed.items():
        key = layout.suffix_prefix(partition, suffix)
        if txn.get(key, db=dev.hashes) != scan.cached.get(suffix):
            continue  # written since the scan (or reclaimed from): left invalid
        if value is None:
            txn.delete(key, db=dev.hashes)
        else:
            txn.put(key, value.encode(), db=dev.hashes)
    if not scan.complete:
        # Every suffix with versions at the scan is cached now or marked invalid, and every
        # one that got a version since was marked by that write.
        txn.put(layout.suffix_prefix(partition, _COMPLETE), _COMPLETE_VALUE, db=dev.hashes)


def _as_hex(cached: dict[int, bytes]) -> dict[str, str]:
    return {
        layout.suffix_hex(s): v.decode()
        for s, v in sorted(cached.items())
        if index.is_valid_hash(v)
    }


def _read_cache(
    txn: lmdb.Transaction, dev: Device, partition: int
) -> tuple[dict[int, bytes], bool]:
    prefix = layout.partition_prefix(partition)
    cached: dict[int, bytes] = {}
    complete = False
    cursor = txn.cursor(db=dev.hashes)
    if cursor.set_range(prefix):
        for key, value in cursor:
            if not key.startswith(prefix):
                break
            suffix = layout.key_suffix(key)
            if suffix == _COMPLETE:
                complete = True
            else:
                cached[suffix] = value
    return cached, complete


def _present_suffixes(txn: lmdb.Transaction, dev: Device, partition: int) -> set[int]:
    """The partition's suffixes that hold versions: one seek per suffix, not per version."""
    prefix = layout.partition_prefix(partition)
    found: set[int] = set()
    cursor = txn.cursor(db=dev.index)
    positioned = cursor.set_range(prefix)
    while positioned and cursor.key().startswith(prefix):
        suffix = layout.key_suffix(cursor.key())
        found.add(suffix)
        if suffix + 1 >= layout.SUFFIX_COUNT:
            break
        positioned = cursor.set_range(layout.suffix_prefix(partition, suffix + 1))
    return found


def _compute(
    txn: lmdb.Transaction,
    dev: Device,
    partition: int,
    suffix: int,
    now: float,
    reclaim_age_s: float,
    reclaim: list[bytes],
) -> str | None:
    """The suffix's hash, leaving out reclaimable tombstones (their keys go to ``reclaim``)."""
    prefix = layout.suffix_prefix(partition, suffix)
    entries: list[tuple[bytes, ObjectMetadata]] = []
    cursor = txn.cursor(db=dev.index)
    if cursor.set_range(prefix):
        for key, value in cursor:
            if not key.startswith(prefix):
                break
            meta = decode(value)
            if is_reclaimable(meta, now, reclaim_age_s):
                reclaim.append(key)
            else:
                entries.append((layout.key_name_hash(key), meta))
    return hash_suffix(entries)
