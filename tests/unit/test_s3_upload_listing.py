"""ListMultipartUploads (proxy/s3/upload_listing.py) and ListBuckets' page (service_ops.py),
over the real container listing engine (the container broker's in-memory twin) and read back
by a real boto3 client.

The uploads container holds marker names as upload_store names them; every page is checked
against a listing computed from first principles (sort the uploads by key then upload id,
roll keys up into common prefixes), and paging with the next markers must give back the
whole listing, once, for delimiters the container can apply and for those it cannot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from botocore_answers import InProcessS3
from broker_listing import json_listing
from hypothesis import given, settings
from hypothesis import strategies as st

from containerd_.memory import MemoryContainerBroker
from proxy.s3 import listing_xml, service_ops, upload_listing
from proxy.s3.errors import S3Error
from proxy.s3.listing_xml import Owner
from proxy.s3.upload_listing import Upload, UploadsParams, uploads_page
from proxy.s3.upload_store import (
    decode_key,
    encode_key,
    is_upload_container,
    marker_name,
    parse_marker_name,
)
from service.timestamp import Timestamp

OWNER = Owner("test:tester", "test:tester")
ACCOUNT, CONTAINER, DEVICE, BUCKET = "AUTH_test", "bucket+uploads", "sda", "bucket"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
# Characters that order or split keys in interesting ways: below and above "/", the escape
# and the separator's "\x01", hex digits (upload ids are made of them), multi-byte UTF-8.
KEY_CHARS = ["\x01", "\x02", " ", "-", "/", "0", "a", "f", "z", "é", "🙂"]
DELIMITERS = ["/", "-", "a/", "\x01", "\x02", "0", "fa", "é"]


def upload_id(n: int) -> str:
    return f"{n:032x}"


class UploadsContainer:
    """A bucket's uploads container in the container broker's in-memory twin."""

    def __init__(self, uploads: list[tuple[str, str]]) -> None:
        self.broker = MemoryContainerBroker(b"secret")
        self.calls: list[dict[str, str]] = []

        async def fill() -> None:
            await self.broker.create(DEVICE, ACCOUNT, CONTAINER, Timestamp.from_seconds(1_000))
            for index, (key, upload) in enumerate(uploads):
                await self.broker.put_object(
                    DEVICE,
                    ACCOUNT,
                    CONTAINER,
                    marker_name(key, upload),
                    Timestamp.from_seconds(1_700_000_000.25 + index),
                    0,
                    "application/octet-stream",
                    MD5,
                )

        asyncio.run(fill())

    async def fetch(self, query: dict[str, str]) -> list[dict]:
        """The container server's json listing for ``query``."""
        assert query["format"] == "json"
        self.calls.append(query)
        return json_listing(self.broker, DEVICE, ACCOUNT, CONTAINER, query)

    def page(self, params: UploadsParams) -> upload_listing.UploadsPage:
        return asyncio.run(uploads_page(params, self.fetch))


def expected_entries(uploads: list[tuple[str, str]], params: UploadsParams) -> list:
    """Every entry (``(key, upload id)`` or a common prefix) a listing from the params'
    markers holds, from first principles."""
    prefix, delimiter, key_marker = params.prefix, params.delimiter, params.key_marker

    def common(key: str) -> str | None:
        rest = key[len(prefix) :]
        if not delimiter or delimiter not in rest:
            return None
        return prefix + rest[: rest.index(delimiter) + len(delimiter)]

    entries: list = []
    for key, upload in sorted(uploads):  # str order is UTF-8 byte order
        if not key.startswith(prefix):
            continue
        if key_marker:
            same_key_after = key == key_marker and params.upload_id_marker
            if key < key_marker or (key == key_marker and not same_key_after):
                continue
            if same_key_after and upload <= params.upload_id_marker:
                continue
        cp = common(key)
        if cp is None:
            entries.append((key, upload))
        elif cp != key_marker and cp not in entries[-1:]:
            entries.append(cp)
    return entries


