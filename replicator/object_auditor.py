"""The object auditor: re-verifies stored bodies and quarantines the ones that fail, so that
replication restores a good copy (DESIGN.md, "Background daemons"; issue 5).

A GET verifies only the blocks it sends (objectd/reader.py), so a body nobody reads could rot
unnoticed until it is the last copy.  Each pass walks every local device's index in key order
— partition by partition, in pages read in short transactions (replicator/object_audit_checks.py)
— and checks every version that has a body, as a GET would check all of it:

- an inline body: its length, and each block's xxh3-64;
- a data file: that it exists, its length (fstat), then each block read and checked in turn;
- both: that the metadata names one checksum per block.

A body that fails is quarantined by objectd's own ``quarantine`` (a data file moves to
``<device>/quarantined/objects/<hash>/``, an inline body to the ``quarantine`` table; the index
entry goes, the device's counter goes up, and the suffix's cached REPLICATE hash is invalidated
in the same transaction), exactly as a GET that found it would: the replicas then disagree on
that suffix and the replicator (not built yet) pushes a good copy back.

The pace is bounded by ``bytes_per_s`` (bytes read and hashed) and ``objects_per_s`` (Swift's
``bytes_per_second`` and ``files_per_second``, with Swift's defaults); 0 is no limit.  Devices
are audited one after another, the throttles shared: the rates are this process's whole load.
Data files are read with a worker thread per block, and their pages dropped from the page cache
afterwards (as Swift's auditor does), so a pass over the disk does not evict what GETs keep hot.

Runs in its own process beside the object server (``torus serve object-auditor``), opening the
devices' LMDB environments itself as the object updater does (through ``objectd.device.Device``):
its one write, the quarantine, waits behind the server's behind the environment's write lock.

Cancellation is safe at any await: a block read in a worker thread ends before its fd is
closed, and a quarantine once started runs to its end (objectd/finishing.py), so a stopped pass
never leaves a body moved aside with its index entry still in place.  Where each device's pass
stopped is kept (replicator/object_audit_position.py), so a restarted auditor resumes there.

Left as they are (counted as errors and logged, never quarantined): a version whose metadata
does not decode (a GET of it fails too; the replicator will have to deal with it), and a read
error (EIO) — a disk in trouble is the drive checker's business, not a reason to drop data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from objectd.device import Device
from objectd.devices import DeviceSet
from objectd.engine import DEFAULT_MAP_SIZE_BYTES
from objectd.finishing import finish, run_to_end
from objectd.reader import quarantine
from service.config import ClusterConfig

from . import object_audit_checks as checks
from . import object_audit_position as position
from .config import DaemonConfig
from .daemon import Daemon
from .devices import local_devices
from .throttle import Throttle

INDEX_FILE = "objects.lmdb"  # objectd/device.py: a device the object server has used
PAGE_SIZE = 256  # index entries listed per read transaction
INLINE_BATCH = 64  # inline bodies checked per worker-thread call (and read transaction)
INLINE_BATCH_BYTES = 1 << 20  # ...or fewer, once they add up to this many bytes
PROGRESS_LOG_S = 3600.0  # a long pass logs its progress this often (Swift's log_time)
MAX_BATCH = 16  # the quarantine is the auditor's only write: a small writer queue will do


@dataclass(frozen=True)
class ObjectAuditorConfig(DaemonConfig):
    """``[object_auditor]``.  ``concurrency``, ``conn_timeout_s`` and ``node_timeout_s`` are
    the base class's and unused: the auditor sends no requests, and reads one body at a time."""

    interval_s: float = 30.0  # Swift's object auditor ``interval``
    bytes_per_s: float = 10_000_000.0  # Swift's ``bytes_per_second``; 0: no limit
    objects_per_s: float = 20.0  # Swift's ``files_per_second``; 0: no limit

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bytes_per_s < 0 or self.objects_per_s < 0:
            raise ValueError("bytes_per_s and objects_per_s must be >= 0")


@dataclass
class ObjectAuditorStats:
    devices: int = 0  # devices visited
    objects: int = 0  # versions with a body that were checked (passed or quarantined)
    bytes_verified: int = 0  # bytes read and hashed
    quarantined: int = 0  # bodies that failed: moved aside and dropped from the index
    errors: int = 0  # unusable devices, failed device passes, unreadable metadata, read errors
    gone: int = 0  # versions replaced or deleted between the listing and the check
    throttled_s: float = 0.0  # time spent waiting for the throttles
    elapsed_s: float = 0.0  # the pass's duration

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_verified / self.elapsed_s if self.elapsed_s > 0 else 0.0


