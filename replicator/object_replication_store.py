"""What the object replicator reads and removes on a local device, below the engine's calls.

``ObjectEngine`` offers suffix hashes, reads and writes by name, but no way to list a
partition's versions, nor to drop a handoff partition once its primaries hold it.  These
functions do both on the device's LMDB environment, in the engine's own process (LMDB must not
be opened twice in a process): reads in read transactions, removals through the device's
writer, with the index helpers the engine's writes use, so every removal drops its suffix's
cached hash in the same transaction.

``device()`` reaches into the engine for its ``Device``: a public ``ObjectEngine.device(name)``
would remove that coupling (objectd/ is owned elsewhere; noted in docs/design/daemons.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import lmdb

from objectd import index, layout
from objectd.device import Device
from objectd.engine import ObjectEngine
from objectd.metadata import ObjectMetadata, decode
from objectd.writer import unlink_replaced


async def device(engine: ObjectEngine, name: str) -> Device:
    return await engine._devices.get_async(name)  # private: see the module docstring


def partitions(dev: Device) -> list[int]:
    """The partitions the device's index holds, ascending: one seek per partition."""
    found = []
    with dev.env.begin() as txn:
        cursor = txn.cursor(db=dev.index)
        positioned = cursor.first()
        while positioned:
            partition = layout.key_partition(cursor.key())
            found.append(partition)
            if partition >= layout.MAX_PARTITION:
                break
            positioned = cursor.set_range(layout.partition_prefix(partition + 1))
    return found


@dataclass(frozen=True, slots=True)
class Version:
    key: bytes  # its index key
    value: bytes  # its encoded metadata, as stored: a removal checks it is unchanged
    meta: ObjectMetadata


def versions(dev: Device, partition: int, suffixes: set[int] | None = None) -> list[Version]:
    """The versions stored in the partition (in ``suffixes`` only, if given), in key order.

    Blocking: call it in a worker thread.  The whole list is in memory: a partition's
    metadata, not its bodies (a few hundred bytes per object).
    """
    if suffixes is None:
        prefixes = [layout.partition_prefix(partition)]
    else:
        prefixes = [layout.suffix_prefix(partition, s) for s in sorted(suffixes)]
    found = []
    with dev.env.begin() as txn:
        cursor = txn.cursor(db=dev.index)
        for prefix in prefixes:
            if not cursor.set_range(prefix):
                continue
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                found.append(Version(key, value, decode(value)))
    return found


async def remove_pushed(dev: Device, partition: int, pushed: list[Version]) -> bool:
    """Drop the versions of a handoff partition its primaries now hold; whether the
    partition is gone from the device.

    A version is dropped only if it is still stored as it was read: one written since (a
    newer PUT or DELETE that landed here meanwhile) stays for the next pass.
    """

    def remove(txn: lmdb.Transaction) -> tuple[list[Version], bool]:
        removed = []
        for version in pushed:
            if txn.get(version.key, db=dev.index) != version.value:
                continue
            index.remove_version(txn, dev, version.key, keep_body=False)
            removed.append(version)
        prefix = layout.partition_prefix(partition)
        cursor = txn.cursor(db=dev.index)
        empty = not (cursor.set_range(prefix) and cursor.key().startswith(prefix))
        if empty:  # the partition's cached suffix hashes go with it
            hashes = txn.cursor(db=dev.hashes)
            while hashes.set_range(prefix) and hashes.key().startswith(prefix):
                hashes.delete()
        return removed, empty

    removed, empty = await dev.submit(remove)
    by_dir: dict[str, list[ObjectMetadata]] = {}
    for version in removed:
        digest = layout.key_name_hash(version.key)
        by_dir.setdefault(layout.hash_dir(dev.path, partition, digest), []).append(version.meta)
    for hash_dir, metas in by_dir.items():
        # The index entries are gone (durably): the data files are garbage now.
        await unlink_replaced(hash_dir, metas, prune=True)
    # ``objects/<partition>`` itself stays: the object server remembers partition
    # directories as durable once made (objectd/device.py), so it must never vanish.
    return empty
