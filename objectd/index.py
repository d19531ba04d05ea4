"""The index inside a transaction: find, replace and rewrite versions of one name.

Every function here runs inside a transaction of the device's environment; the write ones run
in its writer thread, and each drops the cached hash of the suffix it touches in the same
transaction, so a cached suffix hash can never describe an older index.
"""

from __future__ import annotations

import struct

import lmdb

from . import layout
from .device import Device
from .metadata import ObjectMetadata, decode, encode

# A cached suffix hash that must be recomputed: 0x00, then the id of the transaction that
# wrote it.  Ids grow with every commit, so each write leaves a marker no earlier snapshot
# saw: REPLICATE, which hashes outside the writer, stores a hash only where the marker it
# read is still there (objectd/hashes.py).  An empty value is an older form of the marker.
_INVALID = b"\x00"
_QUARANTINED = b"quarantined"
_COUNT = struct.Struct(">Q")


def newest(
    txn: lmdb.Transaction, dev: Device, partition: int, digest: bytes
) -> tuple[bytes, ObjectMetadata] | None:
    """The newest stored version of a name (complemented timestamps sort it first)."""
    prefix = layout.object_prefix(partition, digest)
    cursor = txn.cursor(db=dev.index)
    if not cursor.set_range(prefix) or not cursor.key().startswith(prefix):
        return None
    return cursor.key(), decode(cursor.value())


def has_key(txn: lmdb.Transaction, dev: Device, key: bytes) -> bool:
    return txn.get(key, db=dev.index) is not None


def replace_versions(
    txn: lmdb.Transaction,
    dev: Device,
    partition: int,
    digest: bytes,
    meta: ObjectMetadata,
    body: bytes | None,
) -> list[ObjectMetadata]:
    """Store ``meta`` (and an inline body) as the only version; return the versions removed."""
    prefix = layout.object_prefix(partition, digest)
    cursor = txn.cursor(db=dev.index)
    old: list[tuple[bytes, bytes]] = []
    if cursor.set_range(prefix):
        for key, value in cursor:
            if not key.startswith(prefix):
                break
            old.append((key, value))
    for key, _value in old:
        txn.delete(key, db=dev.index)
        txn.delete(key, db=dev.bodies)
    key = layout.index_key(partition, digest, meta.timestamp)
    txn.put(key, encode(meta), db=dev.index)
    if body is not None:
        txn.put(key, body, db=dev.bodies)
    invalidate_suffix(txn, dev, partition, layout.suffix_of(digest))
    return [decode(value) for _key, value in old]


def rewrite(txn: lmdb.Transaction, dev: Device, key: bytes, meta: ObjectMetadata) -> None:
    """New metadata for the version at ``key`` (a POST); its body is untouched."""
    txn.put(key, encode(meta), db=dev.index)
    invalidate_suffix(txn, dev, layout.key_partition(key), layout.key_suffix(key))


def remove_version(txn: lmdb.Transaction, dev: Device, key: bytes, *, keep_body: bool) -> bool:
    """Drop one version (quarantine); an inline body moves to the quarantine table."""
    if txn.get(key, db=dev.index) is None:
        return False
    body = txn.get(key, db=dev.bodies)
    if keep_body and body is not None:
        txn.put(key, body, db=dev.quarantine)
    txn.delete(key, db=dev.index)
    txn.delete(key, db=dev.bodies)
    invalidate_suffix(txn, dev, layout.key_partition(key), layout.key_suffix(key))
    return True


def invalidate_suffix(txn: lmdb.Transaction, dev: Device, partition: int, suffix: int) -> None:
    marker = _INVALID + _COUNT.pack(txn.id())
    txn.put(layout.suffix_prefix(partition, suffix), marker, db=dev.hashes)


def is_valid_hash(cached: bytes) -> bool:
    return bool(cached) and not cached.startswith(_INVALID)


def add_quarantined(txn: lmdb.Transaction, dev: Device) -> None:
    txn.put(_QUARANTINED, _COUNT.pack(quarantined(txn, dev) + 1), db=dev.stats)


def quarantined(txn: lmdb.Transaction, dev: Device) -> int:
    value = txn.get(_QUARANTINED, db=dev.stats)
    return 0 if value is None else _COUNT.unpack(value)[0]
