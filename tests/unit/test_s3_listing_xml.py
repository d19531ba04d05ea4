"""proxy/s3/listing_xml.py, read back by a real boto3 client.

Each boto3 call below goes through botocore as it would against S3 (its serializer, its
``encoding-type=url`` default and decoding, its paginators, its response parser with the s3
service model); only the network is cut: at botocore's send hook the query is parsed with
``parse_*``, the rows come from the real container listing engine (the container broker's
in-memory twin) with ``listing_query()``, and the body is ``render_*``'s.  That is what the
proxy will do between the two.
"""

from __future__ import annotations

import asyncio
import random

import botocore.session
import pytest
from botocore import parsers
from botocore.exceptions import ClientError
from botocore_answers import InProcessS3
from broker_listing import json_listing

from containerd_.memory import MemoryContainerBroker
from proxy.s3 import listing_xml
from proxy.s3.errors import S3Error
from proxy.s3.listing_xml import Owner
from service.timestamp import Timestamp

OWNER = Owner("test:tester", "test:tester")
ACCOUNT, BUCKET, DEVICE = "AUTH_test", "bucket", "sda"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
MULTIPART_ETAG = "0123456789abcdef0123456789abcdef-3"
# Keys that XML or URLs treat specially; every one must list back exactly.
ODD_KEYS = [
    "a b",
    "a+b",
    "100%",
    "한글/x.txt",
    "x&y<z>'\"",
    "ctl\x01x",
    "cr\rlf\n",
    "tab\there",
    "emoji 🙂",
    "q?#=",
    "dir/sub/leaf",
    "dir/sub2/leaf",
    "dir/top",
    "dir2/x",
    "trailing/",
]


class FakeNetworkS3(InProcessS3):
    """Serves the listing operations from ``broker``'s container listing (and ``buckets``
    for ListBuckets) the way the proxy will; counts listing calls."""

    def __init__(self, broker: MemoryContainerBroker, buckets: list[dict] | None = None) -> None:
        super().__init__()
        self.broker = broker
        self.buckets = buckets or []
        self.listing_calls = 0

    def answer(self, bucket: str, query: dict[str, str]) -> bytes:
        if not bucket:
            params = listing_xml.parse_list_buckets(query)
            return listing_xml.render_list_buckets(
                params, self.account_rows(params.listing_query()), OWNER
            )
        if "versions" in query:
            params = listing_xml.parse_list_object_versions(query)
            rows = self.rows(params.listing_query())
            return listing_xml.render_list_object_versions(bucket, params, rows, OWNER)
        params = listing_xml.parse_list_objects(query)
        rows = self.rows(params.listing_query())
        render = (
            listing_xml.render_list_objects_v2
            if params.version == 2
            else listing_xml.render_list_objects
        )
        return render(bucket, params, rows, OWNER)

    def rows(self, query: dict[str, str]) -> list[dict]:
        """The container server's json listing for ``query``."""
        assert query.pop("format") == "json"
        self.listing_calls += 1
        return json_listing(self.broker, DEVICE, ACCOUNT, BUCKET, query)

    def account_rows(self, query: dict[str, str]) -> list[dict]:
        """The account server's json listing (no delimiter in ListBuckets)."""
        names = sorted(self.buckets, key=lambda row: row["name"].encode())
        rows = [
            row
            for row in names
            if row["name"].startswith(query.get("prefix", ""))
            and row["name"].encode() > query.get("marker", "").encode()
        ]
        return rows[: int(query["limit"])]


def container(keys: list[str], etags: dict[str, str] | None = None) -> MemoryContainerBroker:
    broker = MemoryContainerBroker(b"secret")

    async def fill() -> None:
        await broker.create(DEVICE, ACCOUNT, BUCKET, Timestamp.from_seconds(1_000))
        for index, key in enumerate(keys):
            await broker.put_object(
                DEVICE,
                ACCOUNT,
                BUCKET,
                key,
                Timestamp.from_seconds(1_700_000_000.25 + index),
                index,
                "application/octet-stream",
                (etags or {}).get(key, MD5),
            )

    asyncio.run(fill())
    return broker


def utf8_sorted(keys):
    return sorted(keys, key=lambda key: key.encode())


