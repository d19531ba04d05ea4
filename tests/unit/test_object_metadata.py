"""objectd.metadata (the index value format), with the checksums and keys it relies on."""

from __future__ import annotations

import hashlib
import json

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from objectd import layout
from objectd.checksum import BodyDigest, blocks_touched
from objectd.metadata import ObjectMetadata, decode, encode
from service.timestamp import MAX_OFFSET, Timestamp

GOLDEN = ObjectMetadata(
    name="/AUTH_a/c/ø/x",
    timestamp=Timestamp.parse("1700000000.12345"),
    meta_timestamp=Timestamp.parse("1700000001.00000_0000000000000002"),
    content_type="text/plain",
    etag="5d41402abc4b2a76b9719d911017c592",
    size_bytes=5,
    user_meta={"X-Object-Meta-Color": "blue", "Content-Encoding": "gzip"},
    delete_at=1800000000,
    body="inline",
    block_size_bytes=1 << 20,
    block_hashes=(0x9555E8555C62DCFD,),
    content_type_timestamp=Timestamp.parse("1700000001.00000_0000000000000002"),
)
GOLDEN_BYTES = (
    '{"block":1048576,"blocks":["9555e8555c62dcfd"],"body":"inline",'
    '"ctype":"text/plain","ctype_ts":"1700000001.00000_0000000000000002",'
    '"delete_at":1800000000,"deleted":false,"etag":"5d41402abc4b2a76b9719d911017c592",'
    '"meta":{"Content-Encoding":"gzip","X-Object-Meta-Color":"blue"},'
    '"meta_ts":"1700000001.00000_0000000000000002","name":"/AUTH_a/c/ø/x",'
    '"size":5,"ts":"1700000000.12345","v":1}'
).encode()


def test_golden_bytes() -> None:
    assert encode(GOLDEN) == GOLDEN_BYTES
    assert decode(GOLDEN_BYTES) == GOLDEN


def test_tombstone_round_trips() -> None:
    tombstone = ObjectMetadata.tombstone("/a/c/o", Timestamp.parse("1700000000.5"))
    assert decode(encode(tombstone)) == tombstone
    assert tombstone.deleted and tombstone.body is None and tombstone.size_bytes == 0


def test_the_engines_placement_is_not_encoded() -> None:
    placed = ObjectMetadata("/a/c/o", GOLDEN.timestamp, GOLDEN.timestamp, device="sda", partition=3)
    again = decode(encode(placed))
    assert again == placed and again.device is None and again.partition is None


def test_content_type_timestamp_of_the_data_has_one_spelling() -> None:
    ts = GOLDEN.timestamp
    explicit = ObjectMetadata("/a/c/o", ts, ts, content_type_timestamp=ts)
    assert explicit == ObjectMetadata("/a/c/o", ts, ts)
    assert explicit.content_type_timestamp is None and explicit.ctype_timestamp == ts


timestamps = st.builds(
    Timestamp, st.integers(0, 10**15 - 1), st.one_of(st.just(0), st.integers(0, MAX_OFFSET))
)
headers = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=5)


@given(
    name=st.text(min_size=1, max_size=60).map(lambda s: "/a/c/" + s),
    timestamp=timestamps,
    meta_timestamp=timestamps,
    ctype_timestamp=st.one_of(st.none(), timestamps),
    content_type=st.text(max_size=30),
    size_bytes=st.integers(0, 1 << 40),
    user_meta=headers,
    delete_at=st.one_of(st.none(), st.integers(0, 1 << 40)),
    deleted=st.booleans(),
    body=st.sampled_from(["inline", "file", None]),
    block_hashes=st.lists(st.integers(0, (1 << 64) - 1), max_size=4).map(tuple),
)
def test_round_trip(**fields) -> None:
    ctype_timestamp = fields.pop("ctype_timestamp")
    meta = ObjectMetadata(
        etag="d41d8cd98f00b204e9800998ecf8427e", content_type_timestamp=ctype_timestamp, **fields
    )
    assert decode(encode(meta)) == meta


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"v": 2}',
        b'{"v": 1}',
        GOLDEN_BYTES.replace(b'"inline"', b'"tape"'),
        GOLDEN_BYTES.replace(b"1800000000", b'"soon"'),
        GOLDEN_BYTES.replace(b'"blue"', b"7"),
        GOLDEN_BYTES.replace(b'"1700000000.12345"', b'"yesterday"'),
    ],
)
def test_what_is_not_a_known_version_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode(data)


@given(st.binary(max_size=5000), st.lists(st.integers(1, 700), min_size=1, max_size=20))
def test_body_digest_does_not_depend_on_chunking(body: bytes, cuts: list[int]) -> None:
    digest = BodyDigest(block_size_bytes=1024)
    position = 0
    for cut in cuts * (len(body) // sum(cuts) + 1):
        digest.update(body[position : position + cut])
        position += cut
    assert digest.size_bytes == len(body)
    assert digest.etag == hashlib.md5(body, usedforsecurity=False).hexdigest()
    expected = tuple(
        xxhash.xxh3_64_intdigest(body[i : i + 1024]) for i in range(0, len(body), 1024)
    )
    assert digest.block_hashes() == expected


def test_blocks_touched() -> None:
    assert list(blocks_touched(0, 0, 10)) == []
    assert list(blocks_touched(0, 10, 10)) == [0]
    assert list(blocks_touched(9, 11, 10)) == [0, 1]
    assert list(blocks_touched(10, 30, 10)) == [1, 2]


@given(timestamps, timestamps)
def test_index_keys_sort_the_newest_version_first(a: Timestamp, b: Timestamp) -> None:
    digest = bytes(range(16))
    key_a, key_b = layout.index_key(5, digest, a), layout.index_key(5, digest, b)
    assert (key_a < key_b) == (a > b)
    assert key_a.startswith(layout.object_prefix(5, digest))
    assert key_a.startswith(layout.suffix_prefix(5, layout.suffix_of(digest)))
    assert layout.key_timestamp(key_a) == a and layout.key_name_hash(key_a) == digest


def test_suffix_is_the_last_three_hex_digits_of_the_hash() -> None:
    digest = layout.name_hash(b"secret", "/a/c/o/with/slashes")
    assert layout.suffix_hex(layout.suffix_of(digest)) == digest.hex()[-3:]
    assert layout.parse_suffix(digest.hex()[-3:]) == layout.suffix_of(digest)
    assert json.loads(encode(GOLDEN))["v"] == 1
