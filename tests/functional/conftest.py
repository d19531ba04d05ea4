"""Fixtures for tests against real server processes (tests/server_process.py)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aio_cluster import aio_cluster  # noqa: F401  (the session's all-in-one cluster fixture)
from server_process import ServerProcess

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def collect_client_sockets() -> Iterator[None]:
    """A garbage collection after the test, so that sockets a client library dropped
    unclosed warn while the test's own warning filters apply (the S3 modules ignore
    botocore's; tests/functional/test_s3_boto3.py says why)."""
    yield
    gc.collect()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server("object", devices=["sda"], **options)``: a running server process.

    Each gets its own directory under tmp_path; every one still running is stopped at
    teardown, and its log is printed if the test failed (pytest shows captured output).
    """
    started: list[ServerProcess] = []

    def start(service: str, devices: tuple[str, ...] = ("sda",), **options: Any) -> ServerProcess:
        server = ServerProcess(service, tmp_path / f"{service}-{len(started)}", options=options)
        for device in devices:
            (server.devices / device).mkdir()
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        print(f"--- {server.service} server log ---\n{server.log()}")


@pytest.fixture
def object_server(start_server: StartServer) -> ServerProcess:
    return start_server("object")
