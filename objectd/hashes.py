"""Suffix hashes for REPLICATE: what the replicator compares between replicas.

A suffix's hash covers every version in it — (name hash, data timestamp, metadata timestamp,
content-type timestamp, tombstone flag), in index order — so two replicas agree on a suffix
exactly when they hold the same versions.  The LMDB engine computes one from the index with a
range scan, caches it in the ``suffix_hashes`` table (key ``partition | suffix``), and every
write marks its suffix's entry invalid in its own transaction.  The key
``partition | 0xFFFF`` says the cache lists every suffix of the partition, so a partition
is scanned whole only once; after that only invalid suffixes are rescanned.

Like Swift's hashing, a rescan reclaims tombstones older than ``reclaim_age``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import lmdb
import xxhash

from . import index, layout
from .device import Device
from .metadata import ObjectMetadata, decode
from .versions import is_reclaimable

_ENTRY = struct.Struct(">16sQQQQQQ?")
_COMPLETE = 0xFFFF  # never a suffix: suffixes are 12 bits
_COMPLETE_VALUE = b"complete"


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


async def suffix_hashes(
    dev: Device, partition: int, recalculate: set[int], now: float, reclaim_age_s: float
) -> dict[str, str]:
    with dev.env.begin() as txn:
        cached, complete = _read_cache(txn, dev, partition)
    if complete and not recalculate and all(cached.values()):
        return _as_hex(cached)

    def refresh(txn: lmdb.Transaction) -> dict[str, str]:
        # Recomputed in the writer's transaction: no write can slip between the scan and
        # the cache update, so the cache never holds a hash older than the index.
        return _refresh(txn, dev, partition, recalculate, now, reclaim_age_s)

    return await dev.submit(refresh)


def _refresh(
    txn: lmdb.Transaction,
    dev: Device,
    partition: int,
    recalculate: set[int],
    now: float,
    reclaim_age_s: float,
) -> dict[str, str]:
    cached, complete = _read_cache(txn, dev, partition)
    todo = set(recalculate) | {s for s, value in cached.items() if value == index.INVALID_HASH}
    if not complete:
        todo |= _present_suffixes(txn, dev, partition)
    for suffix in todo:
        key = layout.suffix_prefix(partition, suffix)
        value = _compute(txn, dev, partition, suffix, now, reclaim_age_s)
        if value is None:
            txn.delete(key, db=dev.hashes)
            cached.pop(suffix, None)
        else:
            cached[suffix] = value.encode()
            txn.put(key, cached[suffix], db=dev.hashes)
    if not complete:
        txn.put(layout.suffix_prefix(partition, _COMPLETE), _COMPLETE_VALUE, db=dev.hashes)
    return _as_hex(cached)


def _as_hex(cached: dict[int, bytes]) -> dict[str, str]:
    return {layout.suffix_hex(s): v.decode() for s, v in sorted(cached.items()) if v}


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
) -> str | None:
    prefix = layout.suffix_prefix(partition, suffix)
    entries: list[tuple[bytes, ObjectMetadata]] = []
    reclaim: list[bytes] = []
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
    for key in reclaim:
        txn.delete(key, db=dev.index)
    return hash_suffix(entries)