def as_entries(page: upload_listing.UploadsPage) -> list:
    return [(e.key, e.upload_id) if isinstance(e, Upload) else e for e in page.entries]


def all_pages(container: UploadsContainer, params: UploadsParams) -> Iterator:
    """Every page from ``params`` on, following the next markers as a client does."""
    for _ in range(1000):
        page = container.page(params)
        yield page
        if not page.truncated:
            return
        key, upload = page.next_markers()
        assert key is not None
        params = dataclasses.replace(params, key_marker=key, upload_id_marker=upload or "")
    raise AssertionError("the pages never end")


# --- marker names -----------------------------------------------------------------------------

keys = st.text(st.sampled_from(KEY_CHARS), min_size=1, max_size=6)


@given(
    st.lists(
        st.tuples(keys, st.integers(0, 3).map(upload_id)), min_size=2, max_size=12, unique=True
    )
)
def test_marker_names_sort_as_s3_lists_uploads(uploads):
    names = sorted(marker_name(k, u).encode() for k, u in uploads)
    assert [parse_marker_name(n.decode()) for n in names] == sorted(uploads)


@given(keys, keys)
def test_a_key_prefix_encodes_to_a_prefix_and_back(key, more):
    assert encode_key(key + more).startswith(encode_key(key))
    assert decode_key(encode_key(key)) == key
    assert "\x01\x01" not in encode_key(key)


def test_photo_sorts_before_photo_dash_1():
    # ``<key>/<upload id>`` put "photo-1/..." before "photo/..." ("-" is below "/").
    assert marker_name("photo", "f" * 32) < marker_name("photo-1", "0" * 32)


def test_not_a_marker_name():
    assert parse_marker_name("plain") is None
    assert parse_marker_name("key\x01\x01") is None
    assert parse_marker_name("a\x01\x02b\x01\x01" + upload_id(1)) == ("a\x01b", upload_id(1))


def test_upload_containers_are_told_apart():
    assert is_upload_container("b+segments") and is_upload_container("b+uploads")
    assert not is_upload_container("b") and not is_upload_container("uploads")


# --- pages --------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    uploads=st.lists(st.tuples(keys, st.integers(0, 2).map(upload_id)), max_size=25, unique=True),
    prefix=st.sampled_from(["", "a", "/", "\x01", "é"]),
    delimiter=st.sampled_from(["", *DELIMITERS]),
    max_uploads=st.integers(1, 6),
)
def test_pages_give_the_whole_listing_once(uploads, prefix, delimiter, max_uploads):
    container = UploadsContainer(uploads)
    params = UploadsParams(prefix=prefix, delimiter=delimiter, max_uploads=max_uploads)
    got = []
    for page in all_pages(container, params):
        assert len(page.entries) <= max_uploads
        assert page.truncated or len(page.entries) <= max_uploads
        got += as_entries(page)
    assert got == expected_entries(uploads, params)


@settings(max_examples=150, deadline=None)
@given(
    uploads=st.lists(st.tuples(keys, st.integers(0, 2).map(upload_id)), max_size=25, unique=True),
    delimiter=st.sampled_from(["", *DELIMITERS]),
    key_marker=keys,
    id_marker=st.sampled_from(["", upload_id(0), upload_id(1), "zz"]),
    max_uploads=st.integers(1, 1000),
)
def test_a_page_from_any_markers(uploads, delimiter, key_marker, id_marker, max_uploads):
    container = UploadsContainer(uploads)
    params = UploadsParams(
        delimiter=delimiter,
        key_marker=key_marker,
        upload_id_marker=id_marker,
        max_uploads=max_uploads,
    )
    page = container.page(params)
    everything = expected_entries(uploads, params)
    assert as_entries(page) == everything[:max_uploads]
    assert page.truncated == (len(everything) > max_uploads)


