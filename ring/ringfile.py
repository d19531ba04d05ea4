"""The ring file: what every server loads to place names on devices.

Layout (byte-level spec in docs/formats/ring.md)::

    b"TORUSRNG" | u16 BE format version | zlib(body)
    body = u32 BE header length | header JSON | rows (little-endian uint32)

The header holds ``part_power``, ``replicas``, ``version``, ``builder_id``,
``devices`` (``Device.to_dict()`` or null for a hole) and ``row_lengths``.
The hash secret is never in the file: it comes from the cluster config.

Old format versions stay readable: each has a decoder in ``_DECODERS`` and
``encode`` always writes ``FORMAT_VERSION``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from ring import fileformat
from ring.errors import RingFormatError, RingValidationError
from ring.placement import check_part_power
from ring.state import DEV_ID_TYPECODE, RingData, row_lengths

MAGIC = b"TORUSRNG"
FORMAT_VERSION = 1
KIND = "ring file"
_V1_KEYS = frozenset(("part_power", "replicas", "version", "builder_id", "devices", "row_lengths"))


def check_ring_data(ring_data: RingData, error: type[Exception], kind: str = "ring") -> None:
    """Raise ``error`` unless ``ring_data`` is a ring a server can use.

    Shared by ``encode`` (``RingValidationError``: never write a bad ring),
    ``decode`` (``RingFormatError``: the file is bad) and ``Ring``.
    """
    try:
        check_part_power(ring_data.part_power)
    except ValueError as exc:
        raise error(f"{kind}: {exc}") from None
    replicas = ring_data.replicas
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, (int, float))
        or not math.isfinite(replicas)
        or replicas < 1
    ):
        raise error(f"{kind}: replicas must be a finite number >= 1, not {replicas!r}")
    version = ring_data.version
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise error(f"{kind}: version must be a non-negative integer, not {version!r}")
    if not isinstance(ring_data.builder_id, str):
        raise error(f"{kind}: builder_id must be a string, not {ring_data.builder_id!r}")
    for index, dev in enumerate(ring_data.devices):
        if dev is not None and dev.id != index:
            raise error(f"{kind}: device at index {index} has id {dev.id}")
    rows = ring_data.replica2part2dev
    expected = row_lengths(ring_data.part_power, replicas)
    actual = [len(row) for row in rows]
    if actual != expected:
        raise error(
            f"{kind}: rows have lengths {actual[:8]}, expected {expected[:8]} for "
            f"part_power {ring_data.part_power} and {replicas} replicas"
        )
    for row in rows:
        if getattr(row, "typecode", None) != DEV_ID_TYPECODE:
            raise error(f"{kind}: rows must be array({DEV_ID_TYPECODE!r})")
    fileformat.check_row_dev_ids(rows, ring_data.devices, error, kind)


def encode(ring_data: RingData) -> bytes:
    """The ring file bytes of ``ring_data`` (current format version)."""
    check_ring_data(ring_data, RingValidationError)
    header: dict[str, Any] = {
        "part_power": ring_data.part_power,
        "replicas": float(ring_data.replicas),
        "version": ring_data.version,
        "builder_id": ring_data.builder_id,
        "devices": fileformat.encode_devices(ring_data.devices),
        "row_lengths": [len(row) for row in ring_data.replica2part2dev],
    }
    body = fileformat.pack_body(header, fileformat.pack_rows(ring_data.replica2part2dev))
    return fileformat.frame(MAGIC, FORMAT_VERSION, fileformat.deflate(body))


def decode(data: bytes) -> RingData:
    """The ``RingData`` in ring file bytes of any known format version."""
    version, payload = fileformat.unframe(data, MAGIC, KIND)
    decoder = _DECODERS.get(version)
    if decoder is None:
        known = ", ".join(map(str, sorted(_DECODERS)))
        raise RingFormatError(f"{KIND}: unknown format version {version} (known: {known})")
    ring_data = decoder(payload)
    check_ring_data(ring_data, RingFormatError, KIND)
    return ring_data


def _decode_v1(payload: memoryview) -> RingData:
    header, raw = fileformat.unpack_body(fileformat.inflate(payload, KIND), KIND)
    fileformat.check_keys(header, _V1_KEYS, KIND)
    part_power = fileformat.get_int(header, "part_power", KIND)
    replicas = fileformat.get_float(header, "replicas", KIND)
    lengths = fileformat.get_int_list(header, "row_lengths", KIND)
    # Check before reading rows, so a bad header cannot make us allocate much.
    try:
        check_part_power(part_power)
    except ValueError as exc:
        raise RingFormatError(f"{KIND}: {exc}") from None
    if any(length > 1 << part_power for length in lengths):
        raise RingFormatError(f"{KIND}: a row is longer than 2**{part_power} partitions")
    rows, used = fileformat.unpack_rows(raw, lengths, KIND)
    if used != len(raw):
        raise RingFormatError(f"{KIND}: {len(raw) - used} unexpected bytes after the rows")
    return RingData(
        part_power=part_power,
        replicas=replicas,
        devices=tuple(fileformat.decode_devices(header["devices"], KIND)),
        replica2part2dev=tuple(rows),
        version=fileformat.get_int(header, "version", KIND),
        builder_id=fileformat.get_str(header, "builder_id", KIND),
    )


# Format version -> decoder of the payload after the magic and version.
_DECODERS: dict[int, Callable[[memoryview], RingData]] = {1: _decode_v1}


def write(path: str | os.PathLike[str], ring_data: RingData) -> None:
    """Atomically replace the ring file at ``path``."""
    fileformat.atomic_write(path, encode(ring_data))


def read(path: str | os.PathLike[str]) -> RingData:
    return decode(fileformat.read_file(path))
