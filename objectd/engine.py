"""ObjectEngine: the object server's storage ("diskfile"), one LMDB index per device.

The server calls it with names, partitions and timestamps and gets ObjectMetadata back;
nothing here knows HTTP.  See docs/design/storage.md for the layout and objectd/errors.py for
what each failure means to a client.  One engine per process per devices root: LMDB must not
open one environment twice in a process.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace

import lmdb

from service import async_pending
from service.async_pending import AsyncPending
from service.lmdb_writer import GroupCommitWriter
from service.timestamp import Timestamp

from . import hashes, index, layout, versions
from .checksum import check_range
from .device import DEFAULT_TMP_MAX_AGE_S, Device
from .devices import DeviceSet
from .errors import DiskFull
from .metadata import ObjectMetadata
from .reader import OpenVersion, data_file_path, open_version, read_body
from .writer import LmdbObjectWrite, unlink_replaced

DEFAULT_MAP_SIZE_BYTES = 1 << 40  # address space reserved per device, not disk used


class ObjectEngine:
    def __init__(
        self,
        devices_root: str,
        hash_secret: bytes,
        *,
        inline_max_bytes: int = 64 * 1024,
        block_size_bytes: int = 1 << 20,
        max_batch: int = 256,
        mount_check: bool = False,
        reclaim_age_s: float = 7 * 86400,
        clock: Callable[[], float] = time.time,
        map_size_bytes: int = DEFAULT_MAP_SIZE_BYTES,
        tmp_max_age_s: float = DEFAULT_TMP_MAX_AGE_S,
    ) -> None:
        if inline_max_bytes < 0 or block_size_bytes < 1 or max_batch < 1:
            raise ValueError("inline_max_bytes >= 0, block_size_bytes >= 1, max_batch >= 1")
        self.devices_root = devices_root
        self._secret = hash_secret
        self.inline_max_bytes = inline_max_bytes
        self.block_size_bytes = block_size_bytes
        self._max_batch = max_batch
        self.reclaim_age_s = reclaim_age_s
        self._clock = clock
        self._map_size_bytes = map_size_bytes
        self._tmp_max_age_s = tmp_max_age_s
        self._devices = DeviceSet(devices_root, mount_check=mount_check, opener=self._open)

    # -- PUT, GET, POST, DELETE ---------------------------------------------------------

    async def open_write(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        timestamp: Timestamp,
        *,
        content_length: int | None = None,
        checksum_footer: bool = False,
    ) -> LmdbObjectWrite:
        """Start a PUT; ObjectConflict now if a version as new is already stored.

        ``content_length`` is the object data's; ``checksum_footer``: see ObjectWrite."""
        dev, name, digest = await self._locate_async(device, partition, account, container, obj)
        versions.check_newer(self._newest(dev, partition, digest), timestamp)
        write = LmdbObjectWrite(
            dev,
            partition,
            digest,
            name,
            timestamp,
            content_length=content_length,
            inline_max_bytes=self.inline_max_bytes,
            block_size_bytes=self.block_size_bytes,
            checksum_footer=checksum_footer,
        )
        if content_length is not None and content_length > self.inline_max_bytes:
            try:
                await write.start_file()
            except BaseException:
                await write.abort()  # the caller never sees this write
                raise
        return write

    def get(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> ObjectMetadata:
        """The live version; ObjectNotFound (with the timestamp of a tombstone or expired one)."""
        dev, _name, digest = self._locate(device, partition, account, container, obj)
        return versions.live(self._newest(dev, partition, digest), self._clock())

    async def open_version(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> OpenVersion:
        """The live version with its body pinned, for a GET: an overwrite or DELETE that lands
        while it is read cannot take the body away.  Close it when done (``with``)."""
        dev, _name, digest = await self._locate_async(device, partition, account, container, obj)
        return await open_version(dev, partition, digest, self._clock())

    async def read(
        self, meta: ObjectMetadata, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the body, each block verified before any of it is yielded.

        Raises (while iterating) Quarantined if the body is corrupt, ObjectNotFound if the
        version was replaced since ``get`` (``open_version`` pins it instead: a GET's way).
        """
        start, end = check_range(meta.size_bytes, start, end)
        if meta.device is None or meta.partition is None or meta.body is None:
            raise ValueError("read() takes metadata of a stored body, as get() returns it")
        if start == end:
            return
        dev = self._device(meta.device)
        digest = layout.name_hash(self._secret, meta.name)
        async for chunk in read_body(dev, meta, digest, start, end):
            yield chunk

    def data_file_path(self, meta: ObjectMetadata) -> str | None:
        """The data file of a file-backed body (for sendfile of bytes already verified)."""
        if meta.device is None:
            return None
        dev = self._device(meta.device)
        return data_file_path(dev, meta, layout.name_hash(self._secret, meta.name))

    async def post(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        timestamp: Timestamp,
        content_type: str | None = None,
        user_meta: Mapping[str, str] | None = None,
        *,
        delete_at: int | None = None,
    ) -> ObjectMetadata:
        """Swift's fast-POST: replace the stored headers (not sysmeta) and X-Delete-At."""
        dev, _name, digest = await self._locate_async(device, partition, account, container, obj)
        checked = versions.check_user_meta(user_meta)
        versions.check_delete_at(delete_at)
        now = self._clock()

        def write(txn: lmdb.Transaction) -> ObjectMetadata:
            found = index.newest(txn, dev, partition, digest)
            current = found[1] if found else None
            new = versions.check_post(current, timestamp, content_type, checked, delete_at, now)
            assert found is not None  # check_post raised ObjectNotFound otherwise
            index.rewrite(txn, dev, found[0], new)
            return new

        return replace(await dev.submit(write), device=device, partition=partition)

    async def delete(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        timestamp: Timestamp,
    ) -> ObjectMetadata | None:
        """Store a tombstone; return the live version it replaced (None: nothing was there)."""
        dev, name, digest = await self._locate_async(device, partition, account, container, obj)
        now = self._clock()

        def write(txn: lmdb.Transaction) -> tuple[ObjectMetadata | None, list[ObjectMetadata]]:
            found = index.newest(txn, dev, partition, digest)
            current = found[1] if found else None
            tombstone, replaced = versions.check_delete(current, name, timestamp, now)
            removed = index.replace_versions(txn, dev, partition, digest, tombstone, None)
            return replaced, removed

        replaced, removed = await dev.submit(write)
        await unlink_replaced(layout.hash_dir(dev.path, partition, digest), removed, prune=True)
        return None if replaced is None else replace(replaced, device=device, partition=partition)

    # -- replication and operations -----------------------------------------------------

    async def suffix_hashes(
        self, device: str, partition: int, recalculate: Iterable[str] = ()
    ) -> dict[str, str]:
        """{suffix (3 hex digits): hash hex} for the partition's non-empty suffixes."""
        dev = await self._devices.get_async(device)
        layout.check_partition(partition)
        wanted = {layout.parse_suffix(s) for s in recalculate}
        return await hashes.suffix_hashes(dev, partition, wanted, self._clock(), self.reclaim_age_s)

    # -- async_pendings (container updates that failed), for the server and the updater --

    async def save_async_pending(
        self, device: str, pending: AsyncPending, rng: random.Random
    ) -> bytes:
        """Store ``pending`` durably on the object's device; its key."""
        dev = await self._devices.get_async(device)
        try:
            return await async_pending.save(dev.writer, dev.async_pending, pending, rng)
        except (lmdb.MapFullError, lmdb.DiskError) as exc:
            raise DiskFull(device, str(exc)) from exc

    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]:
        """Oldest first, keys after ``after``; None for a record that cannot be decoded."""
        dev = self._device(device)
        return async_pending.list_pending(dev.env, dev.async_pending, after=after, limit=limit)

    async def delete_async_pending(self, device: str, key: bytes) -> bool:
        dev = await self._devices.get_async(device)
        return await async_pending.delete(dev.writer, dev.async_pending, key)

    def quarantined_count(self, device: str) -> int:
        dev = self._device(device)
        with dev.env.begin() as txn:
            return index.quarantined(txn, dev)

    def writer(self, device: str) -> GroupCommitWriter:
        """The device's group-commit writer (its ``commits`` counter, for tests and bench)."""
        return self._device(device).writer

    def open_devices(self) -> list[str]:
        """Open every device present now (blocking: at start-up, in a worker thread)."""
        return self._devices.open_present()

    def reader_check(self) -> int:
        """Free the LMDB reader slots that dead processes left on the open devices."""
        return self._devices.reader_check()

    def close(self) -> None:
        self._devices.close()

    # -- internals ----------------------------------------------------------------------

    def _open(self, device: str, path: str) -> Device:
        return Device(
            device,
            path,
            map_size_bytes=self._map_size_bytes,
            max_batch=self._max_batch,
            tmp_max_age_s=self._tmp_max_age_s,
            now=self._clock(),
        )

    def _device(self, device: str) -> Device:
        return self._devices.get(device)

    def _locate(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> tuple[Device, str, bytes]:
        layout.check_partition(partition)
        return self._named(self._device(device), account, container, obj)

    async def _locate_async(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> tuple[Device, str, bytes]:
        layout.check_partition(partition)
        return self._named(await self._devices.get_async(device), account, container, obj)

    def _named(
        self, dev: Device, account: str, container: str, obj: str
    ) -> tuple[Device, str, bytes]:
        name = layout.object_name(account, container, obj)
        return dev, name, layout.name_hash(self._secret, name)

    def _newest(self, dev: Device, partition: int, digest: bytes) -> ObjectMetadata | None:
        with dev.env.begin() as txn:
            found = index.newest(txn, dev, partition, digest)
        if found is None:
            return None
        return replace(found[1], device=dev.name, partition=partition)