def test_a_page_is_one_listing_when_the_container_can_delimit():
    uploads = [
        (f"dir{d:02d}/k{k}", upload_id(n)) for d in range(30) for k in range(3) for n in (1, 2)
    ]
    uploads += [(f"top{k}", upload_id(1)) for k in range(30)]
    container = UploadsContainer(uploads)
    pages = list(all_pages(container, UploadsParams(delimiter="/", max_uploads=10)))
    assert len(container.calls) == len(pages) == 6  # 30 prefixes and 30 uploads, 10 a page
    assert all(call["delimiter"] == "/" and int(call["limit"]) == 11 for call in container.calls)
    assert pages[2].prefixes[-1] == "dir29/" and pages[3].uploads[0].key == "top0"


def test_a_delimiter_the_container_cannot_apply_skips_each_subtree_with_one_listing():
    # "0" is a hex digit: it could match inside an upload id, so prefixes are computed here.
    uploads = [(f"x{d}0/{k}", upload_id(n)) for d in range(1, 6) for k in range(50) for n in (1, 2)]
    container = UploadsContainer(uploads)
    page = container.page(UploadsParams(delimiter="0", max_uploads=1000))
    assert page.prefixes == [f"x{d}0" for d in range(1, 6)] and not page.truncated
    assert all("delimiter" not in call for call in container.calls)
    assert len(container.calls) <= 6  # one past each subtree, not 500 rows walked
    assert sum(int(call["limit"]) for call in container.calls) <= 6 * 1001


def test_next_markers_of_a_page_ending_in_an_upload_or_a_prefix():
    container = UploadsContainer([("a", upload_id(1)), ("a", upload_id(2)), ("b/c", upload_id(1))])
    first = container.page(UploadsParams(max_uploads=1))
    assert first.next_markers() == ("a", upload_id(1))
    by_dir = container.page(UploadsParams(delimiter="/", max_uploads=2, key_marker="a"))
    assert as_entries(by_dir) == ["b/"] and by_dir.next_markers() == (None, None)
    ending = container.page(UploadsParams(delimiter="/", max_uploads=2))
    assert as_entries(ending) == [("a", upload_id(1)), ("a", upload_id(2))]
    assert ending.truncated and ending.next_markers() == ("a", upload_id(2))
    with_prefix_last = UploadsContainer([("b/c", upload_id(1)), ("c", upload_id(1))])
    page = with_prefix_last.page(UploadsParams(delimiter="/", max_uploads=1))
    assert page.next_markers() == ("b/", None)


def test_max_uploads_zero_is_an_empty_page():
    container = UploadsContainer([("a", upload_id(1))])
    page = container.page(UploadsParams(max_uploads=0))
    assert page.entries == [] and not page.truncated and container.calls == []


def test_foreign_names_in_the_container_are_not_uploads():
    container = UploadsContainer([("a", upload_id(1)), ("b", upload_id(1))])
    asyncio.run(
        container.broker.put_object(
            DEVICE, ACCOUNT, CONTAINER, "a-plain", Timestamp.from_seconds(2e9), 0, "x", MD5
        )
    )
    page = container.page(UploadsParams(max_uploads=2))
    assert as_entries(page) == [("a", upload_id(1)), ("b", upload_id(1))] and not page.truncated


# --- through boto3 ------------------------------------------------------------------------------


class FakeNetworkS3(InProcessS3):
    """ListMultipartUploads answered by upload_listing from ``container``, and ListBuckets
    by service_ops from ``account`` (names), the way the proxy answers them."""

    def __init__(self, container: UploadsContainer, account: list[str] | None = None) -> None:
        super().__init__()
        self.container = container
        self.account = sorted(account or [], key=str.encode)
        self.account_calls: list[dict[str, str]] = []

    def answer(self, bucket: str, query: dict[str, str]) -> bytes:
        return asyncio.run(self.answer_async(bucket, query))

    async def answer_async(self, bucket: str, query: dict[str, str]) -> bytes:
        if not bucket:
            params = listing_xml.parse_list_buckets(query)
            rows = await service_ops.bucket_rows(params, self.account_listing)
            return listing_xml.render_list_buckets(params, rows, OWNER)
        assert "uploads" in query
        params = upload_listing.parse_list_uploads(query)
        page = await uploads_page(params, self.container.fetch)
        return upload_listing.render_list_uploads(bucket, params, page, OWNER)

    async def account_listing(self, query: dict[str, str]) -> list[dict]:
        self.account_calls.append(query)
        names = [
            n
            for n in self.account
            if n.startswith(query.get("prefix", "")) and n > query.get("marker", "")
        ]
        return [
            {"name": n, "count": 0, "bytes": 0, "last_modified": "2026-11-30T01:02:03.000000"}
            for n in names[: int(query["limit"])]
        ]


