"""The SSYNC wire format (objectd/replication_wire.py): golden bytes, round trips, refusals."""

from __future__ import annotations

import pytest

from objectd import replication_wire as wire
from objectd.metadata import ObjectMetadata, encode
from service.timestamp import Timestamp

T1 = Timestamp.parse("1700000000.00001")
T2 = Timestamp.parse("1700000002.50000")
T3 = Timestamp.parse("1700000003.00000_000000000000000a")


def test_offers_golden_bytes() -> None:
    offers = [
        wire.Offer("/AUTH_a/c/o", T1, T2, T1, False),
        wire.Offer("/AUTH_a/c/dir/ü ?%", T3, T3, T3, True),
    ]
    assert wire.encode_offers(offers) == (
        b"torus-ssync/1 missing-check\n"
        b"1700000000.00001 1700000002.50000 1700000000.00001 l /AUTH_a/c/o\n"
        b"1700000003.00000_000000000000000a 1700000003.00000_000000000000000a "
        b"1700000003.00000_000000000000000a t /AUTH_a/c/dir/%C3%BC%20%3F%25\n"
    )
    assert wire.decode_offers(wire.encode_offers(offers)) == offers


def test_wants_golden_bytes() -> None:
    wants = [wire.Want("/AUTH_a/c/o", True), wire.Want("/AUTH_a/c/a b", False)]
    body = wire.encode_wants(wants)
    assert body == b"torus-ssync/1 wanted\nd /AUTH_a/c/o\nm /AUTH_a/c/a%20b\n"
    assert wire.decode_wants(body) == wants
    assert wire.decode_wants(wire.WANTED_LINE) == []


def test_offer_of_metadata() -> None:
    meta = ObjectMetadata("/a/c/o", T1, T2, content_type_timestamp=T2)
    assert wire.Offer.of(meta) == wire.Offer("/a/c/o", T1, T2, T2, False)


def test_update_frames() -> None:
    live = ObjectMetadata("/a/c/o", T1, T1, etag="e" * 32, size_bytes=5, body="inline")
    frame = wire.encode_update("PUT", live)
    metadata = encode(live)
    assert frame == b"PUT %d 5\n" % len(metadata) + metadata
    head_line, _, rest = frame.partition(b"\n")
    head = wire.decode_update_head(head_line + b"\n")
    assert head == wire.UpdateHead("PUT", len(metadata), 5)
    assert wire.decode_update_metadata(head, rest) == live

    tombstone = ObjectMetadata.tombstone("/a/c/o", T2)
    frame = wire.encode_update("DELETE", tombstone)
    head_line, _, rest = frame.partition(b"\n")
    head = wire.decode_update_head(head_line + b"\n")
    assert head is not None and head.kind == "DELETE" and head.body_bytes == 0
    assert wire.decode_update_metadata(head, rest) == tombstone
    assert wire.decode_update_head(wire.END_LINE) is None


@pytest.mark.parametrize(
    "line",
    [
        b"PUT 10 5",  # no newline
        b"GET 10 0\n",
        b"PUT ten 5\n",
        b"PUT 0 5\n",
        b"PUT 10 -1\n",
        b"DELETE 10 5\n",  # a tombstone carries no body
        b"PUT %d 0\n" % (wire.MAX_METADATA_BYTES + 1),
        b"END",
    ],
)
def test_bad_update_heads_are_refused(line: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_update_head(line)


def test_a_frame_whose_metadata_disagrees_is_refused() -> None:
    tombstone = ObjectMetadata.tombstone("/a/c/o", T2)
    with pytest.raises(wire.WireError):
        wire.decode_update_metadata(wire.UpdateHead("PUT", 10, 0), encode(tombstone))
    live = ObjectMetadata("/a/c/o", T1, T1, size_bytes=5)
    with pytest.raises(wire.WireError):
        wire.decode_update_metadata(wire.UpdateHead("PUT", 10, 4), encode(live))
    with pytest.raises(wire.WireError):
        wire.decode_update_metadata(wire.UpdateHead("PUT", 10, 5), b"{not json")
    nameless = ObjectMetadata("/a//o", T1, T1, size_bytes=5)
    with pytest.raises(wire.WireError):
        wire.decode_update_metadata(wire.UpdateHead("PUT", 10, 5), encode(nameless))


@pytest.mark.parametrize(
    "body",
    [
        b"torus-ssync/2 missing-check\n",
        b"torus-ssync/1 missing-check\nnow then soon l /a/c/o\n",  # bad timestamps
        b"torus-ssync/1 missing-check\n" + b"%s %s %s x /a/c/o\n" % ((T1.internal.encode(),) * 3),
        b"torus-ssync/1 missing-check\n" + b"%s %s %s l /a/c\n" % ((T1.internal.encode(),) * 3),
        b"torus-ssync/1 missing-check\n"
        + b"%s %s %s l /a/c/%%FF\n" % ((T1.internal.encode(),) * 3),
        b"torus-ssync/1 missing-check\n" + "1 2 3 l /a/c/ü\n".encode(),  # not percent-encoded
        b"torus-ssync/1 missing-check",  # no newline
    ],
)
def test_bad_missing_checks_are_refused(body: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_offers(body)


def test_updates_result_round_trip() -> None:
    result = wire.UpdatesResult(applied=3, ignored=1)
    assert wire.UpdatesResult.decode(result.encode()) == result
    with pytest.raises(wire.WireError):
        wire.UpdatesResult.decode(b'{"applied": 1}')
