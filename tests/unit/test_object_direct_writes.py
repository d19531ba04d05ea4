"""objectd/direct_writes.py: bytes written through aligned O_DIRECT buffers come back exact,
whatever the piece sizes and the total; without O_DIRECT the writes are plain buffered ones."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from objectd import direct_writes
from objectd.direct_writes import ALIGN, BUFFER_BYTES, DirectFile, enable_direct


def _buffered(fd: int, pieces: list[bytes | memoryview]) -> None:
    for piece in pieces:
        os.write(fd, piece)


def _write(path: Path, pieces: list[bytes]) -> tuple[bytes, bool]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        file = DirectFile(fd, direct=enable_direct(fd), write_buffered=_buffered)
        direct = file.direct
        for start in range(0, len(pieces), 3):  # a few pieces per batch, as the writer does
            file.write(pieces[start : start + 3])
        file.finish()
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.read_bytes(), direct


@pytest.mark.parametrize(
    "total",
    [
        1,
        ALIGN - 1,
        ALIGN,
        ALIGN + 1,
        BUFFER_BYTES - 1,
        BUFFER_BYTES,
        BUFFER_BYTES + 1,
        3 * BUFFER_BYTES + 4097,
    ],
)
@pytest.mark.parametrize("piece", [1000, ALIGN, 256 * 1024 + 7])
def test_bytes_come_back_exact(tmp_path: Path, total: int, piece: int) -> None:
    body = os.urandom(total)
    pieces = [body[i : i + piece] for i in range(0, total, piece)]
    data, _ = _write(tmp_path / "f", pieces)
    assert data == body


def test_the_aligned_part_goes_out_with_o_direct_where_the_filesystem_has_it(
    tmp_path: Path,
) -> None:
    fd = os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if not enable_direct(fd):
            pytest.skip(f"{tmp_path}'s filesystem refuses O_DIRECT")
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
    finally:
        os.close(fd)
    body = os.urandom(2 * BUFFER_BYTES + 10)
    data, direct = _write(tmp_path / "f", [body])
    assert direct and data == body


def test_without_o_direct_the_writes_are_buffered_and_exact(tmp_path: Path) -> None:
    """What a filesystem that refuses O_DIRECT gets (enable_direct answered False)."""
    body = os.urandom(BUFFER_BYTES + 123)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        file = DirectFile(fd, direct=False, write_buffered=_buffered)
        file.write([body[:5000], body[5000:]])
        assert file._buffer is None  # no aligned staging at all
        file.finish()
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == body


def test_buffers_are_reused_not_reallocated(tmp_path: Path) -> None:
    pool = direct_writes._POOL
    first = pool.take()
    pool.give_back(first)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        file = DirectFile(fd, direct=enable_direct(fd), write_buffered=_buffered)
        if not file.direct:
            pytest.skip("no O_DIRECT here")
        file.write([b"x" * 10])
        assert file._buffer is first
        file.release()
        assert pool.take() is first
    finally:
        os.close(fd)