def expected_listing(keys: list[str], prefix: str = "", delimiter: str = ""):
    """What a whole listing holds: keys and common prefixes, from first principles."""
    found, prefixes = [], set()
    for key in utf8_sorted(keys):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            prefixes.add(prefix + rest[: rest.index(delimiter) + len(delimiter)])
        else:
            found.append(key)
    return found, utf8_sorted(prefixes)


# --- every field, as boto3 reads it -----------------------------------------------------------


def test_list_objects_v2_fields():
    s3 = FakeNetworkS3(container(["b", "a", "multi"], {"multi": MULTIPART_ETAG}))
    got = s3.client.list_objects_v2(Bucket=BUCKET)
    assert (got["Name"], got["Prefix"], got["MaxKeys"], got["KeyCount"]) == (BUCKET, "", 1000, 3)
    assert got["IsTruncated"] is False
    assert got["EncodingType"] == "url"  # botocore asked for it, and decoded
    assert "NextContinuationToken" not in got and "Delimiter" not in got
    first = got["Contents"][0]
    assert first["Key"] == "a"
    assert first["ETag"] == f'"{MD5}"'
    assert first["Size"] == 1
    assert first["StorageClass"] == "STANDARD"
    assert "Owner" not in first  # no fetch-owner
    # 1_700_000_001.25 rounds up, as the Last-Modified header of the object does.
    assert first["LastModified"].isoformat() == "2023-11-14T22:13:22+00:00"
    assert got["Contents"][2]["ETag"] == f'"{MULTIPART_ETAG}"'
    with_owner = s3.client.list_objects_v2(Bucket=BUCKET, FetchOwner=True)
    assert with_owner["Contents"][0]["Owner"] == {"ID": "test:tester", "DisplayName": "test:tester"}


def test_list_objects_v1_fields():
    s3 = FakeNetworkS3(container(["a", "b"]))
    got = s3.client.list_objects(Bucket=BUCKET, Marker="a")
    assert (got["Name"], got["Marker"], got["MaxKeys"], got["IsTruncated"]) == (
        BUCKET,
        "a",
        1000,
        False,
    )
    assert [c["Key"] for c in got["Contents"]] == ["b"]
    assert got["Contents"][0]["Owner"] == {"ID": "test:tester", "DisplayName": "test:tester"}
    assert got["Contents"][0]["Size"] == 1
    assert "NextMarker" not in got


def test_list_object_versions_fields():
    s3 = FakeNetworkS3(container(["a", "b", "c"]))
    got = s3.client.list_object_versions(Bucket=BUCKET, MaxKeys=2)
    assert [v["Key"] for v in got["Versions"]] == ["a", "b"]
    for version in got["Versions"]:
        assert version["VersionId"] == "null"
        assert version["IsLatest"] is True
        assert version["Owner"]["ID"] == "test:tester"
        assert version["StorageClass"] == "STANDARD"
        assert version["ETag"] == f'"{MD5}"'
    assert got["IsTruncated"] is True
    assert (got["NextKeyMarker"], got["NextVersionIdMarker"]) == ("b", "null")
    assert (got["KeyMarker"], got["VersionIdMarker"]) == ("", "")
    rest = s3.client.list_object_versions(Bucket=BUCKET, KeyMarker="b", VersionIdMarker="null")
    assert [v["Key"] for v in rest["Versions"]] == ["c"]
    assert rest["IsTruncated"] is False and "NextKeyMarker" not in rest
    assert (rest["KeyMarker"], rest["VersionIdMarker"]) == ("b", "null")


