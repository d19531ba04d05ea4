"""The ring file format: round trips, golden bytes, and every way a file can be bad.

The golden file pins format version 1 byte for byte.  After a deliberate change to the
encoder (which needs a new format version, see docs/formats/ring.md), regenerate it with

    TORUS_REGEN_GOLDEN=1 python3 -m pytest tests/unit/test_ringfile.py -k golden

which rewrites tests/unit/golden/ring_v1.ring and skips the comparison; review the diff.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from array import array
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ring_helpers import make_dev

from ring import fileformat, ringfile
from ring.device import Device
from ring.errors import RingFormatError, RingValidationError
from ring.state import NONE_DEV_ID, RingData, row_lengths

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_RING = GOLDEN_DIR / "ring_v1.ring"
# zlib-ng (a drop-in zlib on some distributions) compresses differently; the body is still
# compared byte for byte there, only the compressed bytes are not.
STOCK_ZLIB = "ng" not in zlib.ZLIB_RUNTIME_VERSION


def golden_ring() -> RingData:
    """2**2 partitions, 2 replicas, 3 devices with a hole at id 2 and a non-ASCII meta."""
    devices = (make_dev(0), make_dev(1, zone=1, meta="rack β"), None, make_dev(3, region=1))
    rows = (array("I", [0, 1, 3, 0]), array("I", [1, 3, 0, 1]))
    return RingData(
        part_power=2,
        replicas=2.0,
        devices=devices,
        replica2part2dev=rows,
        version=7,
        builder_id="golden",
    )


def assigned_ring(
    part_power: int, replicas: float, devices: tuple[Device | None, ...], seed: int = 0
) -> RingData:
    """A ring whose rows cycle over the real devices (placement quality is not the point)."""
    ids = [dev.id for dev in devices if dev is not None]
    rows = tuple(
        array("I", [ids[(part * 7 + replica + seed) % len(ids)] for part in range(length)])
        for replica, length in enumerate(row_lengths(part_power, replicas))
    )
    return RingData(part_power, replicas, devices, rows, version=3, builder_id="b")


def body_of(data: bytes) -> bytes:
    return zlib.decompress(data[fileformat.FRAME_PREFIX_BYTES :])


def reframe(body: bytes, version: int = 1) -> bytes:
    return fileformat.frame(ringfile.MAGIC, version, zlib.compress(body))


def header_of(data: bytes) -> dict:
    header, _ = fileformat.unpack_body(body_of(data), "test")
    return header


def with_header(data: bytes, **changes: object) -> bytes:
    """The file ``data`` with header fields changed (None deletes) and the rows kept."""
    header, rows = fileformat.unpack_body(body_of(data), "test")
    for key, value in changes.items():
        if value is None:
            del header[key]
        else:
            header[key] = value
    return reframe(fileformat.pack_body(header, [bytes(rows)]))


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ring_data",
    [
        golden_ring(),
        # Fractional replicas: the last row is short (4096 * 0.25 = 1024 partitions).
        assigned_ring(12, 2.25, tuple(make_dev(i, zone=i % 3) for i in range(5))),
        # Holes, including a trailing one.
        assigned_ring(4, 3.0, (None, make_dev(1), None, make_dev(3), make_dev(4), None)),
        # part_power 0: one partition.
        assigned_ring(0, 1.0, (make_dev(0),)),
        # Unicode and JSON-special characters in meta.
        assigned_ring(3, 2.0, (make_dev(0, meta='ß "quoted" \\ \n 日本'), make_dev(1))),
    ],
    ids=["golden", "fractional", "holes", "one-partition", "unicode-meta"],
)
def test_round_trip(ring_data: RingData) -> None:
    decoded = ringfile.decode(ringfile.encode(ring_data))
    assert decoded == ring_data
    assert isinstance(decoded.devices, tuple)
    assert all(row.typecode == "I" for row in decoded.replica2part2dev)


@st.composite
def ring_datas(draw: st.DrawFn) -> RingData:
    part_power = draw(st.integers(0, 6))
    replicas = draw(st.sampled_from([1.0, 1.5, 2.0, 2.75, 3.0, 3.125, 5.0]))
    present = draw(st.lists(st.booleans(), min_size=1, max_size=12))
    present[draw(st.integers(0, len(present) - 1))] = True  # at least one device
    devices = tuple(
        make_dev(i, region=i % 2, weight=draw(st.floats(0, 1e6)), meta=draw(st.text(max_size=5)))
        if keep
        else None
        for i, keep in enumerate(present)
    )
    ids = [dev.id for dev in devices if dev is not None]
    rows = tuple(
        array("I", draw(st.lists(st.sampled_from(ids), min_size=length, max_size=length)))
        for length in row_lengths(part_power, replicas)
    )
    return RingData(
        part_power,
        replicas,
        devices,
        rows,
        version=draw(st.integers(0, 2**40)),
        builder_id=draw(st.text(max_size=8)),
    )


@given(ring_datas())
def test_round_trip_any_ring(ring_data: RingData) -> None:
    data = ringfile.encode(ring_data)
    assert ringfile.decode(data) == ring_data
    assert ringfile.encode(ringfile.decode(data)) == data


def test_encoding_is_canonical() -> None:
    """Equal rings give equal bytes, whatever the Python types they were built from."""
    ring_data = golden_ring()
    as_int = RingData(
        2,
        2,
        ring_data.devices,
        tuple(array("I", r) for r in ring_data.replica2part2dev),
        7,
        "golden",
    )
    assert ringfile.encode(as_int) == ringfile.encode(ring_data)
    assert ringfile.decode(ringfile.encode(as_int)).replicas == 2.0


# -- golden bytes --------------------------------------------------------------------------


def test_golden_bytes() -> None:
    encoded = ringfile.encode(golden_ring())
    if os.environ.get("TORUS_REGEN_GOLDEN"):
        GOLDEN_DIR.mkdir(exist_ok=True)
        GOLDEN_RING.write_bytes(encoded)
        pytest.skip(f"regenerated {GOLDEN_RING}")
    golden = GOLDEN_RING.read_bytes()
    assert body_of(encoded) == body_of(golden)
    if STOCK_ZLIB:
        assert encoded == golden
    assert ringfile.decode(golden) == golden_ring()


def test_golden_layout_spelled_out() -> None:
    """The golden file against docs/formats/ring.md, written out by hand."""
    golden = GOLDEN_RING.read_bytes()
    assert golden[:10] == b"TORUSRNG\x00\x01"
    body = body_of(golden)
    dev = (
        '{{"device":"sd{i}","id":{i},"ip":"10.{r}.{z}.{h}","meta":"{m}","port":620{i},'
        '"region":{r},"replication_ip":"10.{r}.{z}.{h}","replication_port":630{i},'
        '"weight":100.0,"zone":{z}}}'
    )
    header = (
        '{"builder_id":"golden","devices":['
        + dev.format(i=0, r=0, z=0, h=1, m="")
        + ","
        + dev.format(i=1, r=0, z=1, h=2, m="rack β")
        + ",null,"
        + dev.format(i=3, r=1, z=0, h=4, m="")
        + '],"part_power":2,"replicas":2.0,"row_lengths":[4,4],"version":7}'
    ).encode("utf-8")
    rows = struct.pack("<8I", 0, 1, 3, 0, 1, 3, 0, 1)
    assert body == struct.pack(">I", len(header)) + header + rows


# -- bad files -----------------------------------------------------------------------------


def test_bad_magic() -> None:
    data = ringfile.encode(golden_ring())
    with pytest.raises(RingFormatError, match="bad magic"):
        ringfile.decode(b"TORUSBLD" + data[8:])


def test_unknown_version() -> None:
    data = ringfile.encode(golden_ring())
    with pytest.raises(RingFormatError, match="unknown format version 2"):
        ringfile.decode(data[:8] + b"\x00\x02" + data[10:])


def test_every_truncation_is_rejected() -> None:
    data = ringfile.encode(golden_ring())
    for length in range(len(data)):
        with pytest.raises(RingFormatError):
            ringfile.decode(data[:length])


def test_no_bit_flip_gives_a_different_ring() -> None:
    """zlib's Adler-32 plus decode's checks catch every flipped bit that changes the content.

    A few bits (padding at the end of the deflate stream, some block-header bits) do not
    change what decompresses; those files decode to the original ring, which is fine.
    """
    data = ringfile.encode(golden_ring())
    rejected = 0
    for bit in range(len(data) * 8):
        corrupt = bytearray(data)
        corrupt[bit // 8] ^= 1 << (bit % 8)
        try:
            decoded = ringfile.decode(bytes(corrupt))
        except RingFormatError:
            rejected += 1
        else:
            assert decoded == golden_ring(), f"bit {bit} changed the ring silently"
    assert rejected > len(data) * 8 * 0.95


def test_trailing_bytes_after_compressed_body() -> None:
    with pytest.raises(RingFormatError, match="unexpected bytes after the body"):
        ringfile.decode(ringfile.encode(golden_ring()) + b"\x00")


def test_trailing_bytes_after_rows() -> None:
    body = body_of(ringfile.encode(golden_ring()))
    with pytest.raises(RingFormatError, match="unexpected bytes after the rows"):
        ringfile.decode(reframe(body + b"\x00\x00\x00\x00"))


def test_rows_shorter_than_header_says() -> None:
    body = body_of(ringfile.encode(golden_ring()))
    with pytest.raises(RingFormatError, match="truncated rows"):
        ringfile.decode(reframe(body[:-4]))


@pytest.mark.parametrize(
    "lengths", [[4], [4, 4, 4], [4, 3], [4, 4, 0], [5, 3]], ids=lambda v: str(v)
)
def test_rows_of_the_wrong_length(lengths: list[int]) -> None:
    """The header's row lengths must be what part_power and replicas imply."""
    data = ringfile.encode(golden_ring())
    header, _ = fileformat.unpack_body(body_of(data), "test")
    header["row_lengths"] = lengths
    rows = struct.pack(f"<{sum(lengths)}I", *[0] * sum(lengths))
    with pytest.raises(RingFormatError, match=r"rows have lengths|longer than"):
        ringfile.decode(reframe(fileformat.pack_body(header, [rows])))


