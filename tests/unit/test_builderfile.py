"""The builder file format: round trips of every BuilderState field, golden bytes, bad files.

Regenerate the golden file after a deliberate format change (a new format version, see
docs/formats/builder.md) with

    TORUS_REGEN_GOLDEN=1 python3 -m pytest tests/unit/test_builderfile.py -k golden

which rewrites tests/unit/golden/builder_v1.builder and skips the comparison.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from array import array
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ring_helpers import make_dev

from ring import builderfile, fileformat, ringfile
from ring.errors import RingFormatError, RingValidationError
from ring.state import NONE_DEV_ID, BuilderState, RingData

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_BUILDER = GOLDEN_DIR / "builder_v1.builder"
STOCK_ZLIB = "ng" not in zlib.ZLIB_RUNTIME_VERSION  # see test_ringfile.py


def fresh_state() -> BuilderState:
    """Before the first rebalance: no rows, no last_part_moves, no dispersion."""
    return BuilderState(
        part_power=3,
        replicas=3.0,
        min_part_hours=1,
        devices=[make_dev(0), make_dev(1, zone=1)],
        id="fresh",
    )


def golden_state() -> BuilderState:
    """Every field away from its default: 2**2 partitions, 2.5 replicas, a hole, a removal."""
    return BuilderState(
        part_power=2,
        replicas=2.5,
        min_part_hours=24,
        overload=0.125,
        devices=[make_dev(0), make_dev(1, zone=1, meta="rack β"), None, make_dev(3, region=1)],
        removed_dev_ids=[3],
        replica2part2dev=[
            array("I", [0, 1, 3, 0]),
            array("I", [1, 3, 0, 1]),
            array("I", [3, NONE_DEV_ID]),
        ],
        last_part_moves=bytearray([0, 255, 7, 1]),
        last_part_moves_epoch=1_700_000_000,
        last_gather_start=2,
        version=5,
        id="0123456789abcdef",
        devs_changed=True,
        dispersion=12.5,
    )


def body_of(data: bytes) -> bytes:
    return zlib.decompress(data[fileformat.FRAME_PREFIX_BYTES :])


def with_header(data: bytes, **changes: object) -> bytes:
    header, sections = fileformat.unpack_body(body_of(data), "test")
    header.update(changes)
    body = fileformat.pack_body(header, [bytes(sections)])
    return fileformat.frame(builderfile.MAGIC, 1, zlib.compress(body))


# -- round trips -------------------------------------------------------------------------


def test_every_field_is_in_the_format() -> None:
    """A new BuilderState field must be added to the format (and its version bumped)."""
    stored = set(builderfile._V1_KEYS) - {"row_lengths", "last_part_moves_length"}
    stored |= {"replica2part2dev", "last_part_moves"}
    assert {field.name for field in dataclasses.fields(BuilderState)} == stored
    default = BuilderState(part_power=0, replicas=1.0, min_part_hours=0)
    for field in dataclasses.fields(BuilderState):
        assert getattr(golden_state(), field.name) != getattr(default, field.name), field.name


@pytest.mark.parametrize("state", [fresh_state(), golden_state()], ids=["fresh", "golden"])
def test_round_trip(state: BuilderState) -> None:
    decoded = builderfile.decode(builderfile.encode(state))
    assert decoded == state
    assert isinstance(decoded.devices, list)
    if state.replica2part2dev is None:
        assert decoded.replica2part2dev is None
    else:
        assert isinstance(decoded.replica2part2dev, list)
        assert all(row.typecode == "I" for row in decoded.replica2part2dev)


def test_last_part_moves_decodes_mutable() -> None:
    """The builder ages last_part_moves in place, so it comes back as a bytearray."""
    state = golden_state()
    state.last_part_moves = bytes(state.last_part_moves)  # type: ignore[assignment]
    decoded = builderfile.decode(builderfile.encode(state))
    assert type(decoded.last_part_moves) is bytearray
    assert decoded.last_part_moves == bytearray([0, 255, 7, 1])


def test_rows_need_not_match_replicas() -> None:
    """After set_replicas the rows keep their old shape until the next rebalance."""
    state = golden_state()
    state.replicas = 4.0
    assert builderfile.decode(builderfile.encode(state)) == state


@given(
    part_power=st.integers(0, 5),
    replicas=st.floats(1, 8),
    overload=st.floats(0, 10),
    dispersion=st.none() | st.floats(0, 100),
    meta=st.text(max_size=6),
    builder_id=st.text(max_size=6),
    devs_changed=st.booleans(),
    row_count=st.integers(0, 4),
    data=st.data(),
)
def test_round_trip_any_state(
    part_power: int,
    replicas: float,
    overload: float,
    dispersion: float | None,
    meta: str,
    builder_id: str,
    devs_changed: bool,
    row_count: int,
    data: st.DataObject,
) -> None:
    parts = 1 << part_power
    devices = [make_dev(0, meta=meta), None, make_dev(2, weight=0)]
    ids = st.sampled_from([0, 2, NONE_DEV_ID])
    rows = None
    if row_count:
        rows = [
            array("I", data.draw(st.lists(ids, min_size=parts, max_size=parts)))
            for _ in range(row_count)
        ]
    moves = data.draw(st.none() | st.binary(min_size=parts, max_size=parts))
    state = BuilderState(
        part_power=part_power,
        replicas=replicas,
        min_part_hours=data.draw(st.integers(0, 255)),
        overload=overload,
        devices=devices,
        removed_dev_ids=data.draw(st.lists(st.just(2))),
        replica2part2dev=rows,
        last_part_moves=None if moves is None else bytearray(moves),
        last_part_moves_epoch=data.draw(st.integers(0, 2**40)),
        id=builder_id,
        devs_changed=devs_changed,
        dispersion=dispersion,
    )
    encoded = builderfile.encode(state)
    assert builderfile.decode(encoded) == state
    assert builderfile.encode(builderfile.decode(encoded)) == encoded


# -- golden bytes --------------------------------------------------------------------------


def test_golden_bytes() -> None:
    encoded = builderfile.encode(golden_state())
    if os.environ.get("TORUS_REGEN_GOLDEN"):
        GOLDEN_DIR.mkdir(exist_ok=True)
        GOLDEN_BUILDER.write_bytes(encoded)
        pytest.skip(f"regenerated {GOLDEN_BUILDER}")
    golden = GOLDEN_BUILDER.read_bytes()
    assert body_of(encoded) == body_of(golden)
    if STOCK_ZLIB:
        assert encoded == golden
    assert builderfile.decode(golden) == golden_state()


def test_golden_sections_spelled_out() -> None:
    """After the header: rows as little-endian uint32, then last_part_moves raw."""
    golden = GOLDEN_BUILDER.read_bytes()
    assert golden[:10] == b"TORUSBLD\x00\x01"
    header, sections = fileformat.unpack_body(body_of(golden), "test")
    assert header["row_lengths"] == [4, 4, 2]
    assert header["last_part_moves_length"] == 4
    rows = struct.pack("<10I", 0, 1, 3, 0, 1, 3, 0, 1, 3, NONE_DEV_ID)
    assert bytes(sections) == rows + bytes([0, 255, 7, 1])


# -- bad files -----------------------------------------------------------------------------


def test_ring_file_is_not_a_builder_file() -> None:
    ring_data = RingData(0, 1.0, (make_dev(0),), (array("I", [0]),))
    with pytest.raises(RingFormatError, match="bad magic"):
        builderfile.decode(ringfile.encode(ring_data))


def test_unknown_version() -> None:
    data = builderfile.encode(golden_state())
    with pytest.raises(RingFormatError, match="unknown format version 9"):
        builderfile.decode(data[:8] + b"\x00\x09" + data[10:])


@pytest.mark.parametrize("state", [fresh_state(), golden_state()], ids=["fresh", "golden"])
def test_every_truncation_is_rejected(state: BuilderState) -> None:
    data = builderfile.encode(state)
    for length in range(len(data)):
        with pytest.raises(RingFormatError):
            builderfile.decode(data[:length])


def test_corrupt_body() -> None:
    data = bytearray(builderfile.encode(golden_state()))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(RingFormatError):
        builderfile.decode(bytes(data))


def test_trailing_bytes_in_body() -> None:
    body = body_of(builderfile.encode(golden_state())) + b"\x00"
    with pytest.raises(RingFormatError, match="1 unexpected bytes at the end"):
        builderfile.decode(fileformat.frame(builderfile.MAGIC, 1, zlib.compress(body)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_part_moves_length": 3}, "last_part_moves has 3 entries, not 4"),
        ({"removed_dev_ids": [2]}, "removed device 2 is not among the devices"),
        ({"row_lengths": [4, 4, 8]}, "longer than 2\\*\\*2"),
        ({"devs_changed": 1}, "devs_changed must be true or false"),
        ({"dispersion": "high"}, "dispersion must be"),
        ({"overload": -1.0}, "overload must be"),
        ({"min_part_hours": 1.5}, "min_part_hours must be"),
        ({"replicas": 0.0}, "replicas must be >= 1"),
        ({"id": None}, "id must be a string"),
    ],
)
def test_bad_header_fields(changes: dict, message: str) -> None:
    with pytest.raises(RingFormatError, match=message):
        builderfile.decode(with_header(builderfile.encode(golden_state()), **changes))


def test_truncated_last_part_moves() -> None:
    data = builderfile.encode(golden_state())
    header, sections = fileformat.unpack_body(body_of(data), "test")
    body = fileformat.pack_body(header, [bytes(sections)[:-1]])
    with pytest.raises(RingFormatError, match="truncated last_part_moves"):
        builderfile.decode(fileformat.frame(builderfile.MAGIC, 1, zlib.compress(body)))


def test_rows_on_unknown_device() -> None:
    state = golden_state()
    state.replica2part2dev[0][0] = 2  # the hole
    with pytest.raises(RingValidationError, match="unknown device ids \\[2\\]"):
        builderfile.encode(state)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replicas": float("nan")}, "replicas must be"),
        ({"overload": float("inf")}, "overload must be"),
        ({"last_part_moves": [0, 1, 2, 3]}, "last_part_moves must be bytes"),
        ({"last_part_moves_epoch": 1.5}, "last_part_moves_epoch must be"),
        ({"removed_dev_ids": [9]}, "removed device 9"),
        ({"part_power": 40}, "part_power"),
    ],
)
def test_encode_refuses_invalid_state(change: dict, message: str) -> None:
    state = dataclasses.replace(golden_state(), **change)
    with pytest.raises(RingValidationError, match=message):
        builderfile.encode(state)


# -- files on disk ---------------------------------------------------------------------------


def test_write_read(tmp_path: Path) -> None:
    path = tmp_path / "object.builder"
    builderfile.write(path, golden_state())
    builderfile.write(path, fresh_state())  # replaces
    assert builderfile.read(path) == fresh_state()
    assert os.listdir(tmp_path) == ["object.builder"]
