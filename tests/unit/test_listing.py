"""service.listing and service.listing_tables: byte order with long names, and every page of
both cursors (LMDB, sorted list) against a naive oracle of Swift's listing semantics."""

from __future__ import annotations

import os

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.listing import ListingQuery, Subdir, encode_name, list_page, successor
from service.listing_tables import (
    SHORT_NAME_BYTES,
    ListingTable,
    SortedRows,
    decode_bucket,
    encode_bucket,
    successor_of_scope,
)

# Long names share long prefixes, some cut by the 494-byte key limit inside a character.
LONG_HEADS = ["x" * 493, "x" * 494, "x" * 495, "é" * 247, "x" * 493 + "é", "a/" * 250]
ALPHABET = "ab/-é\U0001f600"
short_names = st.text(ALPHABET, min_size=1, max_size=6)
long_names = st.builds(lambda head, tail: head + tail, st.sampled_from(LONG_HEADS), short_names)
names_strategy = st.lists(st.one_of(short_names, long_names), max_size=40, unique=True)


@st.composite
def queries(draw, names):
    """Parameters that often hit: mostly unset, else cut from the names themselves."""
    cuts = [name[:k] for name in names for k in (1, 2, 3, 494, 495, len(name))]
    cuts += [name[:k] for name in names for k, char in enumerate(name) if char == "/"]
    near = st.sampled_from(cuts) if cuts else st.just("")

    def sometimes(strategy, percent):
        return draw(strategy) if draw(st.integers(0, 99)) < percent else ""

    path = draw(near) if draw(st.integers(0, 99)) < 20 else None
    return {
        "prefix": sometimes(st.one_of(near, short_names), 40),
        "delimiter": sometimes(st.sampled_from(["/", "-", "a/", "/é", "\U0001f600"]), 60),
        "marker": sometimes(st.one_of(near, short_names, long_names), 40),
        "end_marker": sometimes(st.one_of(near, short_names, long_names), 30),
        "limit": draw(st.integers(1, 45)) if draw(st.integers(0, 99)) < 95 else 0,
        "reverse": draw(st.booleans()),
        "path": draw(st.sampled_from(["", "a", "b//"])) if path == "" else path,
    }


def oracle(names, *, prefix, delimiter, marker, end_marker, limit, reverse, path):
    """Swift's listing, naively: filter every name, then collapse (str order = UTF-8 order)."""
    if path is not None:
        prefix, delimiter = (path.rstrip("/") + "/" if path else ""), "/"
    lower, upper = (end_marker, marker) if reverse else (marker, end_marker)
    chosen = sorted(
        n
        for n in names
        if n.startswith(prefix) and (not lower or n > lower) and (not upper or n < upper)
    )
    page, collapsed = [], None
    for name in reversed(chosen) if reverse else chosen:
        if len(page) >= limit:
            break
        if path is not None:
            rest = name[len(prefix) :]
            if rest and "/" not in rest[:-1]:
                page.append(name)
            continue
        if collapsed is not None and name.startswith(collapsed):
            continue
        end = name.find(delimiter, len(prefix)) if delimiter else -1
        if end < 0:
            page.append(name)
            continue
        collapsed = name[: end + len(delimiter)]
        if collapsed != lower:
            page.append(Subdir(collapsed))
    return page


@pytest.fixture(scope="module")
def lmdb_table(tmp_path_factory):
    env = lmdb.open(str(tmp_path_factory.mktemp("listing") / "db"), max_dbs=2, map_size=1 << 30)
    assert env.max_key_size() >= SHORT_NAME_BYTES + 17
    yield env, ListingTable(env.open_db(b"rows"))
    env.close()


def fill(env, table, names, scope):
    # Neighbouring scopes hold the same names: a page must never step into them.
    value = int.from_bytes(scope)
    neighbours = [(v % (1 << 128)).to_bytes(16) for v in (value - 1, value + 1)]
    with env.begin(write=True) as txn:
        for other in neighbours:
            for name in names:
                table.put(txn, other, name.encode(), b"other")
        for name in names:
            table.put(txn, scope, name.encode(), name.encode())


def pages(env, table, names, query, scope):
    memory = SortedRows()
    for name in names:
        memory.put(name.encode(), name)
    with env.begin() as txn:
        from_lmdb = list_page(table.cursor(txn, scope, lambda n, v: v.decode()), query)
    return from_lmdb, list_page(memory.cursor(), query)