def test_fields_as_boto3_reads_them():
    s3 = FakeNetworkS3(UploadsContainer([("k", upload_id(1)), ("d/x", upload_id(2))]))
    got = s3.client.list_multipart_uploads(Bucket=BUCKET, Delimiter="/", MaxUploads=1)
    assert (got["Bucket"], got["KeyMarker"], got["UploadIdMarker"]) == (BUCKET, "", "")
    assert (got["Delimiter"], got["MaxUploads"], got["IsTruncated"]) == ("/", 1, True)
    assert got["CommonPrefixes"] == [{"Prefix": "d/"}] and "Uploads" not in got
    assert got["NextKeyMarker"] == "d/" and "NextUploadIdMarker" not in got
    rest = s3.client.list_multipart_uploads(Bucket=BUCKET, Delimiter="/", KeyMarker="d/")
    assert rest["IsTruncated"] is False and "NextKeyMarker" not in rest
    (upload,) = rest["Uploads"]
    assert (upload["Key"], upload["UploadId"], upload["StorageClass"]) == (
        "k",
        upload_id(1),
        "STANDARD",
    )
    assert upload["Initiator"] == upload["Owner"] == {"ID": OWNER.id, "DisplayName": OWNER.id}
    # The marker's time (1_700_000_000.25), rounded up as the object listings round it.
    assert upload["Initiated"].isoformat() == "2023-11-14T22:13:21+00:00"


def test_the_paginator_walks_every_upload():
    uploads = [(f"k{n % 7}/{n}", uuid.UUID(int=n).hex) for n in range(40)]
    s3 = FakeNetworkS3(UploadsContainer(uploads))
    paginator = s3.client.get_paginator("list_multipart_uploads")
    got = [
        (u["Key"], u["UploadId"])
        for page in paginator.paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 3})
        for u in page.get("Uploads", [])
    ]
    assert got == sorted(uploads)
    by_dir = paginator.paginate(Bucket=BUCKET, Delimiter="/", PaginationConfig={"PageSize": 2})
    prefixes = [p["Prefix"] for page in by_dir for p in page.get("CommonPrefixes", [])]
    assert prefixes == [f"k{n}/" for n in range(7)]


def test_url_encoding_encodes_what_holds_keys():
    odd = "a b+c/ä\x01"
    s3 = FakeNetworkS3(UploadsContainer([(odd, upload_id(1)), ("a b/x", upload_id(1))]))
    got = s3.client.list_multipart_uploads(
        Bucket=BUCKET, EncodingType="url", Prefix="a b", KeyMarker="a a", MaxUploads=1
    )
    # boto3 does not decode ListMultipartUploads for itself: what S3 sent is what it shows.
    assert got["EncodingType"] == "url"
    assert (got["Prefix"], got["KeyMarker"]) == ("a+b", "a+a")
    assert [u["Key"] for u in got["Uploads"]] == ["a+b%2Bc/%C3%A4%01"]
    assert got["NextKeyMarker"] == "a+b%2Bc/%C3%A4%01"
    by_dir = s3.client.list_multipart_uploads(Bucket=BUCKET, EncodingType="url", Delimiter=" ")
    assert by_dir["CommonPrefixes"] == [{"Prefix": "a+"}] and by_dir["Delimiter"] == "+"


