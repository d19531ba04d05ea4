"""Fixtures for tests against real server processes (tests/server_process.py)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aio_cluster import AioCluster, aio_cluster  # noqa: F401  (the session's cluster fixture)
from s3_clients import new_bucket, remove_bucket, s3_client
from server_process import ServerProcess
from swiftclient import client as swift_client

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def collect_client_sockets() -> Iterator[None]:
    """A garbage collection after the test, so that sockets a client library dropped
    unclosed warn while the test's own warning filters apply (the S3 modules ignore
    botocore's; tests/functional/test_s3_boto3.py says why)."""
    yield
    gc.collect()


@pytest.fixture
def s3(aio_cluster: AioCluster):  # noqa: F811  (aio_cluster: the fixture imported above)
    """boto3 as test:tester against the session's all-in-one cluster (tests/s3_clients.py)."""
    return s3_client(aio_cluster)


@pytest.fixture
def bucket(aio_cluster: AioCluster, s3) -> Iterator[str]:  # noqa: F811
    """A new bucket of ``s3``'s, emptied and deleted after the test."""
    name = new_bucket("b")
    s3.create_bucket(Bucket=name)
    yield name
    remove_bucket(aio_cluster, name)


@pytest.fixture
def swift(aio_cluster: AioCluster) -> swift_client.Connection:  # noqa: F811
    """python-swiftclient as test:tester against the session's all-in-one cluster."""
    return swift_client.Connection(
        authurl=aio_cluster.auth_url, user="test:tester", key=aio_cluster.users["test:tester"]
    )


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
