"""The container updater's reported points: what it last told the accounts about each
container, so that a pass sends nothing for a container that has not changed.

Swift keeps ``reported_put_timestamp``, ``reported_object_count``, ... in each container
database; here the container environment belongs to the container server, so the updater
keeps its own, ``<device>/container_updater.lmdb``, one table ``reported``:

- key: the container id (containerd_: the 16-byte hash of account and container);
- value, version 1: ``0x01`` then the 8-byte fingerprint (replicator/container_dbs.py) of the
  container's record and totals as they were when every account replica took the report.

Losing the file costs one report of every container, nothing more: the account keeps the
report with the greatest stats version (accountd/rows.py), so a repeated one changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from service.lmdb_devices import DeviceEnvs

FILE = "container_updater.lmdb"
TABLE = "reported"
VERSION_1 = b"\x01"
FINGERPRINT_BYTES = 8


def encode(fingerprint: bytes) -> bytes:
    if len(fingerprint) != FINGERPRINT_BYTES:
        raise ValueError(f"a fingerprint is {FINGERPRINT_BYTES} bytes, not {len(fingerprint)}")
    return VERSION_1 + fingerprint


def decode(value: bytes) -> bytes | None:
    """The fingerprint, or None for a value this code cannot read (then: report again)."""
    if value[:1] != VERSION_1 or len(value) != 1 + FINGERPRINT_BYTES:
        return None
    return value[1:]


class ReportedPoints:
    def __init__(self, devices_root: str, *, mount_check: bool) -> None:
        self._envs = DeviceEnvs(devices_root, FILE, (TABLE,), max_batch=16, mount_check=mount_check)

    def get_many(self, device: str, cids: Iterable[bytes]) -> dict[bytes, bytes]:
        """The fingerprints last reported for ``cids`` (absent: never reported)."""
        found = {}
        with self._envs.reading(device) as (txn, opened):
            table = opened.tables[TABLE]
            for cid in cids:
                value = txn.get(cid, db=table)
                fingerprint = None if value is None else decode(value)
                if fingerprint is not None:
                    found[cid] = fingerprint
        return found

    async def put_many(self, device: str, fingerprints: Mapping[bytes, bytes]) -> None:
        """Record that these were reported (one commit for the lot)."""
        values = {cid: encode(fp) for cid, fp in fingerprints.items()}

        def write(txn, opened) -> None:  # lmdb's types are untyped
            for cid, value in values.items():
                txn.put(cid, value, db=opened.tables[TABLE])

        await self._envs.write(device, write)

    def close(self) -> None:
        self._envs.close()