def test_a_key_with_a_control_character_lists_as_xml_can_hold_it():
    s3 = FakeNetworkS3(UploadsContainer([("cr\rx", upload_id(1))]))
    assert s3.client.list_multipart_uploads(Bucket=BUCKET)["Uploads"][0]["Key"] == "cr\rx"


@pytest.mark.parametrize(
    ("query", "name"),
    [({"max-uploads": "x"}, "max-uploads"), ({"encoding-type": "y"}, "encoding-type")],
)
def test_bad_arguments(query, name):
    with pytest.raises(S3Error) as error:
        upload_listing.parse_list_uploads(query)
    assert error.value.code == "InvalidArgument"


def test_max_uploads_over_1000_serves_1000():
    assert upload_listing.parse_list_uploads({"max-uploads": "5000"}).max_uploads == 1000


# --- ListBuckets ----------------------------------------------------------------------------


def test_list_buckets_fills_its_page_past_upload_containers():
    names = []
    for n in range(12):
        names += [f"b{n:02d}", f"b{n:02d}+segments", f"b{n:02d}+uploads"]
    s3 = FakeNetworkS3(UploadsContainer([]), names)
    first = s3.client.list_buckets(MaxBuckets=5)
    assert [b["Name"] for b in first["Buckets"]] == [f"b{n:02d}" for n in range(5)]
    assert "ContinuationToken" in first
    buckets = [
        b["Name"]
        for page in s3.client.get_paginator("list_buckets").paginate(
            PaginationConfig={"PageSize": 5}
        )
        for b in page["Buckets"]
    ]
    assert buckets == [f"b{n:02d}" for n in range(12)]


def test_list_buckets_lists_on_until_the_page_is_full():
    # A page of 2 when each bucket is followed by two upload containers: the first listing
    # (limit 3) yields one bucket, the second asks for three rows a missing bucket.
    names = [n for b in ("a", "b", "c", "d") for n in (b, b + "+segments", b + "+uploads")]
    s3 = FakeNetworkS3(UploadsContainer([]), names)
    got = s3.client.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in got["Buckets"]] == ["a", "b"] and "ContinuationToken" in got
    assert [int(call["limit"]) for call in s3.account_calls] == [3, 6]
    last = s3.client.list_buckets(MaxBuckets=2, ContinuationToken=got["ContinuationToken"])
    assert [b["Name"] for b in last["Buckets"]] == ["c", "d"]
    assert "ContinuationToken" not in last


def test_list_buckets_default_page_says_when_there_are_more_than_10000():
    s3 = FakeNetworkS3(UploadsContainer([]), [f"b{n:05d}" for n in range(10_001)])
    got = s3.client.list_buckets()
    assert len(got["Buckets"]) == 10_000 and "ContinuationToken" in got
    assert [int(call["limit"]) for call in s3.account_calls] == [10_000, 1]


@settings(max_examples=60, deadline=None)
@given(
    buckets=st.lists(
        st.tuples(st.from_regex(r"[a-z0-9][a-z0-9.-]{1,6}[a-z0-9]", fullmatch=True), st.booleans()),
        unique_by=lambda b: b[0],
        max_size=30,
    ),
    orphans=st.lists(st.sampled_from(["zz+segments", "m+uploads", "0+segments"]), unique=True),
    page_size=st.integers(1, 7),
)
def test_list_buckets_pages_are_full_until_the_last(buckets, orphans, page_size):
    names = list(orphans)
    for name, has_uploads in buckets:
        names += [name, name + "+segments", name + "+uploads"] if has_uploads else [name]
    s3 = FakeNetworkS3(UploadsContainer([]), names)
    pages = list(
        s3.client.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": page_size})
    )
    listed = [b["Name"] for page in pages for b in page["Buckets"]]
    assert listed == sorted(name for name, _ in buckets)
    assert all(len(page["Buckets"]) == page_size for page in pages[:-1])
    assert "ContinuationToken" not in pages[-1]
