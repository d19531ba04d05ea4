"""One container (account) database checked as stored, and mended where it is proven bad: the
part of the container and account auditors (replicator/db_auditor.py) that reads and writes
the server's LMDB environment.

A database here is one id's entries in the device's shared tables (containerd_/broker.py,
accountd/broker.py): its record, its totals, and its rows in the live and tombstone tables.
``walk_page`` checks its rows a page at a time and ``finish`` its record and totals (the
daemon's paged walk); ``audit`` does all of it in one read transaction, a snapshot, so that
what a repair acts on was true at one moment.  They find:

- **a bad record**: it does not decode, or it names another database than the id it is
  stored under (the id is ``hash_path`` of the names: the record was written, or moved, to
  the wrong key);
- **bad rows**: a row (or a long names' bucket, service/listing_tables.py) that does not
  decode, does not re-encode to its stored bytes (trailing or altered bytes the decoder
  skips), or sits in the wrong table (a deleted row among the live ones, or the reverse);
- **bad totals**: missing, undecodable, or not what the good rows add up to.

``mend`` removes exactly the bad entries found, each only if its bytes are still the ones
read (compare and delete), and rewrites the totals as the good rows add them up, only if the
stored totals are still the ones read: every row change that changes the totals rewrites
them in the same transaction (the brokers' ``_merge_rows``), so unchanged totals mean the
count still holds.  A database whose entries changed meanwhile is left for the next pass.
Nothing else is ever deleted: good rows stay even when the record goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import lmdb

from service.listing_tables import (
    SCOPE_BYTES,
    SHORT_NAME_BYTES,
    ListingTable,
    decode_bucket,
    successor_of_scope,
)

# A long names' bucket key: scope | 494 bytes of name | 0xFF (service/listing_tables.py).
BUCKET_KEY_BYTES = SCOPE_BYTES + SHORT_NAME_BYTES + 1


class Tally(Protocol):
    """Adds up the totals of a database's good rows, as the broker keeps them."""

    def add(self, row: Any) -> None: ...
    def totals(self) -> tuple[Any, ...]: ...


class DbKind(Protocol):
    """What the audit needs to know of one kind of database (replicator/container_auditor.py,
    replicator/account_auditor.py)."""

    kind: str  # "container": for logs and the quarantine directory (``containers``)
    db_file: str  # the device's LMDB environment: "containers.lmdb"
    tables: tuple[str, ...]  # every table of the environment (the broker's TABLES)
    records: str  # id -> record
    totals: str  # id -> totals
    live: str  # id | name -> live row
    tombstones: str  # id | name -> deleted row

    def record_path(self, db_id: bytes, record: bytes) -> str:
        """The database's path (``/a/c``); raises if the record is bad (the reason)."""

    def decode_row(self, name: bytes, value: bytes) -> Any:
        """The stored row; raises if it does not decode or re-encode to ``value``."""

    def row_deleted(self, row: Any) -> bool: ...
    def new_tally(self) -> Tally: ...
    def decode_totals(self, raw: bytes) -> tuple[Any, ...]: ...
    def encode_totals(self, totals: tuple[Any, ...]) -> bytes: ...

    def totals_hold(self, stored: tuple[Any, ...], found: tuple[Any, ...]) -> bool:
        """Whether the stored totals are right for the rows found (the tally's totals)."""

    def forget_sync_points(
        self, txn: lmdb.Transaction, tables: dict[str, Any], db_id: bytes
    ) -> None:
        """Make every peer send this database whole next time (after rows were removed)."""


@dataclass(frozen=True, slots=True)
class BadEntry:
    """An entry proven bad, as read: removed only if still these bytes."""

    table: str
    key: bytes  # the LMDB key (a record's id, a row's or a bucket's key)
    name: bytes | None  # the row's name (it may share a bucket key); None: the whole key
    value: bytes
    reason: str


@dataclass
class DbAudit:
    db_id: bytes
    path: str | None  # from the record; None if the record is bad
    record_bad: bool = False
    rows: int = 0  # good rows
    bad: list[BadEntry] = field(default_factory=list)
    totals_read: bytes | None = None  # the stored totals as read (the compare of ``mend``)
    totals_found: tuple[Any, ...] = ()  # what the good rows add up to
    totals_problem: str | None = None  # why the stored totals are not those; None: they are
    stopped: bool = False  # the walk stopped at a bad row: rows were left unread
    snapshot: bool = False  # every entry was read in one read transaction

    @property
    def bad_rows(self) -> int:
        return len(self.bad) - self.record_bad

    @property
    def failed(self) -> bool:
        return bool(self.bad) or self.totals_problem is not None

    def reasons(self) -> list[str]:
        found = [f"{entry.table} {_shown(entry)}: {entry.reason}" for entry in self.bad]
        if self.totals_problem is not None:
            found.append(self.totals_problem)
        return found


@dataclass
class Mended:
    removed: int = 0  # bad entries removed (each kept in quarantine first)
    totals_written: bool = False
    changed: bool = False  # something changed since the audit read it: left for next pass


@dataclass(frozen=True, slots=True)
class WalkAt:
    """Where a walk of a database's rows resumes: a table (0 live, 1 tombstones) and the
    last key read there (None: from its first)."""

    table: int = 0
    after: bytes | None = None


START = WalkAt()


def audit(
    kind: DbKind, txn: lmdb.Transaction, tables: dict[str, Any], db_id: bytes
) -> DbAudit | None:
    """Check one database in ``txn``, whole; None if it is gone (dropped since listed)."""
    found = DbAudit(db_id, None)
    tally = kind.new_tally()
    walk_page(kind, txn, tables, found, START, None, tally)
    found.snapshot = True
    return found if finish(kind, txn, tables, found, tally) else None


