"""Where listing rows live: an LMDB table for the brokers, a sorted list for the memory twins.

Both hand ``service.listing.list_page`` the same seek-and-step cursor and count the rows they
visit (``steps``), so a test can see that a page costs O(page).

LMDB table keys (a format: changing them needs a migration):

- a name of at most ``SHORT_NAME_BYTES`` (494) bytes: ``scope (16 bytes) | name`` → the row;
- a longer name: ``scope | name[:494] | 0xFF`` → a bucket holding, sorted, every long name
  sharing those 494 bytes.  LMDB keys stop at 511 bytes but object names go to 1024.

Key order is still the byte order of the full names: UTF-8 never holds 0xFF, so a bucket key
sorts after every shorter name it starts with (``name[:494]`` included) and before every name
that differs within the first 494 bytes.  Bucket: ``0x01``, then per name ``u16 len | name
suffix (after byte 494) | u32 len | row``.  Known weakness: a write to a long name rewrites its
bucket, O(names sharing 494 bytes), which only a client naming objects to that end will see.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import lmdb

V = TypeVar("V")

SCOPE_BYTES = 16
MAX_KEY_BYTES = 511  # LMDB's default build (env.max_key_size())
SHORT_NAME_BYTES = MAX_KEY_BYTES - SCOPE_BYTES - 1
_BUCKET_MARK = b"\xff"
_BUCKET_KEY_BYTES = SCOPE_BYTES + SHORT_NAME_BYTES + 1
_BUCKET_VERSION = 1
_SUFFIX_LEN = struct.Struct(">H")
_ROW_LEN = struct.Struct(">I")

Bucket = list[tuple[bytes, bytes]]  # (name suffix, row), sorted by suffix


def table_key(scope: bytes, name: bytes) -> bytes:
    if len(name) <= SHORT_NAME_BYTES:
        return scope + name
    return scope + name[:SHORT_NAME_BYTES] + _BUCKET_MARK


def encode_bucket(bucket: Bucket) -> bytes:
    parts = [bytes([_BUCKET_VERSION])]
    for suffix, row in bucket:
        parts += [_SUFFIX_LEN.pack(len(suffix)), suffix, _ROW_LEN.pack(len(row)), row]
    return b"".join(parts)


def decode_bucket(data: bytes) -> Bucket:
    if not data or data[0] != _BUCKET_VERSION:
        raise ValueError(f"unknown long-name bucket version {data[:1]!r}")
    bucket: Bucket = []
    at = 1
    while at < len(data):
        (size,) = _SUFFIX_LEN.unpack_from(data, at)
        suffix = data[at + 2 : at + 2 + size]
        at += 2 + size
        (size,) = _ROW_LEN.unpack_from(data, at)
        bucket.append((suffix, data[at + 4 : at + 4 + size]))
        at += 4 + size
    return bucket


class ListingTable:
    """Rows of many scopes in one LMDB database (opened by the caller), values as bytes."""

    def __init__(self, db: lmdb._Database) -> None:
        self._db = db

    def get(self, txn: lmdb.Transaction, scope: bytes, name: bytes) -> bytes | None:
        value = txn.get(table_key(scope, name), db=self._db)
        if value is None or len(name) <= SHORT_NAME_BYTES:
            return value
        suffix = name[SHORT_NAME_BYTES:]
        return next((row for s, row in decode_bucket(value) if s == suffix), None)

    def put(self, txn: lmdb.Transaction, scope: bytes, name: bytes, row: bytes) -> None:
        key = table_key(scope, name)
        if len(name) <= SHORT_NAME_BYTES:
            txn.put(key, row, db=self._db)
            return
        bucket = self._bucket(txn, key)
        suffix = name[SHORT_NAME_BYTES:]
        at = bisect_left(bucket, suffix, key=lambda entry: entry[0])
        if at < len(bucket) and bucket[at][0] == suffix:
            bucket[at] = (suffix, row)
        else:
            bucket.insert(at, (suffix, row))
        txn.put(key, encode_bucket(bucket), db=self._db)

    def delete(self, txn: lmdb.Transaction, scope: bytes, name: bytes) -> bool:
        key = table_key(scope, name)
        if len(name) <= SHORT_NAME_BYTES:
            return txn.delete(key, db=self._db)
        bucket = self._bucket(txn, key)
        suffix = name[SHORT_NAME_BYTES:]
        kept = [entry for entry in bucket if entry[0] != suffix]
        if len(kept) == len(bucket):
            return False
        if kept:
            txn.put(key, encode_bucket(kept), db=self._db)
        else:
            txn.delete(key, db=self._db)
        return True

    def cursor(
        self, txn: lmdb.Transaction, scope: bytes, decode: Callable[[bytes, bytes], V]
    ) -> LmdbCursor[V]:
        return LmdbCursor(txn.cursor(db=self._db), scope, decode)

    def _bucket(self, txn: lmdb.Transaction, key: bytes) -> Bucket:
        value = txn.get(key, db=self._db)
        return decode_bucket(value) if value is not None else []


class LmdbCursor(Generic[V]):
    """Seek-and-step over one scope of a ListingTable; rows decoded only when yielded."""

    def __init__(self, cursor: lmdb.Cursor, scope: bytes, decode: Callable[[bytes, bytes], V]):
        self._cursor = cursor
        self._scope = scope
        self._decode = decode
        self.steps = 0

    def ascending(self, start: bytes) -> Iterator[tuple[bytes, V]]:
        cursor = self._cursor
        # The first key >= scope|start[:494] is at most one short name and one bucket
        # before the first name >= start; the filter below drops those.
        found = cursor.set_range(self._scope + start[:SHORT_NAME_BYTES])
        while found:
            key = cursor.key()
            if key[:SCOPE_BYTES] != self._scope:
                return
            self.steps += 1
            for name, row in self._entries(key, cursor.value()):
                if name >= start:
                    yield name, self._decode(name, row)
            found = cursor.next()

    def descending(self, stop: bytes | None) -> Iterator[tuple[bytes, V]]:
        cursor = self._cursor
        if stop is None:
            above = successor_of_scope(self._scope)
        elif len(stop) <= SHORT_NAME_BYTES:
            above = self._scope + stop  # every key below it holds only names < stop
        else:
            # Just past stop's bucket key: the bucket may hold names on both sides of stop.
            above = self._scope + stop[:SHORT_NAME_BYTES] + _BUCKET_MARK + b"\x00"
        found = cursor.set_range(above) if above is not None else False
        found = cursor.prev() if found else cursor.last()
        while found:
            key = cursor.key()
            if key[:SCOPE_BYTES] != self._scope:
                return
            self.steps += 1
            for name, row in reversed(self._entries(key, cursor.value())):
                if stop is None or name < stop:
                    yield name, self._decode(name, row)
            found = cursor.prev()

    @staticmethod
    def _entries(key: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
        if len(key) != _BUCKET_KEY_BYTES:
            return [(key[SCOPE_BYTES:], value)]
        head = key[SCOPE_BYTES:-1]
        return [(head + suffix, row) for suffix, row in decode_bucket(value)]


def successor_of_scope(scope: bytes) -> bytes | None:
    value = int.from_bytes(scope, "big") + 1
    return None if value >> (8 * len(scope)) else value.to_bytes(len(scope), "big")


class SortedRows(Generic[V]):
    """One scope's rows in memory, by name bytes: the memory twins' ListingTable."""

    def __init__(self) -> None:
        self._names: list[bytes] = []
        self._rows: dict[bytes, V] = {}

    def __len__(self) -> int:
        return len(self._names)

    def get(self, name: bytes) -> V | None:
        return self._rows.get(name)

    def put(self, name: bytes, row: V) -> None:
        if name not in self._rows:
            self._names.insert(bisect_left(self._names, name), name)
        self._rows[name] = row

    def delete(self, name: bytes) -> bool:
        if self._rows.pop(name, None) is None:
            return False
        del self._names[bisect_left(self._names, name)]
        return True

    def cursor(self) -> SortedCursor[V]:
        return SortedCursor(self._names, self._rows)


class SortedCursor(Generic[V]):
    def __init__(self, names: list[bytes], rows: dict[bytes, V]) -> None:
        self._names = names
        self._rows = rows
        self.steps = 0

    def ascending(self, start: bytes) -> Iterator[tuple[bytes, V]]:
        for at in range(bisect_left(self._names, start), len(self._names)):
            self.steps += 1
            name = self._names[at]
            yield name, self._rows[name]

    def descending(self, stop: bytes | None) -> Iterator[tuple[bytes, V]]:
        end = len(self._names) if stop is None else bisect_left(self._names, stop)
        for at in range(end - 1, -1, -1):
            self.steps += 1
            name = self._names[at]
            yield name, self._rows[name]