@pytest.mark.parametrize("bad_id", [2, 4, NONE_DEV_ID], ids=["hole", "past-end", "none-marker"])
def test_partition_on_unknown_device(bad_id: int) -> None:
    data = ringfile.encode(golden_ring())
    header, _ = fileformat.unpack_body(body_of(data), "test")
    rows = struct.pack("<8I", 0, 1, 3, bad_id, 1, 3, 0, 1)
    with pytest.raises(RingFormatError, match=f"unknown device ids \\[{bad_id}\\]"):
        ringfile.decode(reframe(fileformat.pack_body(header, [rows])))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": None}, "missing \\['version'\\]"),
        ({"checksum": 1}, "unknown \\['checksum'\\]"),
        ({"part_power": "2"}, "part_power must be"),
        ({"part_power": 40}, "part_power must be an integer in 0..32"),
        ({"replicas": True}, "replicas must be"),
        ({"replicas": 0.5, "row_lengths": [2, 2, 2, 2]}, "replicas must be a finite number >= 1"),
        ({"version": -1}, "version must be"),
        ({"builder_id": 5}, "builder_id must be"),
        ({"row_lengths": "4,4"}, "row_lengths must be"),
        ({"devices": {}}, "devices must be a list"),
        ({"devices": [1]}, "device 0 is not an object"),
    ],
)
def test_bad_header_fields(changes: dict, message: str) -> None:
    with pytest.raises(RingFormatError, match=message):
        ringfile.decode(with_header(ringfile.encode(golden_ring()), **changes))


