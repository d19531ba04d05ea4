"""MemoryObjectEngine: the in-memory twin of ObjectEngine, for tests of the layers above.

Same API, same rules (objectd/versions.py), same metadata and errors; bodies live in dicts.
Devices are names in a set: ``set_available(device, False)`` stands in for an unmounted disk.
It keeps the inline/file distinction in metadata (so both engines return equal metadata) but
has no files: ``data_file_path`` is always None.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from service import async_pending
from service.async_pending import AsyncPending
from service.timestamp import Timestamp

from . import layout, versions
from .checksum import block_matches, blocks_touched, check_range
from .errors import DeviceUnavailable, ObjectNotFound, Quarantined
from .hashes import hash_by_suffix
from .metadata import ObjectMetadata
from .upload import ObjectWrite
from .version_handle import OpenVersion

_Name = tuple[int, bytes]  # (partition, name hash)
_Version = tuple[int, bytes, Timestamp]


@dataclass
class _MemoryDevice:
    current: dict[_Name, ObjectMetadata] = field(default_factory=dict)
    bodies: dict[_Version, bytes] = field(default_factory=dict)
    quarantine: list[bytes] = field(default_factory=list)
    quarantined: int = 0
    async_pending: dict[bytes, bytes] = field(default_factory=dict)  # key → encoded record


class MemoryObjectWrite(ObjectWrite):
    def __init__(
        self, engine: MemoryObjectEngine, device: str, partition: int, name: str, **kw
    ) -> None:
        super().__init__(name, **kw)
        self._engine = engine
        self._device = device
        self._partition = partition
        self._chunks: list[bytes | memoryview] = []

    async def _received(self, data: bytes | memoryview) -> None:
        self._chunks.append(data)

    async def _store(self, meta: ObjectMetadata) -> ObjectMetadata:
        await asyncio.sleep(0)  # let concurrent writers interleave, as real commits do
        try:
            return self._engine._store_put(
                self._device, self._partition, meta, b"".join(self._chunks)
            )
        finally:
            self._chunks = []

    async def _discard(self) -> None:
        self._chunks = []


class MemoryObjectEngine:
    def __init__(
        self,
        devices: Iterable[str],
        hash_secret: bytes,
        *,
        inline_max_bytes: int = 64 * 1024,
        block_size_bytes: int = 1 << 20,
        reclaim_age_s: float = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = hash_secret
        self.inline_max_bytes = inline_max_bytes
        self.block_size_bytes = block_size_bytes
        self.reclaim_age_s = reclaim_age_s
        self._clock = clock
        self._devices = {name: _MemoryDevice() for name in devices}
        self._available = set(self._devices)

    def set_available(self, device: str, available: bool) -> None:
        self._devices.setdefault(device, _MemoryDevice())
        (self._available.add if available else self._available.discard)(device)

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
    ) -> MemoryObjectWrite:
        dev, name, digest = self._locate(device, partition, account, container, obj)
        versions.check_newer(dev.current.get((partition, digest)), timestamp)
        return MemoryObjectWrite(
            self,
            device,
            partition,
            name,
            timestamp=timestamp,
            content_length=content_length,
            inline_max_bytes=self.inline_max_bytes,
            block_size_bytes=self.block_size_bytes,
            checksum_footer=checksum_footer,
        )

    def get(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> ObjectMetadata:
        dev, _name, digest = self._locate(device, partition, account, container, obj)
        current = dev.current.get((partition, digest))
        return versions.live(self._attach(current, device, partition), self._clock())

    async def read(
        self, meta: ObjectMetadata, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        start, end = check_range(meta.size_bytes, start, end)
        if meta.device is None or meta.partition is None or meta.body is None:
            raise ValueError("read() takes metadata of a stored body, as get() returns it")
        if start == end:
            return
        dev = self._dev(meta.device)
        version = (meta.partition, layout.name_hash(self._secret, meta.name), meta.timestamp)
        body = dev.bodies.get(version)
        if body is None:
            raise ObjectNotFound("the version was replaced while being read")
        async for chunk in self._serve(dev, version, meta, body, start, end):
            yield chunk

    async def open_version(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> OpenVersion:
        meta = self.get(device, partition, account, container, obj)
        dev = self._dev(device)
        version = (partition, layout.name_hash(self._secret, meta.name), meta.timestamp)
        body = dev.bodies.get(version, b"")
        return OpenVersion(meta, functools.partial(self._serve, dev, version, meta, body))

    async def _serve(
        self,
        dev: _MemoryDevice,
        version: _Version,
        meta: ObjectMetadata,
        body: bytes,
        start: int,
        end: int,
    ) -> AsyncIterator[bytes]:
        size = meta.block_size_bytes
        for number in blocks_touched(start, end, size):
            block = body[number * size : (number + 1) * size]
            if len(body) != meta.size_bytes or not block_matches(meta.block_hashes, number, block):
                raise self._quarantine(dev, version, f"block {number} failed its checksum")
            offset = number * size
            yield block[max(start, offset) - offset : min(end, offset + len(block)) - offset]

    def data_file_path(self, meta: ObjectMetadata) -> str | None:
        return None

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
        dev, _name, digest = self._locate(device, partition, account, container, obj)
        checked = versions.check_user_meta(user_meta)
        versions.check_delete_at(delete_at)
        await asyncio.sleep(0)
        current = dev.current.get((partition, digest))
        now = self._clock()
        new = versions.check_post(current, timestamp, content_type, checked, delete_at, now)
        dev.current[(partition, digest)] = new
        return self._attach(new, device, partition)

    async def delete(
        self,
        device: str,
        partition: int,
        account: str,
        container: str,
        obj: str,
        timestamp: Timestamp,
    ) -> ObjectMetadata | None:
        dev, name, digest = self._locate(device, partition, account, container, obj)
        await asyncio.sleep(0)
        current = dev.current.get((partition, digest))
        tombstone, replaced = versions.check_delete(current, name, timestamp, self._clock())
        self._replace(dev, partition, digest, tombstone, None)
        return self._attach(replaced, device, partition)

    async def suffix_hashes(
        self, device: str, partition: int, recalculate: Iterable[str] = ()
    ) -> dict[str, str]:
        dev = self._dev(device)
        layout.check_partition(partition)
        for suffix in recalculate:
            layout.parse_suffix(suffix)  # nothing is cached: only check the argument
        now = self._clock()
        for (part, digest), meta in list(dev.current.items()):
            if part == partition and versions.is_reclaimable(meta, now, self.reclaim_age_s):
                del dev.current[(part, digest)]
        return hash_by_suffix((d, m) for (part, d), m in dev.current.items() if part == partition)

    async def save_async_pending(
        self, device: str, pending: AsyncPending, rng: random.Random
    ) -> bytes:
        dev = self._dev(device)
        await asyncio.sleep(0)
        key = async_pending.make_key(pending.timestamp, rng.getrandbits(64))
        dev.async_pending[key] = async_pending.encode(pending)
        return key

    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]:
        dev = self._dev(device)
        keys = sorted(k for k in dev.async_pending if k > after)[:limit]
        return [(k, _decode_pending(dev.async_pending[k])) for k in keys]

    async def delete_async_pending(self, device: str, key: bytes) -> bool:
        return self._dev(device).async_pending.pop(key, None) is not None

    def quarantined_count(self, device: str) -> int:
        return self._dev(device).quarantined

    def close(self) -> None:
        pass

    def corrupt_body_for_test(self, meta: ObjectMetadata, offset: int = 0) -> None:
        """Test hook: flip the bits of one stored byte, as a failing disk would."""
        assert meta.device is not None and meta.partition is not None
        digest = layout.name_hash(self._secret, meta.name)
        version = (meta.partition, digest, meta.timestamp)
        body = bytearray(self._dev(meta.device).bodies[version])
        body[offset] ^= 0xFF
        self._dev(meta.device).bodies[version] = bytes(body)

    # -- internals ----------------------------------------------------------------------

    def _store_put(
        self, device: str, partition: int, meta: ObjectMetadata, body: bytes
    ) -> ObjectMetadata:
        dev = self._dev(device)
        digest = layout.name_hash(self._secret, meta.name)
        merged = versions.check_put(dev.current.get((partition, digest)), meta)
        self._replace(dev, partition, digest, merged, body)
        return self._attach(merged, device, partition)

    def _replace(
        self,
        dev: _MemoryDevice,
        partition: int,
        digest: bytes,
        meta: ObjectMetadata,
        body: bytes | None,
    ) -> None:
        old = dev.current.get((partition, digest))
        if old is not None:
            dev.bodies.pop((partition, digest, old.timestamp), None)
        dev.current[(partition, digest)] = meta
        if body is not None:
            dev.bodies[(partition, digest, meta.timestamp)] = body

    def _quarantine(self, dev: _MemoryDevice, version: _Version, reason: str) -> Quarantined:
        partition, digest, timestamp = version
        current = dev.current.get((partition, digest))
        if current is not None and current.timestamp == timestamp:
            del dev.current[(partition, digest)]
            dev.quarantine.append(dev.bodies.pop(version))
            dev.quarantined += 1
        return Quarantined(f"quarantined: {reason}")

    def _dev(self, device: str) -> _MemoryDevice:
        if device not in self._available:
            raise DeviceUnavailable(device, "not mounted")
        return self._devices[device]

    def _locate(
        self, device: str, partition: int, account: str, container: str, obj: str
    ) -> tuple[_MemoryDevice, str, bytes]:
        layout.check_partition(partition)
        dev = self._dev(device)
        name = layout.object_name(account, container, obj)
        return dev, name, layout.name_hash(self._secret, name)

    @staticmethod
    def _attach(meta: ObjectMetadata | None, device: str, partition: int) -> ObjectMetadata | None:
        return None if meta is None else replace(meta, device=device, partition=partition)


def _decode_pending(data: bytes) -> AsyncPending | None:
    try:
        return async_pending.decode(data)
    except async_pending.AsyncPendingFormatError:
        return None