def summary_line(name: str, stats: ObjectAuditorStats) -> str:
    """``object-auditor pass completed: 12.30s, 2 devices, 1000 objects, 524288000 bytes
    verified (42.6 MB/s), 1 quarantined, 0 errors, 0 gone, 10.20s throttled``."""
    return (
        f"{name} pass completed: {stats.elapsed_s:.2f}s, {stats.devices} devices, "
        f"{stats.objects} objects, {stats.bytes_verified} bytes verified "
        f"({stats.bytes_per_s / 1e6:.1f} MB/s), {stats.quarantined} quarantined, "
        f"{stats.errors} errors, {stats.gone} gone, {stats.throttled_s:.2f}s throttled"
    )


class ObjectAuditor(Daemon[ObjectAuditorStats]):
    name = "object-auditor"

    def __init__(
        self,
        config: ObjectAuditorConfig,
        devices: DeviceSet,
        *,
        bytes_throttle: Throttle | None = None,
        objects_throttle: Throttle | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(clock=clock, sleep=sleep)
        self.config = config
        self.devices = devices
        self.bytes_throttle = bytes_throttle or Throttle(config.bytes_per_s)
        self.objects_throttle = objects_throttle or Throttle(config.objects_per_s)
        self._progress_at = 0.0

    def summary(self, elapsed_s: float, stats: ObjectAuditorStats) -> str:
        """The pass's line with the rate reached (the pass times itself: ``stats.elapsed_s``)."""
        return summary_line(self.name, stats)

    async def sweep(self) -> ObjectAuditorStats:
        stats = ObjectAuditorStats()
        started = self._progress_at = self._clock()
        slept_before = self._slept_s()
        try:
            names, stats.errors = await asyncio.to_thread(
                local_devices, self.config.devices, INDEX_FILE, mount_check=self.config.mount_check
            )
            for name in names:
                stats.devices += 1
                try:
                    await self._audit_device(name, stats)
                except Exception:
                    stats.errors += 1
                    self.log.exception("object-auditor: device %s failed", name)
        finally:
            stats.elapsed_s = self._clock() - started
            stats.throttled_s = self._slept_s() - slept_before
        return stats

    def _slept_s(self) -> float:
        return self.bytes_throttle.slept_s + self.objects_throttle.slept_s

    async def _audit_device(self, name: str, stats: ObjectAuditorStats) -> None:
        dev = await self.devices.get_async(name)
        done_through = await asyncio.to_thread(position.load, dev.path)
        if done_through:
            self.log.info("device %s: resuming after %s", name, done_through.hex())
        saved_at = self._clock()
        try:
            while True:
                page = await asyncio.to_thread(checks.list_page, dev, done_through, PAGE_SIZE)
                for key in page.undecodable:
                    stats.errors += 1
                    self.log.error("device %s: metadata of %s does not decode", name, key.hex())
                await self._audit_page(dev, page.versions, stats)
                if page.last_key is None:
                    break
                done_through = page.last_key
                # Saved on the loop, here as below (where a cancelled task cannot await): a
                # hundred bytes, renamed into place, never fsynced.
                if self._clock() - saved_at >= position.CHECKPOINT_S:
                    position.save(dev.path, done_through)
                    saved_at = self._clock()
                self._log_progress(name, stats)
        except BaseException:
            # Stopped or failed: the next pass resumes after the last page audited whole.
            if done_through:
                position.save(dev.path, done_through)
            raise
        await asyncio.to_thread(position.clear, dev.path)

    def _log_progress(self, name: str, stats: ObjectAuditorStats) -> None:
        now = self._clock()
        if now - self._progress_at >= PROGRESS_LOG_S:
            self._progress_at = now
            self.log.info(
                "%s in progress on device %s: %d objects, %d bytes verified, %d quarantined, "
                "%d errors so far",
                self.name,
                name,
                stats.objects,
                stats.bytes_verified,
                stats.quarantined,
                stats.errors,
            )

    async def _audit_page(
        self, dev: Device, versions: list[checks.Listed], stats: ObjectAuditorStats
    ) -> None:
        batch: list[checks.Listed] = []
        batch_bytes = 0
        for listed in versions:
            if listed.meta.body != "inline":
                continue
            batch.append(listed)
            batch_bytes += listed.meta.size_bytes
            if len(batch) >= INLINE_BATCH or batch_bytes >= INLINE_BATCH_BYTES:
                await self._audit_inline(dev, batch, batch_bytes, stats)
                batch, batch_bytes = [], 0
        if batch:
            await self._audit_inline(dev, batch, batch_bytes, stats)
        for listed in versions:
            if listed.meta.body == "file":
                await self._audit_file(dev, listed, stats)

    async def _audit_inline(
        self, dev: Device, batch: list[checks.Listed], size_bytes: int, stats: ObjectAuditorStats
    ) -> None:
        await self.objects_throttle.wait(len(batch))
        await self.bytes_throttle.wait(size_bytes)
        for result in await asyncio.to_thread(checks.check_inline, dev, batch):
            if result.outcome == checks.GONE:
                stats.gone += 1
            elif result.outcome == checks.UNREADABLE:
                stats.errors += 1
                self.log.error(
                    "device %s: metadata of %s does not decode", dev.name, result.listed.key.hex()
                )
            else:
                stats.objects += 1
                stats.bytes_verified += result.size_bytes
                if result.outcome is not None:
                    await self._quarantine(dev, result.listed, result.outcome, None, stats)

    async def _audit_file(
        self, dev: Device, listed: checks.Listed, stats: ObjectAuditorStats
    ) -> None:
        meta = listed.meta
        await self.objects_throttle.wait()
        path = checks.data_file_path(dev, listed)
        try:
            fd, size = await _open_data_file(path)
        except FileNotFoundError:
            if await asyncio.to_thread(checks.still_indexed, dev, listed.key):
                stats.objects += 1
                await self._quarantine(dev, listed, "data file missing", None, stats)
            else:
                stats.gone += 1  # replaced or deleted since the page listed it
            return
        except OSError as exc:
            stats.errors += 1
            self.log.error("device %s: cannot open %s: %s", dev.name, path, exc)
            return
        stats.objects += 1
        try:
            problem = checks.metadata_problem(meta)
            if problem is None and size != meta.size_bytes:
                problem = f"data file is {size} bytes, not {meta.size_bytes}"
            if problem is None:
                problem = await self._verify_blocks(dev, fd, listed, stats)
            if problem is not None:
                await self._quarantine(dev, listed, problem, path, stats)
        except OSError as exc:
            stats.errors += 1
            self.log.error("device %s: cannot read %s: %s", dev.name, path, exc)
        finally:
            checks.close_data_file(fd)  # no block read is running: each ran to its end

    async def _verify_blocks(
        self, dev: Device, fd: int, listed: checks.Listed, stats: ObjectAuditorStats
    ) -> str | None:
        """The first block that fails, as a quarantine reason; None if every one is good."""
        meta = listed.meta
        block = meta.block_size_bytes
        for number in range(checks.block_count(meta)):
            await self.bytes_throttle.wait(min(block, meta.size_bytes - number * block))
            # To its end through a cancellation: the caller closes the fd once we return.
            good, read = await finish(
                asyncio.to_thread(checks.read_block_matches, fd, meta, number)
            )
            stats.bytes_verified += read
            if not good:
                return f"block {number} failed its checksum"
        return None

    async def _quarantine(
        self,
        dev: Device,
        listed: checks.Listed,
        reason: str,
        path: str | None,
        stats: ObjectAuditorStats,
    ) -> None:
        # Run to its end though the pass be cancelled: the file moved aside but the index
        # entry kept would be a "data file missing" for the next GET to find.
        await finish(quarantine(dev, listed.meta, listed.key, listed.digest, reason, path))
        stats.quarantined += 1


async def _open_data_file(path: str) -> tuple[int, int]:
    """(fd, size), opened in a worker thread; a cancelled open closes what it opened."""
    task, cancelled = await run_to_end(asyncio.to_thread(checks.open_data_file, path))
    if cancelled:
        if not task.cancelled() and task.exception() is None:
            checks.close_data_file(task.result()[0])
        raise asyncio.CancelledError()
    return task.result()


def open_device(name: str, path: str) -> Device:
    """A device as the object server opens it (objectd/engine.py's ``_open``)."""
    return Device(
        name, path, map_size_bytes=DEFAULT_MAP_SIZE_BYTES, max_batch=MAX_BATCH, now=time.time()
    )


@contextlib.asynccontextmanager
async def open_object_auditor(
    config: ObjectAuditorConfig, cluster: ClusterConfig | None = None
) -> AsyncIterator[ObjectAuditor]:
    """The daemon with its devices, closed on exit (``torus serve object-auditor``).

    ``cluster`` is unused: the auditor needs no ring and no secret (an index key holds the
    name hash, the metadata the name)."""
    devices = DeviceSet(str(config.devices), mount_check=config.mount_check, opener=open_device)
    try:
        yield ObjectAuditor(config, devices)
    finally:
        await asyncio.to_thread(devices.close)
