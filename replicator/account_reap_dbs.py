"""A device's account databases as the account reaper reads them: read-only, beside the
running account server.

The account broker (accountd/broker.py) keeps every account of a device in one LMDB
environment, ``<device>/accounts.lmdb``, and offers no way to walk its accounts; the reaper
needs one.  It opens the environment ``readonly`` (with the lock file, so its read
transactions hold reader slots like the server's own and never see pages a writer reuses)
and reads the broker's ``accounts`` table (id -> record: accountd/info.py's format) and its
``containers`` table (``id | container name`` -> the live container row:
service/listing_tables.py; a container name is at most 256 bytes, far below the 494 at
which a key becomes a long-name bucket).  It writes nothing: what the reaper changes, it
changes through the servers' HTTP API, as Swift's reaper does with direct requests.

A page per read transaction, so no reader stays open while the reaper talks to other nodes
(an open reader pins every page the server rewrites meanwhile).  Should accountd grow a
public ``iter_accounts(device, after, limit)``, this module shrinks to calls of it.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import lmdb

from accountd.info import decode_record
from ring.placement import hash_path
from service.listing_tables import SCOPE_BYTES, SHORT_NAME_BYTES
from service.timestamp import Timestamp

DB_FILE = "accounts.lmdb"  # accountd/broker.py's name for a device's environment
RECORDS, CONTAINERS = b"accounts", b"containers"  # accountd/broker.py's TABLES
_MAX_DBS = 8  # the broker's four tables and then some
NO_TOTALS = (0, 0, 0)  # the reaper needs no totals: only names and timestamps
log = logging.getLogger("torus.account-reaper")


@dataclass(frozen=True, slots=True)
class DeletedAccount:
    account: str
    delete_timestamp: Timestamp


class AccountDbs:
    """Read-only views of each device's ``accounts.lmdb``, opened on first use and kept
    open (one environment per device per process: LMDB forbids opening one twice)."""

    def __init__(self, devices_root: Path, hash_secret: bytes) -> None:
        self._root = devices_root
        self._secret = hash_secret
        self._envs: dict[str, lmdb.Environment] = {}
        self._lock = threading.Lock()  # pages are read in worker threads

    def scan_deleted(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> tuple[list[DeletedAccount], bytes | None]:
        """(the deleted accounts among up to ``limit`` accounts with ids after ``after``, the
        last id read; None once the table is done).  Blocking: call it in a worker thread."""
        env = self._env(device)
        found: list[DeletedAccount] = []
        last: bytes | None = None
        with env.begin() as txn:
            if txn.get(RECORDS) is None:  # a named table is a key of the main one
                return found, None
            cursor = txn.cursor(db=env.open_db(RECORDS, txn=txn, create=False))
            more = cursor.set_range(after)
            if more and after and cursor.key() == after:
                more = cursor.next()
            read = 0
            while more and read < limit:
                last, record = cursor.item()
                read += 1
                try:
                    info = decode_record(record, NO_TOTALS)
                except (ValueError, KeyError) as exc:
                    # One record this code cannot read must not stop the device's others.
                    log.warning("account %s on %s cannot be read: %s", last.hex(), device, exc)
                else:
                    if info.deleted:
                        found.append(DeletedAccount(info.account, info.delete_timestamp))
                more = cursor.next()
        return found, (last if more else None)

    def live_containers(
        self, device: str, account: str, *, after: str = "", limit: int = 1000
    ) -> list[str]:
        """Up to ``limit`` names of the account's live containers after ``after``, in name
        order.  Blocking: call it in a worker thread."""
        aid = hash_path(self._secret, account)
        env = self._env(device)
        names: list[str] = []
        with env.begin() as txn:
            if txn.get(CONTAINERS) is None:
                return names
            cursor = txn.cursor(db=env.open_db(CONTAINERS, txn=txn, create=False))
            start = aid + after.encode("utf-8")
            more = cursor.set_range(start)
            if more and after and cursor.key() == start:
                more = cursor.next()
            while more and len(names) < limit:
                key = cursor.key()
                if key[:SCOPE_BYTES] != aid:
                    break
                name = key[SCOPE_BYTES:]
                if len(name) > SHORT_NAME_BYTES:  # a long-name bucket: no container has one
                    raise ValueError(f"account {account!r}: unexpected long container key")
                names.append(name.decode("utf-8"))
                more = cursor.next()
        return names

    def _env(self, device: str) -> lmdb.Environment:
        with self._lock:
            env = self._envs.get(device)
            if env is None:
                path = os.path.join(self._root, device, DB_FILE)
                env = lmdb.open(path, readonly=True, max_dbs=_MAX_DBS, readahead=False)
                self._envs[device] = env
            return env

    def close(self) -> None:
        with self._lock:
            envs, self._envs = list(self._envs.values()), {}
        for env in envs:
            env.close()
