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
from typing import Any, Generic, TypeVar

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
    """Seek-and-step over one scope of a ListingTable; rows decoded only when yielded.

    Steps with the cursor's own iterators (one C call per row yielding key and value) and
    ends the scope with one key comparison: a 10,000-row page is a listing's common case,
    and per-row Python calls were a third of its cost."""

    def __init__(self, cursor: lmdb.Cursor, scope: bytes, decode: Callable[[bytes, bytes], V]):
        self._cursor = cursor
        self._scope = scope
        self._decode = decode
        self._end = successor_of_scope(scope)  # the first key past the scope (None: none)
        self.steps = 0

    def ascending(self, start: bytes) -> Iterator[tuple[bytes, V]]:
        cursor = self._cursor
        decode = self._decode
        # The first key >= scope|start[:494] is at most one short name and one bucket
        # before the first name >= start; the name test below drops those.
        if not cursor.set_range(self._scope + start[:SHORT_NAME_BYTES]):
            return
        end = self._end  # ascending from inside the scope: past it is >= its successor
        for key, value in cursor.iternext():
            if end is not None and key >= end:
                return
            self.steps += 1
            if len(key) != _BUCKET_KEY_BYTES:
                name = key[SCOPE_BYTES:]
                if name >= start:
                    yield name, decode(name, value)
                continue
            for name, row in _bucket_entries(key, value):
                if name >= start:
                    yield name, decode(name, row)

    def take(self, start: bytes, stop: bytes | None, limit: int, reverse: bool) -> list[V]:
        """The first ``limit`` rows named in [start, stop) in listing order (a page without a
        delimiter), ascending in one loop: no generator between the cursor and the page."""
        if reverse:
            return take_descending(self.descending(stop), start, limit)
        page: list[V] = []
        cursor = self._cursor
        if limit <= 0 or not cursor.set_range(self._scope + start[:SHORT_NAME_BYTES]):
            return page
        decode = self._decode
        end = self._end
        steps = 0
        try:
            for key, value in cursor.iternext():
                if end is not None and key >= end:
                    break
                steps += 1
                if len(key) != _BUCKET_KEY_BYTES:
                    name = key[SCOPE_BYTES:]
                    if name < start:
                        continue
                    if stop is not None and name >= stop:
                        break
                    page.append(decode(name, value))
                    if len(page) >= limit:
                        break
                    continue
                # A long names' bucket: rare, so its rows go the longer way round.
                for name, row in _bucket_entries(key, value):
                    if name >= start and (stop is None or name < stop):
                        page.append(decode(name, row))
                        if len(page) >= limit:
                            return page
                if stop is not None and key[SCOPE_BYTES:-1] >= stop[:SHORT_NAME_BYTES]:
                    break  # every later name is past stop
        finally:
            self.steps += steps
        return page

    def descending(self, stop: bytes | None) -> Iterator[tuple[bytes, V]]:
        cursor = self._cursor
        decode = self._decode
        if stop is None:
            above = self._end
        elif len(stop) <= SHORT_NAME_BYTES:
            above = self._scope + stop  # every key below it holds only names < stop
        else:
            # Just past stop's bucket key: the bucket may hold names on both sides of stop.
            above = self._scope + stop[:SHORT_NAME_BYTES] + _BUCKET_MARK + b"\x00"
        found = cursor.set_range(above) if above is not None else False
        if not (cursor.prev() if found else cursor.last()):
            return
        scope = self._scope  # descending from inside the scope: past it is below it
        for key, value in cursor.iterprev():
            if key < scope:
                return
            self.steps += 1
            if len(key) != _BUCKET_KEY_BYTES:
                name = key[SCOPE_BYTES:]
                if stop is None or name < stop:
                    yield name, decode(name, value)
                continue
            for name, row in reversed(_bucket_entries(key, value)):
                if stop is None or name < stop:
                    yield name, decode(name, row)


def _bucket_entries(key: bytes, value: bytes) -> Bucket:
    """A bucket's rows with their full names."""
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

    def cursor(self, convert: Callable[[V], Any] | None = None) -> SortedCursor[Any]:
        """A cursor over the rows, each passed through ``convert`` if given (what the LMDB
        cursor's ``decode`` is to stored bytes: a listing may want rows in another form)."""
        return SortedCursor(self._names, self._rows, convert)


class SortedCursor(Generic[V]):
    def __init__(
        self,
        names: list[bytes],
        rows: dict[bytes, Any],
        convert: Callable[[Any], V] | None = None,
    ) -> None:
        self._names = names
        self._rows = rows
        self._convert = convert
        self.steps = 0

    def ascending(self, start: bytes) -> Iterator[tuple[bytes, V]]:
        for at in range(bisect_left(self._names, start), len(self._names)):
            self.steps += 1
            name = self._names[at]
            yield name, self._row(name)

    def descending(self, stop: bytes | None) -> Iterator[tuple[bytes, V]]:
        end = len(self._names) if stop is None else bisect_left(self._names, stop)
        for at in range(end - 1, -1, -1):
            self.steps += 1
            name = self._names[at]
            yield name, self._row(name)

    def take(self, start: bytes, stop: bytes | None, limit: int, reverse: bool) -> list[V]:
        """As ``LmdbCursor.take``."""
        if reverse:
            return take_descending(self.descending(stop), start, limit)
        page: list[V] = []
        for name, row in self.ascending(start):
            if len(page) >= limit or (stop is not None and name >= stop):
                break
            page.append(row)
        return page

    def _row(self, name: bytes) -> V:
        row = self._rows[name]
        return row if self._convert is None else self._convert(row)


def take_descending(rows: Iterator[tuple[bytes, V]], start: bytes, limit: int) -> list[V]:
    """The first ``limit`` of ``rows`` (highest first) named at least ``start``."""
    page: list[V] = []
    if limit <= 0:
        return page
    for name, row in rows:
        if name < start:
            break
        page.append(row)
        if len(page) >= limit:
            break
    return page
