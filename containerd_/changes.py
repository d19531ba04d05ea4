"""The LMDB tables container replication keeps beside the rows (containerd_/broker.py).

A device's rows change in an order its replicator must be able to resume from, as Swift's
ROWID: every row write takes the next value of a device-wide change sequence, and

- ``changes``: ``cid | u64 seq`` → the object name, the newest change of each name only;
- ``change_index``: ``cid | xxh3_128(name)`` → ``u64 seq``, so a name's older entry in
  ``changes`` is dropped when it changes again (names reach 1024 bytes, keys stop at 511:
  hence the hash; a collision only drops a change entry early, which the next full copy
  mends, and at 2**-128 is not expected);
- ``sync_points``: ``cid | sender id (16 bytes)`` → ``u64 seq``: the sender's change sequence
  up to which this replica has merged its rows (Swift's incoming_sync table);
- ``replica``: ``b"id"`` → this environment's 16 random bytes (Swift's database id: a new
  environment has a new id, so peers do not trust sync points of an old one), ``b"seq"`` →
  the last change sequence handed out.

Rows written before these tables existed have no change entry: a peer with no sync point gets
every row, from the row tables (the replicator's full copy), so nothing is missed.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import lmdb
import xxhash

from service.db_scope import drop_scope

CHANGE_TABLES = ("changes", "change_index", "sync_points", "replica")
_U64 = struct.Struct(">Q")
_ID, _SEQ = b"id", b"seq"
SENDER_BYTES = 16


class ChangeLog:
    def __init__(self, txn: lmdb.Transaction, tables: dict[str, Any]) -> None:
        self._txn = txn
        self._changes = tables["changes"]
        self._index = tables["change_index"]
        self._sync = tables["sync_points"]
        self._replica = tables["replica"]

    def note(self, cid: bytes, name: bytes) -> None:
        """``name`` changed: it takes the next sequence, its older entry goes."""
        txn = self._txn
        raw = txn.get(_SEQ, db=self._replica)
        seq = (0 if raw is None else _U64.unpack(raw)[0]) + 1
        txn.put(_SEQ, _U64.pack(seq), db=self._replica)
        index_key = cid + xxhash.xxh3_128_digest(name)
        old = txn.get(index_key, db=self._index)
        if old is not None:
            txn.delete(cid + old, db=self._changes)
        packed = _U64.pack(seq)
        txn.put(index_key, packed, db=self._index)
        txn.put(cid + packed, name, db=self._changes)

    def forget(self, cid: bytes, name: bytes) -> None:
        """``name``'s row is gone (reclaim.py): its entry goes; the sequence is not reused."""
        index_key = cid + xxhash.xxh3_128_digest(name)
        old = self._txn.get(index_key, db=self._index)
        if old is not None:
            self._txn.delete(cid + old, db=self._changes)
            self._txn.delete(index_key, db=self._index)

    def last(self, cid: bytes) -> int:
        """The container's newest change sequence; 0 if none is recorded."""
        cursor = self._txn.cursor(db=self._changes)
        end = _successor(cid)
        found = cursor.set_range(end) if end is not None else cursor.last()
        if end is not None:
            found = cursor.prev() if found else cursor.last()
        if not found or cursor.key()[:16] != cid:
            return 0
        return _U64.unpack(cursor.key()[16:])[0]

    def since(self, cid: bytes, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` (seq, name) of the container, sequences after ``after``, in order."""
        cursor = self._txn.cursor(db=self._changes)
        found: list[tuple[int, bytes]] = []
        if not cursor.set_range(cid + _U64.pack(after + 1)):
            return found
        for key, name in cursor.iternext():
            if key[:16] != cid or len(found) >= limit:
                break
            found.append((_U64.unpack(key[16:])[0], name))
        return found

    def replica_id(self, *, create: bool) -> bytes | None:
        found = self._txn.get(_ID, db=self._replica)
        if found is None and create:
            found = os.urandom(SENDER_BYTES)
            self._txn.put(_ID, found, db=self._replica)
        return found

    def get_sync_point(self, cid: bytes, sender: bytes) -> int | None:
        raw = self._txn.get(cid + sender, db=self._sync)
        return None if raw is None else _U64.unpack(raw)[0]

    def put_sync_point(self, cid: bytes, sender: bytes, seq: int) -> None:
        self._txn.put(cid + sender, _U64.pack(seq), db=self._sync)

    def drop(self, cid: bytes) -> None:
        for db in (self._changes, self._index, self._sync):
            drop_scope(self._txn, db, cid)


def _successor(scope: bytes) -> bytes | None:
    value = int.from_bytes(scope, "big") + 1
    return None if value >> (8 * len(scope)) else value.to_bytes(len(scope), "big")