def test_bad_devices() -> None:
    data = ringfile.encode(golden_ring())
    devices = header_of(data)["devices"]
    shifted = [devices[1], devices[0], None, devices[3]]
    with pytest.raises(RingFormatError, match="device at index 0 has id 1"):
        ringfile.decode(with_header(data, devices=shifted))
    bad_ip = [dict(devices[0], ip="not-an-ip"), devices[1], None, devices[3]]
    with pytest.raises(RingFormatError, match="device 0 is invalid: invalid IP"):
        ringfile.decode(with_header(data, devices=bad_ip))
    extra_key = [dict(devices[0], colour="red"), devices[1], None, devices[3]]
    with pytest.raises(RingFormatError, match="device 0 is invalid"):
        ringfile.decode(with_header(data, devices=extra_key))


def test_header_not_json() -> None:
    bad = b"{not json"
    with pytest.raises(RingFormatError, match="not valid JSON"):
        ringfile.decode(reframe(struct.pack(">I", len(bad)) + bad))
    with pytest.raises(RingFormatError, match="not an object"):
        ringfile.decode(reframe(struct.pack(">I", 2) + b"[]"))
    with pytest.raises(RingFormatError, match="truncated header"):
        ringfile.decode(reframe(struct.pack(">I", 100) + b"{}"))


def test_not_bytes() -> None:
    with pytest.raises(TypeError):
        ringfile.decode("TORUSRNG")  # type: ignore[arg-type]


# -- refusing to write a bad ring ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ring_data", "message"),
    [
        (RingData(2, 2.0, (make_dev(0),), (array("I", [0] * 4),)), "rows have lengths"),
        (RingData(2, 1.0, (make_dev(0),), (array("I", [0, 0, 0, 1]),)), "unknown device ids"),
        (RingData(2, 1.0, (make_dev(0),), (array("i", [0] * 4),)), "must be array"),
        (RingData(2, 1.0, (make_dev(1),), (array("I", [0] * 4),)), "index 0 has id 1"),
        (RingData(2, float("nan"), (make_dev(0),), ()), "replicas must be"),
        (RingData(33, 1.0, (make_dev(0),), ()), "part_power"),
        (RingData(0, 1.0, (make_dev(0),), (array("I", [0]),), version=-1), "version"),
    ],
    ids=["short-rows", "unknown-dev", "signed-rows", "id-mismatch", "nan", "power", "ver"],
)
def test_encode_refuses_invalid_ring(ring_data: RingData, message: str) -> None:
    with pytest.raises(RingValidationError, match=message):
        ringfile.encode(ring_data)


# -- files on disk ---------------------------------------------------------------------------


def test_write_read(tmp_path: Path) -> None:
    path = tmp_path / "object.ring"
    ringfile.write(path, golden_ring())
    assert ringfile.read(path) == golden_ring()
    assert path.read_bytes() == ringfile.encode(golden_ring())
    assert os.listdir(tmp_path) == ["object.ring"]  # no temp file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by the servers


def test_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "object.ring"
    path.write_bytes(b"old")
    path.chmod(0o640)
    ringfile.write(str(path), golden_ring())
    assert ringfile.read(str(path)) == golden_ring()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["object.ring"]


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "object.ring"
    path.write_bytes(b"old")

    def fail_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(fileformat.os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk on fire"):
        ringfile.write(path, golden_ring())
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["object.ring"]


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ringfile.read(tmp_path / "absent.ring")