def finish(
    kind: DbKind, txn: lmdb.Transaction, tables: dict[str, Any], found: DbAudit, tally: Tally
) -> bool:
    """Check the record, and the totals against ``tally``; False if the database is gone."""
    record = txn.get(found.db_id, db=tables[kind.records])
    if record is None:
        return False
    check_record(kind, found, record)
    check_totals(kind, found, txn.get(found.db_id, db=tables[kind.totals]), tally)
    return True


def check_record(kind: DbKind, found: DbAudit, record: bytes) -> None:
    try:
        found.path = kind.record_path(found.db_id, record)
    except Exception as exc:  # any failure to read it is the record's fault: pure code
        found.bad.append(BadEntry(kind.records, found.db_id, None, bytes(record), _reason(exc)))
        found.record_bad = True


def check_row(
    kind: DbKind, found: DbAudit, table: str, entry: tuple[bytes, bytes | None, bytes], tally: Tally
) -> None:
    """Check one row of ``table``: added to ``tally`` if good, else to ``found.bad``."""
    key, name, value = entry
    problem = None
    if name is None:
        problem = "long-name bucket does not decode"
    else:
        try:
            row = kind.decode_row(name, value)
        except Exception as exc:  # any failure to read it is the row's fault: pure code
            problem = _reason(exc)
        else:
            live = table == kind.live
            if kind.row_deleted(row) == live:
                problem = "deleted row in the live table" if live else "live tombstone"
    if problem is not None:
        found.bad.append(BadEntry(table, key, name, bytes(value), problem))
        return
    tally.add(row)
    found.rows += 1


def check_totals(kind: DbKind, found: DbAudit, raw: bytes | None, tally: Tally) -> None:
    """Compare the stored totals (``raw``) with what ``tally`` added up."""
    found.totals_found = tally.totals()
    found.totals_read = None if raw is None else bytes(raw)
    found.totals_problem = _totals_problem(kind, found.totals_read, found.totals_found)


def walk_page(
    kind: DbKind,
    txn: lmdb.Transaction,
    tables: dict[str, Any],
    found: DbAudit,
    at: WalkAt,
    limit: int | None,
    tally: Tally,
) -> WalkAt | None:
    """Check the rows of up to ``limit`` keys (None: every one) from ``at``, the live table's
    then the tombstones'; where the next page starts, None once every row was read."""
    keys = 0
    for index, table in enumerate((kind.live, kind.tombstones)):
        if index < at.table:
            continue
        last = at.after if index == at.table else None
        for entry in scope_entries(txn, tables[table], found.db_id, after=last):
            if entry[0] != last:  # a bucket's rows share their key: a page never splits them
                if keys == limit:
                    return WalkAt(index, last)
                last, keys = entry[0], keys + 1
            check_row(kind, found, table, entry, tally)
    return None


def mend(kind: DbKind, txn: lmdb.Transaction, tables: dict[str, Any], found: DbAudit) -> Mended:
    """Remove ``found``'s bad entries and rewrite its totals, in ``txn``, each only if
    unchanged since the audit read it (module docstring)."""
    mended = Mended()
    for entry in found.bad:
        db = tables[entry.table]
        if entry.name is None:
            if txn.get(entry.key, db=db) != entry.value:
                mended.changed = True
                continue
            txn.delete(entry.key, db=db)
        else:
            rows = ListingTable(db)
            if rows.get(txn, found.db_id, entry.name) != entry.value:
                mended.changed = True
                continue
            rows.delete(txn, found.db_id, entry.name)
        mended.removed += 1
    if mended.removed:
        kind.forget_sync_points(txn, tables, found.db_id)
    if found.totals_problem is not None and not mended.changed:
        db = tables[kind.totals]
        if txn.get(found.db_id, db=db) != found.totals_read:
            mended.changed = True
        else:
            txn.put(found.db_id, kind.encode_totals(found.totals_found), db=db)
            mended.totals_written = True
    return mended


def scope_entries(
    txn: lmdb.Transaction, db: Any, scope: bytes, *, after: bytes | None = None
) -> Iterator[tuple[bytes, bytes | None, bytes]]:
    """Every row of ``scope`` in a listing table as ``(key, name, value)``, keys after
    ``after`` if given, the rows of a long names' bucket one by one under its key; an
    undecodable bucket as ``(key, None, bucket bytes)``."""
    cursor = txn.cursor(db=db)
    if not cursor.set_range(scope if after is None else after):
        return
    end = successor_of_scope(scope)
    for key, value in cursor.iternext():
        if end is not None and key >= end:
            return
        if key == after:
            continue
        if len(key) != BUCKET_KEY_BYTES:
            yield key, key[SCOPE_BYTES:], value
            continue
        try:
            bucket = decode_bucket(value)
        except Exception:
            yield key, None, value
            continue
        head = key[SCOPE_BYTES:-1]
        for suffix, row in bucket:
            yield key, head + suffix, row


def _totals_problem(kind: DbKind, raw: bytes | None, found: tuple[Any, ...]) -> str | None:
    if raw is None:
        return "no totals stored"
    try:
        stored = kind.decode_totals(raw)
    except Exception as exc:
        return f"totals do not decode: {_reason(exc)}"
    if not kind.totals_hold(tuple(stored), tuple(found)):
        return f"totals are {_shown_totals(stored)}, the rows add up to {_shown_totals(found)}"
    return None


def _shown_totals(totals: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(value) for value in totals) + ")"


def _shown(entry: BadEntry) -> str:
    if entry.name is None:
        return entry.key.hex()
    return repr(entry.name.decode("utf-8", errors="backslashreplace"))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
