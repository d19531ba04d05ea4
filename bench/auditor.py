"""How fast the object auditor verifies bodies with no throttle (issue 5 wants the figure).

    .venv/bin/python bench/auditor.py [--large 64x8MiB] [--small 20000x16KiB] [--keep DIR]

Stores the objects with the real engine (objectd.engine.ObjectEngine, default settings: 1 MiB
checksum blocks, inline bodies up to 64 KiB) on one device per kind, closes it, then runs
passes of the auditor (``bytes_per_s = objects_per_s = 0``) over each kind in this process:

- ``warm``: every file read once first, so bodies are in the page cache;
- ``cold``: after ``posix_fadvise(DONTNEED)`` on every data file and on the LMDB file (only
  our own files leave the page cache; nothing system-wide is dropped).  The auditor drops each
  data file's pages after reading it, so for data files this is its steady state.

Per pass: bytes verified per second, objects per second, and the process's CPU seconds
(user + system, every thread) per GB verified.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from objectd.engine import ObjectEngine  # noqa: E402  (the repo, on the path just above)
from replicator.object_auditor import (  # noqa: E402
    ObjectAuditorConfig,
    ObjectAuditorStats,
    open_object_auditor,
)
from service.timestamp import Timestamp  # noqa: E402

DEVICE = "sda"
SECRET = b"torus-bench"
PUTS_IN_FLIGHT = 32  # concurrent PUTs while filling (the writer commits them in groups)


def parse_set(text: str) -> tuple[int, int]:
    """``64x8MiB`` -> (64, 8 MiB); sizes in B, KiB or MiB."""
    count, _, size = text.partition("x")
    units = {"MiB": 1 << 20, "KiB": 1 << 10, "B": 1}
    for unit, factor in units.items():
        if size.endswith(unit):
            return int(count), int(size[: -len(unit)]) * factor
    raise argparse.ArgumentTypeError(f"{text!r}: COUNTxSIZE, SIZE in B, KiB or MiB")


async def fill(root: Path, count: int, size_bytes: int) -> None:
    (root / DEVICE).mkdir(parents=True, exist_ok=True)
    engine = ObjectEngine(str(root), SECRET)
    block = os.urandom(1 << 20)  # bodies differ only by a prefix: hashing cost is the same
    slots = asyncio.Semaphore(PUTS_IN_FLIGHT)
    t0 = time.time()

    async def put(i: int) -> None:
        async with slots:
            body = (i.to_bytes(8, "big") + block * (size_bytes // len(block) + 1))[:size_bytes]
            ts = Timestamp.from_seconds(t0 + i / 1e5)
            write = await engine.open_write(
                DEVICE, i % 1024, "AUTH_bench", "c", f"o{i}", ts, content_length=size_bytes
            )
            await write.write(body)
            await write.commit("application/octet-stream")

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(count):
                group.create_task(put(i))
    finally:
        engine.close()


def preload(root: Path) -> None:
    """Read every file once, so that the warm pass finds them in the page cache."""
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 20):
                    pass


def evict(root: Path) -> None:
    """Drop our files' pages from the page cache (they are clean: every write was fsynced)."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def disk_read_bytes() -> int:
    """Bytes this process made the kernel fetch from storage (page cache misses)."""
    with open("/proc/self/io") as f:
        fields = dict(line.split(": ") for line in f.read().splitlines())
    return int(fields["read_bytes"])


async def one_pass(root: Path) -> tuple[ObjectAuditorStats, float, int]:
    config = ObjectAuditorConfig(devices=root, mount_check=False, bytes_per_s=0, objects_per_s=0)
    async with open_object_auditor(config) as auditor:
        await auditor.devices.get_async(DEVICE)  # opened outside the timed pass
        cpu, disk = cpu_s(), disk_read_bytes()
        stats = await auditor.run_once()
        return stats, cpu_s() - cpu, disk_read_bytes() - disk


def report(kind: str, state: str, stats: ObjectAuditorStats, cpu: float, disk: int) -> None:
    gb = stats.bytes_verified / 1e9
    print(
        f"{kind:6} {state:5} {stats.objects:7d} objects {stats.bytes_verified / 1e6:9.1f} MB "
        f"in {stats.elapsed_s:6.2f}s: {stats.bytes_per_s / 1e6:8.1f} MB/s, "
        f"{stats.objects / stats.elapsed_s:8.0f} objects/s, CPU {cpu:.2f}s "
        f"({cpu / gb if gb else float('nan'):.2f} CPU s/GB), {disk / 1e6:.1f} MB from disk, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=parse_set, default=(64, 8 << 20), help="COUNTxSIZE")
    parser.add_argument("--small", type=parse_set, default=(20000, 16 << 10), help="COUNTxSIZE")
    parser.add_argument("--keep", type=Path, help="fill (once) and keep the data here")
    args = parser.parse_args()
    data = args.keep or Path(tempfile.mkdtemp(prefix="torus-auditor-bench-"))
    try:
        for kind, (count, size) in (("large", args.large), ("small", args.small)):
            root = data / kind
            if not (root / DEVICE / "objects.lmdb").exists():
                started = time.monotonic()
                asyncio.run(fill(root, count, size))
                print(f"filled {kind}: {count} x {size} B in {time.monotonic() - started:.1f}s")
            preload(root)
            report(kind, "warm", *asyncio.run(one_pass(root)))
            evict(root)
            report(kind, "cold", *asyncio.run(one_pass(root)))
    finally:
        if args.keep is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
