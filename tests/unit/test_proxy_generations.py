"""proxy/generations.py, and proxy/infocache.py over it: the table the proxy's workers share.

Processes are real (multiprocessing, fork); the backend is a counting stand-in for
``backend.first_response``, as in test_proxy_authz.py.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import multiprocessing
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy import infocache
from proxy.generations import SLOT_BYTES, SLOTS, GenerationTable
from service.backend_client import BackendResponse

TIMEOUT_S = 30


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "proxy.gen1"


# -- the table -------------------------------------------------------------------------------


def _child(path: Path, conn: Any) -> None:
    """Opens the table itself (as a worker does after the fork), bumps slot 10, then reports
    slot 11 once the parent says it has bumped it."""
    table = GenerationTable.open(path)
    conn.send(table.bump(10))
    conn.recv()
    conn.send(table.read(11))
    table.close()


def test_two_processes_see_each_others_bumps(path: Path) -> None:
    table = GenerationTable.open(path)
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    child = context.Process(target=_child, args=(path, theirs))
    child.start()
    try:
        assert ours.poll(TIMEOUT_S)
        assert table.read(10) == ours.recv()  # the child's bump, seen here
        ours.send(table.bump(11))
        assert ours.poll(TIMEOUT_S)
        assert ours.recv() == table.read(11)  # ours, seen there
    finally:
        child.join(TIMEOUT_S)
        table.close()
    assert child.exitcode == 0
    assert not path.exists()  # both closed: the last one removed it


def test_a_bump_always_changes_the_value(path: Path) -> None:
    class Stuck(random.Random):
        def __init__(self) -> None:
            super().__init__(0)
            self.values = [5, 5, 5, 9]

        def getrandbits(self, k: int) -> int:
            return self.values.pop(0)

    table = GenerationTable(mmap.mmap(-1, 8 * SLOT_BYTES), rng=Stuck())
    table.bump(3)
    assert table.read(3) == 5
    assert table.bump(3) == 9  # 5 again would not be a change: drawn anew


def test_slots_spread_names_evenly() -> None:
    table = GenerationTable.private()
    names = [(f"AUTH_{a}", f"container-{c}") for a in range(20) for c in range(10_000)]
    counts = Counter(table.slot(account, container) for account, container in names)
    # 200,000 names in 65,536 slots: Poisson(3.05); uniform hashing keeps ~4.7% empty and
    # the fullest slot near 13.
    empty = SLOTS - len(counts)
    assert 0.04 < empty / SLOTS < 0.055
    assert max(counts.values()) < 20
    assert table.slot("AUTH_a", "c") == GenerationTable.private().slot("AUTH_a", "c")
    assert table.slot("AUTH_a") != table.slot("AUTH_a", "")  # account vs its "" container


def test_the_last_to_close_removes_the_file(path: Path) -> None:
    first = GenerationTable.open(path)
    second = GenerationTable.open(path)
    first.bump(1)
    assert second.read(1) == first.read(1)
    first.close()
    assert path.exists()  # the second still uses it
    second.close()
    assert not path.exists()
    again = GenerationTable.open(path)
    assert path.stat().st_size == SLOTS * SLOT_BYTES
    again.close()


def test_an_opener_that_lost_the_race_with_the_last_closer_opens_anew(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = GenerationTable.open(path)
    real_flock = fcntl.flock
    closed = []

    def flock(fd: int, operation: int) -> None:
        # The new opener has opened the old file; before it locks, the old user closes
        # (unlinking it, the last user).
        if not closed and operation == fcntl.LOCK_SH:
            closed.append(True)
            old.close()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    new = GenerationTable.open(path)
    monkeypatch.undo()
    assert closed
    assert path.exists()
    other = GenerationTable.open(path)
    new.bump(2)
    assert other.read(2) == new.read(2)  # the file at the path, not the unlinked one
    new.close()
    other.close()


def test_a_file_that_cannot_be_used_falls_back_to_a_private_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-dir"
    wrong_size = tmp_path / "wrong-size"
    wrong_size.mkdir()
    open_to_all = tmp_path / "open-to-all"
    open_to_all.mkdir()
    name = f"torus-proxy-{os.geteuid()}-127.0.0.1-8080.gen1"
    (wrong_size / name).write_bytes(b"\0" * 100)
    (open_to_all / name).write_bytes(b"")
    (open_to_all / name).chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="torus.proxy"):
        table = GenerationTable.for_server(
            "127.0.0.1", 8080, directories=(missing, wrong_size, open_to_all)
        )
    assert table.path is None
    table.bump(table.slot("AUTH_test"))  # works, for this process alone
    table.close()
    assert "no shared info-cache generation table" in caplog.text
    assert "100 bytes" in caplog.text and "writable by others" in caplog.text
    assert (wrong_size / name).stat().st_size == 100  # left as found


def test_the_first_usable_directory_is_used(tmp_path: Path) -> None:
    table = GenerationTable.for_server("::", 8080, directories=(tmp_path / "nope", tmp_path))
    assert table.path == tmp_path / f"torus-proxy-{os.geteuid()}-__-8080.gen1"
    table.close()
    assert GenerationTable.for_server("127.0.0.1", 0, directories=(tmp_path,)).path is None


def test_own_generation_is_only_a_bump_no_one_has_followed(path: Path) -> None:
    mine, theirs = GenerationTable.open(path), GenerationTable.open(path)
    assert mine.own_generation(4) is None
    value = mine.bump(4)
    assert mine.own_generation(4) == value
    assert mine.own_generation(5) is None
    theirs.bump(4)
    assert mine.own_generation(4) is None
    mine.close()
    theirs.close()


# -- the info cache over two workers' tables ---------------------------------------------------


class _Ring:
    def get_part(self, *names: str) -> int:
        return 7


class _Backend:
    """Stands in for backend.first_response: HEADs answered with ``acl`` as it is when the
    HEAD is sent, counted; ``gate`` (if set) holds each answer until it is set."""

    def __init__(self) -> None:
        self.acl = "test2:tester2"
        self.heads = 0
        self.gate: asyncio.Event | None = None

    async def first_response(self, proxy, ring, part, method, path_for_node, headers):
        self.heads += 1
        acl = self.acl
        if self.gate is not None:
            await self.gate.wait()
        answer = CIMultiDictProxy(CIMultiDict({"X-Container-Read": acl}))
        return BackendResponse(204, answer, b"")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> _Backend:
    backend = _Backend()
    monkeypatch.setattr(infocache.backend, "first_response", backend.first_response)
    return backend


Worker = Callable[[], Any]


@pytest.fixture
def worker(path: Path) -> Iterator[Worker]:
    """``worker()``: a stand-in for one worker's ``Proxy``, with the table at ``path``."""
    tables: list[GenerationTable] = []

    def make() -> Any:
        tables.append(GenerationTable.open(path))
        return SimpleNamespace(
            config=SimpleNamespace(info_cache_ttl_s=5.0),
            container_ring=_Ring(),
            account_ring=_Ring(),
            info_cache={},
            generations=tables[-1],
        )

    yield make
    for table in tables:
        table.close()


