"""`torus bench` (bench/swiftapi): the pure parts, and one smoke run against a real server.

The pure parts: sizes, percentiles, a run's summary and medians (measure.py), /proc parsing
(procstat.py) and the raw client's response parser (rawhttp.py).  The smoke test starts a small
Swift-API server of its own (aiohttp, in a thread, on loopback) and runs the real command,
``python bench/swiftapi/loadgen.py``, against it; Swift's SAIO is never needed here.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

SWIFTAPI = Path(__file__).resolve().parents[2] / "bench" / "swiftapi"
sys.path.append(str(SWIFTAPI))  # bench/ is not a package: its scripts import siblings

import measure  # noqa: E402
import procstat  # noqa: E402
import rawhttp  # noqa: E402
import report  # noqa: E402

# ---------------------------------------------------------------- sizes and percentiles


@pytest.mark.parametrize(
    ("text", "size_bytes"),
    [
        ("4K", 4096),
        ("4k", 4096),
        ("1M", 1 << 20),
        ("64M", 64 << 20),
        ("64MiB", 64 << 20),
        ("1G", 1 << 30),
        ("4096", 4096),
        ("0", 0),
        (" 8 K ", 8192),
    ],
)
def test_parse_size(text: str, size_bytes: int) -> None:
    assert measure.parse_size(text) == size_bytes


@pytest.mark.parametrize("text", ["", "K", "1.5M", "-4K", "4T", "4 KB extra", "0x10"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        measure.parse_size(text)


@given(st.integers(min_value=0, max_value=1 << 40))
def test_format_size_round_trips(size_bytes: int) -> None:
    assert measure.parse_size(measure.format_size(size_bytes)) == size_bytes


def test_format_size_is_short() -> None:
    assert [measure.format_size(n) for n in (4096, 1 << 20, 64 << 20, 1000, 0)] == [
        "4K",
        "1M",
        "64M",
        "1000",
        "0",
    ]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert measure.percentile(values, 0.50) == 50
    assert measure.percentile(values, 0.99) == 99
    assert measure.percentile(values, 1.0) == 100
    assert measure.percentile(values, 0.0) == 1
    assert measure.percentile([7.0], 0.99) == 7
    assert measure.percentile([1.0, 2.0, 3.0], 0.5) == 2  # ceil(1.5) = rank 2
    assert math.isnan(measure.percentile([], 0.5))
    with pytest.raises(ValueError, match="fraction"):
        measure.percentile(values, 99)


@given(st.lists(st.floats(0, 1e6), min_size=1), st.floats(0, 1))
def test_percentile_is_a_member_and_monotone(values: list[float], fraction: float) -> None:
    ordered = sorted(values)
    p = measure.percentile(ordered, fraction)
    assert p in ordered
    assert measure.percentile(ordered, min(1.0, fraction + 0.1)) >= p


# ---------------------------------------------------------------- a run's summary, medians


def summary(**overrides: object) -> dict:
    arguments = {
        "latencies_s": [0.030, 0.010, 0.020, 0.040],
        "body_bytes": 8 << 20,
        "window_s": 2.0,
        "errors": 3,
        "server_cpu_s": 0.8,
        "client_cpu_s": 0.2,
        "kernel_s": 0.4,
        "box_busy_s": 2.0,
        **overrides,
    }
    return measure.summarize(**arguments)  # type: ignore[arg-type]


def test_summarize() -> None:
    s = summary()
    assert s["ops"] == 4 and s["errors"] == 3
    assert s["ops_per_s"] == 2.0
    assert s["mib_per_s"] == 4.0
    assert s["latency_ms_p50"] == pytest.approx(20.0)
    assert s["latency_ms_p99"] == pytest.approx(40.0)
    assert s["latency_ms_mean"] == pytest.approx(25.0)
    assert s["server_cpu_ms_per_op"] == pytest.approx(200.0)
    assert s["client_cpu_ms_per_op"] == pytest.approx(50.0)
    assert s["server_cores"] == pytest.approx(0.4)
    assert s["kernel_cores"] == pytest.approx(0.2)
    assert s["foreign_cores"] == pytest.approx(0.3)  # (2.0 - 0.8 - 0.2 - 0.4) / 2
    assert s["box_busy_cores"] == pytest.approx(1.0)


def test_summarize_edge_cases() -> None:
    empty = summary(latencies_s=[], body_bytes=0)
    assert empty["ops"] == 0 and empty["ops_per_s"] == 0
    assert math.isnan(empty["latency_ms_p50"]) and math.isnan(empty["server_cpu_ms_per_op"])
    unread = summary(server_cpu_s=math.nan)  # no --server-pids: the servers were not read
    assert math.isnan(unread["server_cpu_ms_per_op"]) and math.isnan(unread["foreign_cores"])
    assert summary(box_busy_s=1.0)["foreign_cores"] == 0.0  # never negative (tick rounding)
    assert summary(window_s=0.0)["ops_per_s"] > 0  # a run stopped at once does not divide by 0


def test_medians_and_ratio() -> None:
    runs = [{"a": 1.0, "b": math.nan}, {"a": 3.0, "b": 2.0}, {"a": 2.0}]
    assert measure.medians(runs, ["a", "b", "c"]) == {
        "a": 2.0,
        "b": 2.0,
        "c": pytest.approx(math.nan, nan_ok=True),
    }
    assert measure.ratio(6.0, 2.0) == 3.0
    assert math.isnan(measure.ratio(1.0, 0.0))
    assert math.isnan(measure.ratio(math.nan, 2.0))


def a_run(system: str, cell: str, ops: float, cpu_ms: float, errors: int = 0) -> dict:
    return {
        "system": system,
        "cell": cell,
        "ops_per_s": ops,
        "mib_per_s": ops / 256,
        "server_cpu_ms_per_op": cpu_ms,
        "errors": errors,
    }


def test_cell_medians_group_by_cell_and_system() -> None:
    runs = [
        a_run("torus", "get-4K", 900, 2.0),
        a_run("swift", "get-4K", 300, 6.0),
        a_run("torus", "get-4K", 1100, 1.0, errors=2),
        a_run("swift", "get-4K", 280, 7.0),
        a_run("torus", "get-4K", 1000, 1.5),
        a_run("swift", "get-4K", 320, 5.0),
        a_run("swift", "list-10k", 4.7, 300.0),
    ]
    table = report.cell_medians(runs)
    assert table["get-4K"]["torus"]["ops_per_s"] == 1000
    assert table["get-4K"]["torus"]["server_cpu_ms_per_op"] == 1.5
    assert table["get-4K"]["torus"]["errors"] == 0 and table["get-4K"]["torus"]["n"] == 3
    assert table["get-4K"]["swift"]["ops_per_s"] == 300
    assert "torus" not in table["list-10k"]
    assert math.isnan(table["list-10k"]["swift"]["latency_ms_p50"])  # absent key: NaN


def test_verdict_against_issue_targets() -> None:
    cell = report.Cell("get-4K", (), "ops_per_s", report.Target(3, 1 / 3))
    swift = {"ops_per_s": 300.0, "server_cpu_ms_per_op": 6.0}
    assert report.verdict(cell, {"ops_per_s": 900.0, "server_cpu_ms_per_op": 2.0}, swift) == "met"
    slow = report.verdict(cell, {"ops_per_s": 600.0, "server_cpu_ms_per_op": 3.0}, swift)
    assert slow == "missed: 2.00x < 3x, CPU 0.50 > 0.33"
    assert report.verdict(cell, {}, swift) == "?"
    assert report.verdict(report.Cell("head-4K", (), "ops_per_s"), {}, swift) == ""


def test_markdown_marks_a_missing_side() -> None:
    cells = [
        report.Cell("get-4K", (), "ops_per_s", report.Target(3, 1 / 3)),
        report.Cell("get-64M", (), "mib_per_s", report.Target(1.5)),
    ]
    runs = [a_run("swift", "get-4K", 300, 6.0), a_run("swift", "get-64M", 2.0, 900.0)]
    text = report.markdown(cells, report.cell_medians(runs))
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| workload | Torus | Swift |")
    assert lines[2].startswith("| get-4K (ops/s) | n/a | 300.0 | n/a | ≥3x, CPU ≤0.33x (?) |")
    assert "| get-64M (MiB/s) | n/a | 0.0 |" in lines[3]


# ---------------------------------------------------------------- /proc parsing


def stat_line(
    pid: int, comm: str, utime: int, stime: int, cutime: int, cstime: int, flags: int
) -> str:
    # proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime priority nice num_threads ...
    return (
        f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 {flags} 120 0 0 0 "
        f"{utime} {stime} {cutime} {cstime} 20 0 3 0 4242 1000000 100 rest of the line\n"
    )


def test_parse_pid_stat_counts_children_and_survives_odd_names() -> None:
    text = stat_line(42, "swift-proxy) (x", 100, 20, 5, 1, 0x400140)
    assert procstat.parse_pid_stat(text) == procstat.PidStat(126, kernel_thread=False)
    kthread = stat_line(7, "jbd2/vda-8", 3, 40, 0, 0, 0x00208040)
    assert procstat.parse_pid_stat(kthread) == procstat.PidStat(43, kernel_thread=True)
    with pytest.raises(ValueError, match="not a /proc/PID/stat"):
        procstat.parse_pid_stat("garbage")


def test_parse_machine_stat() -> None:
    text = "cpu  100 5 50 1000 7 2 3 4 0 0\ncpu0 50 2 25 500 3 1 1 2 0 0\nintr 1 2\n"
    # busy = user + nice + system + irq + softirq + steal
    assert procstat.parse_machine_stat(text) == procstat.MachineStat(164, 1171, 5)
    short = "cpu  1 2 3 4\n"  # very old kernels: no iowait, irq, ...
    assert procstat.parse_machine_stat(short) == procstat.MachineStat(6, 10, 0)
    with pytest.raises(ValueError, match="cpu"):
        procstat.parse_machine_stat("cpu0 1 2 3 4\n")


def test_parse_pid_file() -> None:
    assert procstat.parse_pid_file("1234\n") == 1234
    for bad in ("", "\n", "abc", "0", "-3"):
        with pytest.raises(ValueError, match="pid file"):
            procstat.parse_pid_file(bad)


def test_process_tree_walks_descendants_once() -> None:
    tree = {1: [2, 3], 2: [4], 3: [], 4: [2], 9: [10]}  # 4 -> 2: a cycle (pid reuse) ends
    assert procstat.process_tree([1], lambda pid: tree.get(pid, [])) == {1, 2, 3, 4}
    assert procstat.process_tree([1, 9], lambda pid: tree.get(pid, [])) == {1, 2, 3, 4, 9, 10}
    assert procstat.process_tree([], lambda pid: []) == set()


def test_cpu_delta_counts_births_and_reaped_children_once() -> None:
    tick = 1 / procstat.TICKS_PER_S
    before = {1: 100, 2: 50}  # 2 is a worker of 1
    # In the window: 1 spent 10; 2 spent 5 more and exited, so 1's cutime took all 55 of it;
    # 3 was born and spent 7.
    after = {1: 100 + 10 + 55, 3: 7}
    assert procstat.cpu_delta_s(before, after) == pytest.approx((10 + 5 + 7) * tick)


def test_readers_on_this_process() -> None:
    me = os.getpid()
    assert procstat.alive(me)
    ticks = procstat.snapshot([me])
    assert me in ticks and ticks[me] >= 0
    assert procstat.machine().busy > 0
    assert all(pid != me for pid in procstat.kernel_thread_ticks())


def test_pids_from_dir(tmp_path: Path) -> None:
    (tmp_path / "proxy.pid").write_text("12\n")
    (tmp_path / "object-1.pid").write_text("7")
    (tmp_path / "notes.txt").write_text("99")
    assert procstat.pids_from_dir(tmp_path) == [7, 12]
    with pytest.raises(FileNotFoundError):
        procstat.pids_from_dir(tmp_path / "missing")


# ---------------------------------------------------------------- the raw client's parser


def parse(chunks: list[bytes], head: bool = False) -> rawhttp.ResponseParser:
    parser = rawhttp.ResponseParser(head_request=head)
    for chunk in chunks:
        parser.feed(chunk)
    return parser


def test_parser_content_length() -> None:
    response = b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nEtag: x\r\n\r\nhello"
    parser = parse([response])
    assert parser.done and parser.status == 201 and parser.body_bytes == 5
    assert parser.headers["etag"] == "x" and parser.keep_alive
    byte_by_byte = parse([response[i : i + 1] for i in range(len(response))])
    assert byte_by_byte.done and byte_by_byte.body_bytes == 5


def test_parser_bodyless_responses() -> None:
    head = parse([b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n"], head=True)
    assert head.done and head.body_bytes == 0
    no_content = parse([b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"])
    assert no_content.done and no_content.status == 204
    interim = parse(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    )
    assert interim.done and interim.status == 200 and interim.body_bytes == 2


def test_parser_connection_framing() -> None:
    closing = parse([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"])
    assert closing.done and not closing.keep_alive
    old = parse([b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    assert old.done and not old.keep_alive
    until_close = parse([b"HTTP/1.1 200 OK\r\n\r\nabc", b"def"])
    assert not until_close.done
    until_close.connection_closed()
    assert until_close.done and until_close.body_bytes == 6 and not until_close.keep_alive


def chunked(body_pieces: list[bytes], trailers: bytes = b"") -> bytes:
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for piece in body_pieces:
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=6),
    st.sampled_from([b"", b"X-Trailer: 1\r\n"]),
    st.lists(st.integers(min_value=1, max_value=30), max_size=40),
)
def test_parser_chunked_any_split(pieces: list[bytes], trailers: bytes, cuts: list[int]) -> None:
    data = chunked(pieces, trailers)
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(data[at : at + cut])
        at += cut
    chunks.append(data[at:])
    parser = parse([c for c in chunks if c])
    assert parser.done and parser.body_bytes == sum(map(len, pieces))


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy"], "after the end"),
        ([b"SPDY 200 OK\r\n\r\n"], "bad status line"),
        ([b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"], "bad header line"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"], "bad Content-Length"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], "bad chunk size"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"], "longer than"),
        ([b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000], "no end of head"),
    ],
)
def test_parser_rejects(chunks: list[bytes], message: str) -> None:
    with pytest.raises(rawhttp.ProtocolError, match=message):
        parse(chunks)


def test_parser_connection_closed_mid_body_is_an_error() -> None:
    parser = parse([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"])
    with pytest.raises(rawhttp.ProtocolError, match="mid-response"):
        parser.connection_closed()


# ---------------------------------------------------------------- smoke: the real command


class FakeSwift:
    """Just enough of the Swift API, in memory: v1 auth, containers, objects, json listings.
    GET of any object named ``*-000003`` answers 500, so a run sees errors; objects over
    1 MiB are sent chunked (no Content-Length), to exercise that framing too."""

    TOKEN = "AUTH_tk_smoke"

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, int]] = {}
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/auth/v1.0", self.auth)
        app.router.add_route("*", "/v1/AUTH_test/{container}", self.container)
        app.router.add_route("*", "/v1/AUTH_test/{container}/{name:.+}", self.object)
        return app

    async def auth(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Auth-Key") != "testing":
            return web.Response(status=401)
        url = f"http://127.0.0.1:{self.port}/v1/AUTH_test"
        return web.Response(headers={"X-Storage-Url": url, "X-Auth-Token": self.TOKEN})

    async def container(self, request: web.Request) -> web.Response:
        name = request.match_info["container"]
        if request.method == "PUT":
            created = name not in self.containers
            self.containers.setdefault(name, {})
            return web.Response(status=201 if created else 202)
        rows = sorted(self.containers.get(name, {}).items())
        marker, limit = request.query.get("marker", ""), int(request.query.get("limit", 10000))
        page = [{"name": n, "bytes": b} for n, b in rows if n > marker][:limit]
        if not page:
            return web.Response(status=204)
        return web.json_response(page)

    async def object(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-Auth-Token") != self.TOKEN:
            return web.Response(status=401)
        objects = self.containers.setdefault(request.match_info["container"], {})
        name = request.match_info["name"]
        if request.method == "PUT":
            size = 0
            async for chunk in request.content.iter_any():
                size += len(chunk)
            objects[name] = size
            return web.Response(status=201)
        if name not in objects:
            return web.Response(status=404)
        if request.method == "DELETE":
            del objects[name]
            return web.Response(status=204)
        size = objects[name]
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(size)})
        if name.endswith("-000003"):
            return web.Response(status=500)
        if size <= 1 << 20:
            return web.Response(body=b"x" * size)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(size >> 16):
            await response.write(b"x" * (1 << 16))
        await response.write(b"x" * (size & 0xFFFF))
        await response.write_eof()
        return response

    def serve(self) -> None:
        async def run() -> None:
            runner = web.AppRunner(self.app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        asyncio.run(run())

    def stop(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)


@pytest.fixture
def fake_swift() -> Iterator[FakeSwift]:
    server = FakeSwift()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    assert server._ready.wait(10)
    yield server
    server.stop()
    thread.join(10)


def loadgen(server: FakeSwift, *flags: str) -> tuple[int, dict]:
    cmd = [
        sys.executable,
        str(SWIFTAPI / "loadgen.py"),
        f"--auth=http://127.0.0.1:{server.port}/auth/v1.0",
        f"--server-pids={os.getpid()}",  # the server runs in this process's thread
        "--duration=0.5",
        "--warmup=0.2",
        "--concurrency=4",
        "--json",
        *flags,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.slow
def test_smoke_every_workload_and_client(fake_swift: FakeSwift) -> None:
    code, put = loadgen(fake_swift, "--workload=put", "--size=2M", "--client=aiohttp", "--cleanup")
    assert code == 0 and put["errors"] == 0 and put["ops"] > 0
    assert put["mib_per_s"] > 0 and not math.isnan(put["server_cpu_ms_per_op"])
    assert fake_swift.containers["bench-put-2M"] == {}  # --cleanup deleted what it wrote

    # GET: 3 objects of 2 MiB (streamed PUTs to prepare them, chunked GETs), one answers 500.
    code, get = loadgen(fake_swift, "--workload=get", "--size=2M", "--objects=4")
    assert get["prepared_objects"] == 4 and get["ops"] > 0
    assert code == 1 and get["errors"] > 0 and "500" in get["error_samples"][0]
    code, again = loadgen(
        fake_swift, "--workload=get", "--size=2M", "--objects=4", "--client=aiohttp"
    )
    assert again["prepared_objects"] == 0 and code == 1 and again["errors"] > 0

    code, head = loadgen(fake_swift, "--workload=head", "--size=2M", "--objects=4")
    assert code == 0 and head["errors"] == 0 and head["ops"] > 0 and head["mib_per_s"] == 0

    code, listing = loadgen(fake_swift, "--workload=list", "--objects=30", "--list-limit=20")
    assert code == 0 and listing["errors"] == 0 and listing["ops"] > 0
    assert len(fake_swift.containers["bench-list-30"]) == 30