def test_list_buckets():
    rows = [
        {"name": name, "count": 1, "bytes": 2, "last_modified": "2024-01-02T03:04:05.000000"}
        for name in ("beta", "alpha", "gamma")
    ]
    s3 = FakeNetworkS3(container([]), rows)
    got = s3.client.list_buckets()
    assert got["Owner"] == {"ID": "test:tester", "DisplayName": "test:tester"}
    assert [b["Name"] for b in got["Buckets"]] == ["alpha", "beta", "gamma"]
    assert got["Buckets"][0]["CreationDate"].isoformat() == "2024-01-02T03:04:05+00:00"
    assert "ContinuationToken" not in got and "Prefix" not in got
    pages = list(s3.client.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": 2}))
    assert [[b["Name"] for b in page["Buckets"]] for page in pages] == [
        ["alpha", "beta"],
        ["gamma"],
    ]
    got = s3.client.list_buckets(Prefix="g")
    assert ([b["Name"] for b in got["Buckets"]], got["Prefix"]) == (["gamma"], "g")


# --- paging ---------------------------------------------------------------------------------


def many_keys(seed: int) -> list[str]:
    rng = random.Random(seed)
    keys = set(ODD_KEYS)
    while len(keys) < 150:
        depth = rng.randint(1, 3)
        keys.add("/".join(rng.choice(["a", "b", "c d", "é", "z+"]) for _ in range(depth)))
    return sorted(keys)


@pytest.mark.parametrize("page_size", [1, 2, 7, 1000])
@pytest.mark.parametrize(("prefix", "delimiter"), [("", ""), ("", "/"), ("a/", "/"), ("c d", "")])
def test_paginators_walk_every_listing_exactly_once(page_size, prefix, delimiter):
    keys = many_keys(page_size)
    s3 = FakeNetworkS3(container(keys))
    want_keys, want_prefixes = expected_listing(keys, prefix, delimiter)
    args = {"Bucket": BUCKET, "Prefix": prefix, "Delimiter": delimiter}
    config = {"PaginationConfig": {"PageSize": page_size}}
    for operation, key_list in (
        ("list_objects", "Contents"),
        ("list_objects_v2", "Contents"),
        ("list_object_versions", "Versions"),
    ):
        s3.listing_calls = 0
        got_keys, got_prefixes, pages = [], [], 0
        for page in s3.client.get_paginator(operation).paginate(**args, **config):
            pages += 1
            shown = len(page.get(key_list, [])) + len(page.get("CommonPrefixes", []))
            assert shown <= page_size  # a CommonPrefix counts toward max-keys
            if operation == "list_objects_v2":
                assert page["KeyCount"] == shown
            got_keys += [entry["Key"] for entry in page.get(key_list, [])]
            got_prefixes += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
        assert got_keys == want_keys, operation
        assert got_prefixes == want_prefixes, operation
        total = len(want_keys) + len(want_prefixes)
        assert pages == max(1, -(-total // page_size)), operation
        assert s3.listing_calls == pages  # O(page): one container listing call a page


def test_v1_next_marker_only_with_a_delimiter():
    s3 = FakeNetworkS3(container(["a", "b/1", "b/2", "c"]))
    page = s3.client.list_objects(Bucket=BUCKET, MaxKeys=2)
    assert page["IsTruncated"] is True and "NextMarker" not in page
    page = s3.client.list_objects(Bucket=BUCKET, MaxKeys=2, Delimiter="/")
    assert page["IsTruncated"] is True
    assert page["NextMarker"] == "b/"  # a page ending in a CommonPrefix continues past it
    rest = s3.client.list_objects(Bucket=BUCKET, Marker="b/", Delimiter="/")
    assert [c["Key"] for c in rest["Contents"]] == ["c"] and "CommonPrefixes" not in rest


def test_v2_tokens_and_start_after():
    s3 = FakeNetworkS3(container(["a", "b", "c", "d"]))
    first = s3.client.list_objects_v2(Bucket=BUCKET, MaxKeys=1, StartAfter="a")
    assert [c["Key"] for c in first["Contents"]] == ["b"]
    assert first["StartAfter"] == "a" and "ContinuationToken" not in first
    token = first["NextContinuationToken"]
    second = s3.client.list_objects_v2(
        Bucket=BUCKET, MaxKeys=1, StartAfter="a", ContinuationToken=token
    )
    assert [c["Key"] for c in second["Contents"]] == ["c"]  # the token wins over start-after
    assert (second["ContinuationToken"], second["StartAfter"]) == (token, "a")


def test_max_keys_zero_and_over_1000():
    s3 = FakeNetworkS3(container([f"k{i:04d}" for i in range(1001)]))
    empty = s3.client.list_objects_v2(Bucket=BUCKET, MaxKeys=0)
    assert (empty["KeyCount"], empty["MaxKeys"], empty["IsTruncated"]) == (0, 0, False)
    assert "Contents" not in empty
    empty = s3.client.list_objects(Bucket=BUCKET, MaxKeys=0)
    assert empty["IsTruncated"] is False and "Contents" not in empty
    big = s3.client.list_objects_v2(Bucket=BUCKET, MaxKeys=5000)
    assert (big["KeyCount"], big["MaxKeys"], big["IsTruncated"]) == (1000, 5000, True)


# --- escaping and encoding-type ---------------------------------------------------------------


def test_odd_keys_round_trip_through_botocore_decoding():
    s3 = FakeNetworkS3(container(ODD_KEYS))
    for operation, key_list in (
        ("list_objects", "Contents"),
        ("list_objects_v2", "Contents"),
        ("list_object_versions", "Versions"),
    ):
        got = getattr(s3.client, operation)(Bucket=BUCKET)
        assert [c["Key"] for c in got[key_list]] == utf8_sorted(ODD_KEYS), operation
    got = s3.client.list_objects_v2(Bucket=BUCKET, Delimiter="/", Prefix="dir/", StartAfter="dir/")
    assert [p["Prefix"] for p in got["CommonPrefixes"]] == ["dir/sub/", "dir/sub2/"]
    assert (got["Prefix"], got["Delimiter"], got["StartAfter"]) == ("dir/", "/", "dir/")


def test_url_encoding_as_aws_writes_it():
    """Asked for by the caller, botocore leaves the values as S3 sent them."""
    s3 = FakeNetworkS3(container(["a b", "a+b", "100%", "한글/x.txt", "run books/x"]))
    got = s3.client.list_objects_v2(Bucket=BUCKET, EncodingType="url", Delimiter="/")
    assert [c["Key"] for c in got["Contents"]] == ["100%25", "a+b", "a%2Bb"]
    assert [p["Prefix"] for p in got["CommonPrefixes"]] == ["run+books/", "%ED%95%9C%EA%B8%80/"]
    got = s3.client.list_objects(Bucket=BUCKET, EncodingType="url", Prefix="a ", Marker="a b")
    assert (got["Prefix"], got["Marker"]) == ("a+", "a+b")
    got = s3.client.list_object_versions(Bucket=BUCKET, EncodingType="url", KeyMarker="100%")
    assert got["KeyMarker"] == "100%25"
    assert [v["Key"] for v in got["Versions"]][:2] == ["a+b", "a%2Bb"]


def parse(operation: str, body: bytes) -> dict:
    model = botocore.session.get_session().get_service_model("s3").operation_model(operation)
    response = {"body": body, "headers": {}, "status_code": 200}
    return parsers.RestXMLParser().parse(response, model.output_shape)


def test_xml_escaping_without_url_encoding():
    """Without encoding-type (boto3 always sends it; other clients may not)."""
    keys = ["x&y<z>'\"", "cr\rlf\n", "tab\there", "한글", "]]>"]
    rows = [
        {"name": key, "hash": MD5, "bytes": 1, "last_modified": "2024-01-01T00:00:00.000000"}
        for key in utf8_sorted(keys)
    ]
    params = listing_xml.parse_list_objects({"list-type": "2", "prefix": "", "start-after": "<&>"})
    body = listing_xml.render_list_objects_v2(BUCKET, params, rows, OWNER)
    assert b"cr&#13;lf" in body  # a bare CR would reach the client as LF
    got = parse("ListObjectsV2", body)
    assert [c["Key"] for c in got["Contents"]] == utf8_sorted(keys)
    assert got["StartAfter"] == "<&>"
    # A C0 control has no XML 1.0 form at all: written as a reference, as AWS does, which
    # strict parsers refuse; encoding-type=url is the way to list such keys (see above).
    assert listing_xml.xml_text("a\x01b") == "a&#1;b"


# --- parameter errors, as S3 answers them -----------------------------------------------------


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error


NOT_AN_INTEGER = "Provided max-keys not an integer or within integer range"
NEGATIVE = "Argument max-keys must be an integer between 0 and 2147483647"
BAD_TOKEN = "The continuation token provided is incorrect"


@pytest.mark.parametrize(
    ("query", "name", "message"),
    [
        ({"max-keys": "abc"}, "max-keys", NOT_AN_INTEGER),
        ({"max-keys": ""}, "max-keys", NOT_AN_INTEGER),
        ({"max-keys": "2147483648"}, "max-keys", NOT_AN_INTEGER),
        ({"max-keys": "-1"}, "max-keys", NEGATIVE),
        ({"encoding-type": "xml"}, "encoding-type", "Invalid Encoding Method specified in Request"),
        ({"list-type": "2", "continuation-token": "!!"}, "continuation-token", BAD_TOKEN),
        ({"list-type": "2", "continuation-token": "bm90IG91cnM="}, "continuation-token", BAD_TOKEN),
        ({"list-type": "2", "continuation-token": ""}, "continuation-token", BAD_TOKEN),
        ({"list-type": "3"}, "list-type", "Invalid List Type specified in Request"),
    ],
)
def test_bad_list_objects_parameters(query, name, message):
    with pytest.raises(S3Error) as caught:
        listing_xml.parse_list_objects(query)
    error = caught.value
    assert (error.code, error.status, error.message) == ("InvalidArgument", 400, message)
    assert error.extra == {"ArgumentName": name, "ArgumentValue": query[name]}


def test_bad_parameters_through_the_client():
    s3 = FakeNetworkS3(container(["a"]))
    error = error_of(lambda: s3.client.list_objects_v2(Bucket=BUCKET, ContinuationToken="junk"))
    assert (error["Code"], error["ArgumentName"]) == ("InvalidArgument", "continuation-token")
    error = error_of(lambda: s3.client.list_objects(Bucket=BUCKET, EncodingType="json"))
    assert error["Message"] == "Invalid Encoding Method specified in Request"
    error = error_of(lambda: s3.client.list_object_versions(Bucket=BUCKET, VersionIdMarker="null"))
    assert error["Message"] == "A version-id marker cannot be specified without a key marker."
    error = error_of(
        lambda: s3.client.list_object_versions(Bucket=BUCKET, KeyMarker="a", VersionIdMarker="v1")
    )
    assert error["Message"] == "Invalid version id specified"
    for value in ("0", "10001", "x"):  # botocore itself refuses 0, so straight to the parser
        with pytest.raises(S3Error) as caught:
            listing_xml.parse_list_buckets({"max-buckets": value})
        assert caught.value.extra["ArgumentName"] == "max-buckets"


def test_tokens_are_opaque_and_versioned():
    for marker in ("a", "한글/x", "a b+c", "x" * 1024):
        token = listing_xml.encode_token(marker)
        assert listing_xml.decode_token(token) == marker
        assert marker.encode() not in token.encode()
    params = listing_xml.parse_list_objects({"list-type": "2", "continuation-token": token})
    assert params.listing_query() == {"format": "json", "limit": "1001", "marker": "x" * 1024}


def test_listing_queries():
    params = listing_xml.parse_list_objects(
        {"prefix": "p/", "delimiter": "/", "marker": "p/a", "max-keys": "10"}
    )
    assert params.listing_query() == {
        "format": "json",
        "limit": "11",
        "prefix": "p/",
        "delimiter": "/",
        "marker": "p/a",
    }
    assert listing_xml.parse_list_object_versions({"key-marker": "k"}).listing_query() == {
        "format": "json",
        "limit": "1001",
        "marker": "k",
    }
    # ListBuckets' whole page (10,000) asks a Swift listing's most, not one row past it
    # (10,001 is a 412); the proxy sent 10,000 before too, clamped in proxy/s3/service_ops.py.
    assert listing_xml.parse_list_buckets({}).listing_query()["limit"] == "10000"


def test_time_and_etag_forms():
    assert listing_xml.s3_time("2024-01-01T00:00:00.000000") == "2024-01-01T00:00:00.000Z"
    assert listing_xml.s3_time("2024-01-01T00:00:00.000001") == "2024-01-01T00:00:01.000Z"
    assert listing_xml.s3_time("2024-12-31T23:59:59.500000") == "2025-01-01T00:00:00.000Z"
    assert listing_xml.quoted_etag(MD5) == f'"{MD5}"'
    assert listing_xml.quoted_etag(f'"{MULTIPART_ETAG}"') == f'"{MULTIPART_ETAG}"'


def test_encoded_prefix_as_botocore_reads_it():
    """v2 and versions decode Prefix; botocore's v1 decoder leaves it out (boto3 issue 3534),
    so a v1 client sees it encoded, as it does against AWS."""
    s3 = FakeNetworkS3(container(["c d/1", "c d/2"]))
    v2 = s3.client.list_objects_v2(Bucket=BUCKET, Prefix="c d/")
    assert (v2["Prefix"], [c["Key"] for c in v2["Contents"]]) == ("c d/", ["c d/1", "c d/2"])
    versions = s3.client.list_object_versions(Bucket=BUCKET, Prefix="c d/")
    assert versions["Prefix"] == "c d/"
    v1 = s3.client.list_objects(Bucket=BUCKET, Prefix="c d/")
    assert (v1["Prefix"], [c["Key"] for c in v1["Contents"]]) == ("c+d/", ["c d/1", "c d/2"])
