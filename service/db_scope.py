"""Deleting one scope's keys (a container's, an account's: the 16-byte id that prefixes them)
from an LMDB table, when a replicator drops a handoff's database (replicator/db_replicator.py),
and paging through a table's keys, as the replicators walk a device's databases."""

from __future__ import annotations

from typing import Any

import lmdb


def drop_scope(txn: lmdb.Transaction, db: Any, scope: bytes) -> int:
    """Delete every key starting with ``scope``; how many."""
    cursor = txn.cursor(db=db)
    dropped = 0
    if not cursor.set_range(scope):
        return 0
    while cursor.key()[: len(scope)] == scope:
        dropped += 1
        if not cursor.delete():  # moves to the next key; False when none is left
            break
    return dropped


def keys_after(txn: lmdb.Transaction, db: Any, after: bytes, limit: int) -> list[bytes]:
    """Up to ``limit`` keys of ``db`` after ``after``, in key order (a replicator walking a
    device's databases a page at a time)."""
    cursor = txn.cursor(db=db)
    if not cursor.set_range(after):
        return []
    found: list[bytes] = []
    for key in cursor.iternext(values=False):
        if key == after:
            continue
        if len(found) >= limit:
            break
        found.append(key)
    return found