def _read_acl(worker: Any) -> str:
    async def run() -> str:
        info = await infocache.get_container_info(worker, "AUTH_test", "c")
        return info.read_acl

    return asyncio.run(run())


def test_a_write_through_one_worker_is_seen_by_another(worker: Worker, fake: _Backend) -> None:
    one, two = worker(), worker()
    assert _read_acl(one) == "test2:tester2"
    assert _read_acl(one) == "test2:tester2"
    assert fake.heads == 1  # cached
    fake.acl = ""
    infocache.invalidate(two, "AUTH_test", "c")  # two's POST revoked it
    assert _read_acl(one) == ""
    assert fake.heads == 2
    assert two.generations.slot("AUTH_test") != two.generations.slot("AUTH_test", "c")
    infocache.invalidate(two, "AUTH_test")  # the account's slot: one keeps c
    assert _read_acl(one) == ""
    assert fake.heads == 2


def test_a_head_sent_before_a_write_is_not_kept(worker: Worker, fake: _Backend) -> None:
    one, two = worker(), worker()

    async def run() -> tuple[str, str]:
        fake.gate = asyncio.Event()
        early = asyncio.create_task(infocache.get_container_info(one, "AUTH_test", "c"))
        await asyncio.sleep(0)  # its HEAD is sent, with the old ACL
        fake.acl = ""
        infocache.invalidate(two, "AUTH_test", "c")
        # A request after the write does not join the HEAD under way: a HEAD of its own.
        late = asyncio.create_task(infocache.get_container_info(one, "AUTH_test", "c"))
        await asyncio.sleep(0)
        fake.gate.set()
        return (await early).read_acl, (await late).read_acl

    assert asyncio.run(run()) == ("test2:tester2", "")
    assert fake.heads == 2
    assert _read_acl(one) == ""  # the late HEAD's answer is what is kept
    assert fake.heads == 2


def test_an_answer_to_a_head_sent_before_a_write_is_a_miss_after(
    worker: Worker, fake: _Backend
) -> None:
    one, two = worker(), worker()

    async def run() -> str:
        fake.gate = asyncio.Event()
        early = asyncio.create_task(infocache.get_container_info(one, "AUTH_test", "c"))
        await asyncio.sleep(0)  # its HEAD is sent, with the old ACL
        fake.acl = ""
        infocache.invalidate(two, "AUTH_test", "c")
        fake.gate.set()
        return (await early).read_acl

    assert asyncio.run(run()) == "test2:tester2"  # it was asked before the write
    fake.gate = None
    assert _read_acl(one) == ""  # but not kept as if it were after it
    assert fake.heads == 2


def test_remember_keeps_only_what_no_other_worker_has_changed(worker: Worker) -> None:
    one, two = worker(), worker()
    created = infocache.AccountInfo(status=204)
    infocache.invalidate(one, "AUTH_new")
    infocache.remember(one, "AUTH_new", created)
    assert ("account", "AUTH_new") in one.info_cache
    infocache.invalidate(one, "AUTH_other")
    infocache.invalidate(two, "AUTH_other")  # deleted through two meanwhile, say
    infocache.remember(one, "AUTH_other", created)
    assert ("account", "AUTH_other") not in one.info_cache


def test_without_a_table_the_cache_is_the_workers_own(worker: Worker, fake: _Backend) -> None:
    alone = worker()
    del alone.generations
    assert _read_acl(alone) == "test2:tester2"
    fake.acl = ""
    assert _read_acl(alone) == "test2:tester2"  # cached; nothing else could tell it
    infocache.invalidate(alone, "AUTH_test", "c")
    assert _read_acl(alone) == ""
