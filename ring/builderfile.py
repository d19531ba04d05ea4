"""The builder file: everything the offline builder keeps between runs.

Layout (byte-level spec in docs/formats/builder.md)::

    b"TORUSBLD" | u16 BE format version | zlib(body)
    body = u32 BE header length | header JSON | rows (LE uint32) | last_part_moves

Unlike the ring file it keeps what the next rebalance needs to honour
``min_part_hours`` and to move as little as possible: ``last_part_moves``,
removed device ids, overload, the dispersion of the last rebalance.  Before
the first rebalance there are no rows and no ``last_part_moves`` (null
lengths in the header, empty sections).

Row lengths are not tied to ``replicas``: after a replica count change the
rows keep the old shape until the next rebalance reshapes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ring import fileformat
from ring.errors import RingFormatError, RingValidationError
from ring.placement import check_part_power
from ring.state import DEV_ID_TYPECODE, BuilderState

MAGIC = b"TORUSBLD"
FORMAT_VERSION = 1
KIND = "builder file"
_V1_KEYS = frozenset(
    (
        "part_power",
        "replicas",
        "min_part_hours",
        "overload",
        "devices",
        "removed_dev_ids",
        "row_lengths",
        "last_part_moves_length",
        "last_part_moves_epoch",
        "last_gather_start",
        "version",
        "id",
        "devs_changed",
        "dispersion",
    )
)


def _header(state: BuilderState) -> dict[str, Any]:
    """The header fields of ``state`` exactly as given (not yet checked)."""
    rows, moves = state.replica2part2dev, state.last_part_moves
    return {
        "part_power": state.part_power,
        "replicas": state.replicas,
        "min_part_hours": state.min_part_hours,
        "overload": state.overload,
        "devices": fileformat.encode_devices(state.devices),
        "removed_dev_ids": list(state.removed_dev_ids),
        "row_lengths": None if rows is None else [len(row) for row in rows],
        "last_part_moves_length": None if moves is None else len(moves),
        "last_part_moves_epoch": state.last_part_moves_epoch,
        "last_gather_start": state.last_gather_start,
        "version": state.version,
        "id": state.id,
        "devs_changed": state.devs_changed,
        "dispersion": state.dispersion,
    }


def _check_header(header: dict[str, Any], error: type[Exception], kind: str) -> dict[str, Any]:
    """The header with each scalar field checked and normalised (floats as floats).

    Used on both sides, so ``encode`` never writes what ``decode`` rejects.
    """
    fileformat.check_keys(header, _V1_KEYS, kind)
    checked = dict(header)
    for key in (
        "part_power",
        "min_part_hours",
        "last_part_moves_epoch",
        "last_gather_start",
        "version",
    ):
        checked[key] = fileformat.get_int(header, key, kind, error)
    try:
        check_part_power(checked["part_power"])
    except ValueError as exc:
        raise error(f"{kind}: {exc}") from None
    for key in ("replicas", "overload"):
        checked[key] = fileformat.get_float(header, key, kind, error)
    if checked["replicas"] < 1:
        raise error(f"{kind}: replicas must be >= 1, not {checked['replicas']!r}")
    if header["dispersion"] is not None:
        checked["dispersion"] = fileformat.get_float(header, "dispersion", kind, error)
    checked["id"] = fileformat.get_str(header, "id", kind, error)
    checked["devs_changed"] = fileformat.get_bool(header, "devs_changed", kind, error)
    checked["removed_dev_ids"] = fileformat.get_int_list(header, "removed_dev_ids", kind, error)
    partitions = 1 << checked["part_power"]
    if header["row_lengths"] is not None:
        lengths = fileformat.get_int_list(header, "row_lengths", kind, error)
        if any(length > partitions for length in lengths):
            raise error(f"{kind}: a row is longer than 2**{checked['part_power']} partitions")
    if header["last_part_moves_length"] is not None:
        length = fileformat.get_int(header, "last_part_moves_length", kind, error)
        if length != partitions:
            raise error(f"{kind}: last_part_moves has {length} entries, not {partitions}")
    return checked


def _check_state(state: BuilderState, error: type[Exception], kind: str) -> None:
    """The checks that need the devices and rows, not just the header."""
    for index, dev in enumerate(state.devices):
        if dev is not None and dev.id != index:
            raise error(f"{kind}: device at index {index} has id {dev.id}")
    for dev_id in state.removed_dev_ids:
        if dev_id >= len(state.devices) or state.devices[dev_id] is None:
            raise error(f"{kind}: removed device {dev_id} is not among the devices")
    if state.replica2part2dev is not None:
        for row in state.replica2part2dev:
            if getattr(row, "typecode", None) != DEV_ID_TYPECODE:
                raise error(f"{kind}: rows must be array({DEV_ID_TYPECODE!r})")
        # NONE_DEV_ID is allowed: it is what an unassigned replica looks like.
        fileformat.check_row_dev_ids(
            state.replica2part2dev, state.devices, error, kind, allow_none=True
        )


def encode(state: BuilderState) -> bytes:
    """The builder file bytes of ``state`` (current format version)."""
    if not isinstance(state.last_part_moves, (bytes, bytearray, type(None))):
        raise RingValidationError("builder: last_part_moves must be bytes or None")
    header = _check_header(_header(state), RingValidationError, "builder")
    _check_state(state, RingValidationError, "builder")
    sections = fileformat.pack_rows(state.replica2part2dev or [])
    sections.append(bytes(state.last_part_moves or b""))
    body = fileformat.pack_body(header, sections)
    return fileformat.frame(MAGIC, FORMAT_VERSION, fileformat.deflate(body))


def decode(data: bytes) -> BuilderState:
    """The ``BuilderState`` in builder file bytes of any known format version."""
    version, payload = fileformat.unframe(data, MAGIC, KIND)
    decoder = _DECODERS.get(version)
    if decoder is None:
        known = ", ".join(map(str, sorted(_DECODERS)))
        raise RingFormatError(f"{KIND}: unknown format version {version} (known: {known})")
    state = decoder(payload)
    _check_state(state, RingFormatError, KIND)
    return state


def _decode_v1(payload: memoryview) -> BuilderState:
    raw_header, raw = fileformat.unpack_body(fileformat.inflate(payload, KIND), KIND)
    header = _check_header(raw_header, RingFormatError, KIND)
    rows = None
    if header["row_lengths"] is not None:
        rows, used = fileformat.unpack_rows(raw, header["row_lengths"], KIND)
        raw = raw[used:]
    moves = None
    if header["last_part_moves_length"] is not None:
        moves = bytearray(raw[: header["last_part_moves_length"]])
        raw = raw[len(moves) :]
        if len(moves) != header["last_part_moves_length"]:
            raise RingFormatError(f"{KIND}: truncated last_part_moves")
    if raw:
        raise RingFormatError(f"{KIND}: {len(raw)} unexpected bytes at the end of the body")
    return BuilderState(
        part_power=header["part_power"],
        replicas=header["replicas"],
        min_part_hours=header["min_part_hours"],
        overload=header["overload"],
        devices=fileformat.decode_devices(header["devices"], KIND),
        removed_dev_ids=header["removed_dev_ids"],
        replica2part2dev=rows,
        last_part_moves=moves,
        last_part_moves_epoch=header["last_part_moves_epoch"],
        last_gather_start=header["last_gather_start"],
        version=header["version"],
        id=header["id"],
        devs_changed=header["devs_changed"],
        dispersion=header["dispersion"],
    )


# Format version -> decoder of the payload after the magic and version.
_DECODERS: dict[int, Callable[[memoryview], BuilderState]] = {1: _decode_v1}


def write(path: str | os.PathLike[str], state: BuilderState) -> None:
    """Atomically replace the builder file at ``path``."""
    fileformat.atomic_write(path, encode(state))


def read(path: str | os.PathLike[str]) -> BuilderState:
    return decode(fileformat.read_file(path))