@settings(max_examples=300)
@given(names_strategy, st.data(), st.sampled_from([b"\x00" * 15 + b"\x01", b"\x7f" * 16]))
def test_both_cursors_page_exactly_as_swift_does(lmdb_table, names, data, fixed) -> None:
    env, table = lmdb_table
    params = data.draw(queries(names))
    scope = fixed[:8] + os.urandom(8)  # a fresh scope per example in the shared table
    fill(env, table, names, scope)
    from_lmdb, from_memory = pages(env, table, names, ListingQuery.build(**params), scope)
    assert from_lmdb == from_memory == oracle(names, **params)


@given(
    st.lists(st.text("ab/", min_size=1, max_size=5), max_size=30, unique=True),
    st.sampled_from(["", "a", "a/", "b", "a/b", "/", "a//"]),
    st.sampled_from(["", "a", "a/a", "b/"]),
    st.booleans(),
)
def test_path_lists_direct_children_only(lmdb_table, names, path, marker, reverse) -> None:
    env, table = lmdb_table
    scope = os.urandom(16)
    fill(env, table, names, scope)
    params = dict(path=path, marker=marker, reverse=reverse, prefix="", delimiter="")
    params.update(end_marker="", limit=10_000)
    from_lmdb, from_memory = pages(env, table, names, ListingQuery.build(**params), scope)
    assert from_lmdb == from_memory == oracle(names, **params)


@given(names_strategy)
def test_full_scans_are_in_byte_order_of_the_full_names(lmdb_table, names) -> None:
    env, table = lmdb_table
    scope = os.urandom(16)
    fill(env, table, names, scope)
    expected = sorted(name.encode() for name in names)
    with env.begin() as txn:
        cursor = table.cursor(txn, scope, lambda n, v: v)
        assert [n for n, _ in cursor.ascending(b"")] == expected
        assert [n for n, _ in cursor.descending(None)] == expected[::-1]
        for probe in expected:
            assert [n for n, _ in cursor.ascending(probe)] == [n for n in expected if n >= probe]
            below = [n for n, _ in cursor.descending(probe)]
            assert below == [n for n in expected if n < probe][::-1]


def test_the_last_scope_and_the_first_end_cleanly(lmdb_table) -> None:
    env, table = lmdb_table
    names = ["a", "b/c", "x" * 600]
    for scope in (b"\xff" * 16, b"\x00" * 16):
        fill(env, table, names, scope)
        from_lmdb, from_memory = pages(env, table, names, ListingQuery.build(reverse=True), scope)
        assert from_lmdb == from_memory == ["x" * 600, "b/c", "a"]


def test_long_names_share_a_bucket_and_leave_it_when_deleted(lmdb_table) -> None:
    env, table = lmdb_table
    scope = os.urandom(16)
    head = b"y" * SHORT_NAME_BYTES
    with env.begin(write=True) as txn:
        for tail in (b"c", b"a", b"b"):
            table.put(txn, scope, head + tail, tail)
        table.put(txn, scope, head + b"a", b"A")  # replaces, keeps one entry
        assert table.get(txn, scope, head + b"a") == b"A"
        assert table.get(txn, scope, head + b"z") is None
        assert table.delete(txn, scope, head + b"b")
        assert not table.delete(txn, scope, head + b"b")
        raw = txn.get(scope + head + b"\xff", db=table._db)
        assert decode_bucket(raw) == [(b"a", b"A"), (b"c", b"c")]
        assert table.delete(txn, scope, head + b"a") and table.delete(txn, scope, head + b"c")
        assert txn.get(scope + head + b"\xff", db=table._db) is None


def test_bucket_format_golden_bytes() -> None:
    data = encode_bucket([(b"a", b"row"), (b"bc", b"")])
    assert data == bytes.fromhex("01 0001 61 00000003 726f77 0002 6263 00000000")
    assert decode_bucket(data) == [(b"a", b"row"), (b"bc", b"")]
    with pytest.raises(ValueError, match="version"):
        decode_bucket(b"\x02")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 10_001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": True}, "limit"),
        ({"prefix": "\udc80"}, "UTF-8"),
        ({"marker": b"a"}, "str"),
    ],
)
def test_bad_parameters_are_refused(params, message) -> None:
    with pytest.raises(ValueError, match=message):
        ListingQuery.build(**params)


def test_names_are_checked() -> None:
    assert encode_name("é") == b"\xc3\xa9"
    assert encode_name("x" * 1024) == b"x" * 1024
    for bad in ("", "x" * 1025, "é" * 513, "\ud800"):
        with pytest.raises(ValueError):
            encode_name(bad)


def test_successor() -> None:
    assert successor(b"a/") == b"a0"
    assert successor(b"a\xff") == b"b"
    assert successor(b"\xff\xff") is None
    assert successor_of_scope(b"\x00\xff") == b"\x01\x00"
    assert successor_of_scope(b"\xff\xff") is None
