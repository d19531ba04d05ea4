"""async_pending: an update that could not reach its target, kept for the updater to replay.

An object server saves one when a container server does not take an object row update in
time; a container server saves one when an account server does not take its report.  They
live in an LMDB table of the device's environment, written through its ``GroupCommitWriter``
(so saving one shares the fsync of the write it belongs to).

Key: ``<timestamp normal>_<offset: 16 hex>-<suffix: 16 hex>`` in ASCII.  Fixed width, so byte
order is timestamp order and the updater replays oldest first; the random suffix keeps two
updates with one timestamp apart.

Value, version 1: the byte ``0x01``, then JSON (compact, sorted keys, ASCII-only) of
``{"op", "account", "container", "obj" (null for an account report), "partition",
"targets": [[ip, port, device], ...], "headers": {name: value}, "timestamp": internal form}``.
A new version gets a new first byte; decoders of old versions stay.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import lmdb

from service.lmdb_writer import GroupCommitWriter
from service.timestamp import Timestamp

TABLE = b"async_pending"
VERSION_1 = b"\x01"
OPS = frozenset({"PUT", "DELETE"})
Target = tuple[str, int, str]  # (ip, port, device)


class AsyncPendingFormatError(ValueError):
    """Stored bytes that are not an async_pending this code can read."""


@dataclass(frozen=True)
class AsyncPending:
    op: str  # the update's method at the target
    account: str
    container: str
    obj: str | None  # None: a container's report to its account
    targets: tuple[Target, ...]  # the nodes still to be told
    partition: int  # the targets' partition
    headers: Mapping[str, str] = field(hash=False)  # X-Timestamp, X-Size, X-Etag, ...
    timestamp: Timestamp  # the write's X-Timestamp: the updater replays oldest first

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"async_pending op must be one of {sorted(OPS)}, got {self.op!r}")
        if not self.targets:
            raise ValueError("async_pending needs at least one target")
        # Read-only copies: a frozen record must not change under whoever holds it.
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "targets", tuple(tuple(t) for t in self.targets))

    @property
    def path(self) -> str:
        """The target path after ``/<device>/<partition>``."""
        names = [self.account, self.container] + ([self.obj] if self.obj is not None else [])
        return "/" + "/".join(names)


def encode(pending: AsyncPending) -> bytes:
    document = {
        "op": pending.op,
        "account": pending.account,
        "container": pending.container,
        "obj": pending.obj,
        "partition": pending.partition,
        "targets": [list(t) for t in pending.targets],
        "headers": dict(pending.headers),
        "timestamp": pending.timestamp.internal,
    }
    # ASCII with \u escapes: a header value aiohttp decoded with surrogateescape (bytes that
    # were not UTF-8) survives the round trip instead of failing to encode.
    text = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return VERSION_1 + text.encode("ascii")


def decode(data: bytes) -> AsyncPending:
    if data[:1] != VERSION_1:
        raise AsyncPendingFormatError(f"unknown async_pending version {data[:1]!r}")
    try:
        doc = json.loads(data[1:].decode("utf-8"))
        return AsyncPending(
            op=doc["op"],
            account=_str(doc["account"]),
            container=_str(doc["container"]),
            obj=None if doc["obj"] is None else _str(doc["obj"]),
            targets=tuple(_target(t) for t in doc["targets"]),
            partition=_int(doc["partition"]),
            headers={_str(k): _str(v) for k, v in doc["headers"].items()},
            timestamp=Timestamp.parse(_str(doc["timestamp"])),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AsyncPendingFormatError(f"bad async_pending record: {exc}") from exc


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"expected a non-negative integer, got {value!r}")
    return value


def _target(value: Any) -> Target:
    ip, port, device = value
    return (_str(ip), _int(port), _str(device))


def make_key(timestamp: Timestamp, suffix: int) -> bytes:
    return f"{timestamp.normal}_{timestamp.offset:016x}-{suffix:016x}".encode("ascii")


def open_table(env: lmdb.Environment) -> Any:
    """The async_pending table (created if absent).  Call at start-up, before the writer runs:
    creating a table takes LMDB's write lock."""
    return env.open_db(TABLE, create=True)


async def save(
    writer: GroupCommitWriter, table: Any, pending: AsyncPending, rng: random.Random
) -> bytes:
    """Store ``pending`` durably; its key.  ``rng`` is the process's seeded random source."""
    key = make_key(pending.timestamp, rng.getrandbits(64))
    value = encode(pending)
    await writer.submit(lambda txn: txn.put(key, value, db=table))
    return key


async def replace(writer: GroupCommitWriter, table: Any, key: bytes, pending: AsyncPending) -> None:
    """Keep ``key`` with a new record, e.g. fewer targets after a partial replay."""
    value = encode(pending)
    await writer.submit(lambda txn: txn.put(key, value, db=table))


async def delete(writer: GroupCommitWriter, table: Any, key: bytes) -> bool:
    """Forget ``key`` (replayed to every target); False if it was already gone."""
    return await writer.submit(lambda txn: txn.delete(key, db=table))


def list_pending(
    env: lmdb.Environment, table: Any, *, after: bytes = b"", limit: int = 1000
) -> list[tuple[bytes, AsyncPending | None]]:
    """Up to ``limit`` records with keys after ``after``, oldest first.

    A page at a time, so no read transaction stays open while the updater talks to other
    nodes (a long-lived LMDB reader stops freed pages being reused).  A record that cannot
    be decoded comes back as None: the caller counts it, logs it and deletes it.
    """
    page: list[tuple[bytes, AsyncPending | None]] = []
    with env.begin(db=table) as txn:
        cursor = txn.cursor()
        found = cursor.set_range(after)
        if found and after and cursor.key() == after:
            found = cursor.next()
        while found and len(page) < limit:
            key, value = cursor.item()
            try:
                page.append((key, decode(value)))
            except AsyncPendingFormatError:
                page.append((key, None))
            found = cursor.next()
    return page
