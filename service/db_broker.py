"""What the account and container brokers do alike, written once: the plumbing under their
semantics (accountd/broker_base.py, containerd_/broker_base.py say what differs).

A database here is a *scope*: the 16-byte id (``hash_path`` of its names) that keys its info
record and totals and prefixes its rows.  A broker reads and writes a device's scopes through
a store (one device, one transaction) handed to ``_read``/``_write`` by the LMDB broker
(service/db_broker_lmdb.py) or its in-memory twin (service/db_broker_memory.py).  Every store
has ``get_info``, ``put_info``, ``get_totals``, ``put_totals``, ``get_row``, ``put_row`` and
``cursor``; an info has ``deleted`` and ``metadata``.  What is missing or deleted is raised as
the caller's own error (``not_found``), so each server keeps its error names.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from service.db_metadata import Metadata, check_metadata, check_metadata_limits, merge_metadata
from service.errors import BadInput
from service.listing import ListingQuery, RowView, ScopeCursor, encode_name, list_page
from service.timestamp import Timestamp

S = TypeVar("S")  # the store a broker's reads and writes see
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the info type
R = TypeVar("R")  # the row type
Tot = TypeVar("Tot")  # the totals type


class DbStore(Protocol[I, R, Tot]):
    """One device's databases of one kind, inside one transaction; ``scope``: a database's id."""

    def get_info(self, scope: bytes) -> I | None: ...
    def put_info(self, scope: bytes, info: I) -> None: ...  # all but the totals
    def get_totals(self, scope: bytes) -> Tot | None: ...
    def put_totals(self, scope: bytes, totals: Tot) -> None: ...
    def get_row(self, scope: bytes, name: bytes) -> R | None: ...
    def put_row(self, scope: bytes, name: bytes, old: R | None, new: R) -> None: ...
    def cursor(self, scope: bytes, view: RowView[R, Any]) -> ScopeCursor[Any]: ...
    # replication (each server's replication_broker.py): whole databases, rows by name
    def rows_after(self, scope: bytes, after: bytes | None, limit: int) -> list[R]: ...
    def drop(self, scope: bytes) -> None: ...


class DbBrokerBase(ABC, Generic[S]):
    def __init__(self, hash_secret: bytes) -> None:
        if not isinstance(hash_secret, bytes) or not hash_secret:
            raise ValueError("hash_secret must be non-empty bytes")
        self._secret = hash_secret
        self.listing_steps = 0  # rows visited by listings, for tests and benchmarks
        self._steps_lock = threading.Lock()  # listings may run in threads (run_read)

    @abstractmethod
    def _read(self, device: str, read: Callable[[S], T]) -> T: ...

    @abstractmethod
    async def _write(self, device: str, write: Callable[[S], T]) -> T: ...

    def close(self) -> None:  # not abstract: only the LMDB broker holds anything
        """Release what the broker holds; further calls are an error."""

    async def prepare_device(self, device: str) -> None:  # not abstract: the LMDB broker's
        """Open and check ``device`` off the event loop; errors are left to the next call."""

    async def run_read(self, read: Callable[[], T]) -> T:
        """Run ``read`` (a listing page, rendered) in a thread if the broker is thread-safe
        (LMDB); the memory twin runs it inline."""
        return read()

    def _info(
        self,
        device: str,
        scope: bytes,
        not_found: Callable[[], Exception],
        include_deleted: bool,
    ) -> Any:
        info = self._read(device, lambda store: store.get_info(scope))  # type: ignore[attr-defined]
        if info is None or (info.deleted and not include_deleted):
            raise not_found()
        return info

    async def _update_metadata(
        self, device: str, scope: bytes, metadata: Metadata, not_found: Callable[[], Exception]
    ) -> None:
        updates = check_metadata(metadata)

        def write(store: Any) -> None:
            info = store.get_info(scope)
            if info is None or info.deleted:
                raise not_found()
            store.put_info(scope, replace(info, metadata=merged_metadata(info.metadata, updates)))

        await self._write(device, write)

    def _list(
        self,
        device: str,
        scope: bytes,
        query: ListingQuery,
        view: RowView[Any, Any],
        not_found: Callable[[], Exception],
    ) -> list[Any]:
        """A page of a live scope's rows, read through ``view``; its steps counted."""

        def read(store: Any) -> list[Any]:
            info = store.get_info(scope)
            if info is None or info.deleted:
                raise not_found()
            cursor = store.cursor(scope, view)
            try:
                return list_page(cursor, query)
            finally:
                with self._steps_lock:
                    self.listing_steps += cursor.steps

        return self._read(device, read)


def merge_each(
    store: DbStore[Any, R, Any], scope: bytes, rows: Iterable[R], merge: Callable[[R, R], R]
) -> Iterator[tuple[R | None, R]]:
    """Merge each row into the stored one of its name and store the winner; yield each change
    as ``(old, new)``, for the caller to update its totals with (a replay yields nothing)."""
    for row in rows:
        name = row.name.encode("utf-8")  # type: ignore[attr-defined]
        old = store.get_row(scope, name)
        new = row if old is None else merge(old, row)
        if new == old:
            continue  # a replay: nothing to write
        store.put_row(scope, name, old, new)
        yield old, new


def merged_metadata(current: Metadata, updates: Metadata) -> Metadata:
    merged = merge_metadata(current, updates)
    check_metadata_limits(merged)  # raised in the write: it aborts, nothing is stored
    return merged


def check_timestamp(timestamp: Timestamp) -> None:
    if not isinstance(timestamp, Timestamp):
        raise BadInput(f"expected a Timestamp, not {timestamp!r}")


def check_db_name(name: str, what: str) -> None:
    """BadInput unless ``name`` can name an account or container (``what``)."""
    encode_name(name, f"{what} name")
    if "/" in name:
        raise BadInput(f"{what} name {name!r} must not hold '/'")
