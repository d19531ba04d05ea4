"""Object GET and HEAD: find a replica that has the object, then stream its answer.

**Which replica.**  Nodes are tried one at a time from ``read_nodes`` (primaries in random
order, then handoffs; at most twice the replica count, Swift's ``request_node_count``).  An
unreachable node, a timeout, a 5xx or a 507 moves on to the next; so does a 404 (a primary
may not have the object yet).  Any other answer (2xx, 304, 412, 416, ...) is served as the
object server gave it: Range, multi-range and conditional requests are the object server's
to answer (objectd/http_get.py), the proxy passes the headers on and the answer back.

**Newest.**  DESIGN.md asks reads to "take the newest version seen".  Our reading, cheap
enough for the hot path: the first success is served, unless a 404 seen before it came with
a tombstone newer than it (``X-Backend-Timestamp``) — then the object was deleted after that
version was written, and the answer is 404.  Swift serves the first success.  With
``X-Newest: true`` (as Swift) every primary is asked at once and the newest answer wins
(ties to the first), a newer tombstone included.

**Whole versions only.**  The answer streams from one object server, which pins the version
it found (objectd engine.open_version): an overwrite landing mid-GET cannot mix two bodies.
If that server fails mid-body, the rest comes from another replica with a Range for the
bytes not sent yet and ``If-Match`` on the ETag (as Swift resumes), so only the same version
can continue it; when no replica can, the client connection is cut (a short body, which
clients detect against Content-Length) — never continued from another version.  Bodies up to
``object_chunk_size`` are read whole and answered with a Content-Length in one write; larger
ones stream as the object server's bytes come (up to ``stream_chunk_size`` a write), with
aiohttp's write backpressure: a slow client slows the read from the backend (the lean
client pauses its socket past 256 KiB unread), nothing accumulates.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from ring.device import Device
from ring.ring import Ring
from service.http11 import StreamedResponse
from service.timestamp import Timestamp

from .backend import (
    BACKEND_ERRORS,
    is_node_failure,
    note_failure,
    reason,
    request_node_count,
    response_headers,
    service_unavailable,
)
from .context import Proxy
from .nodes import read_nodes

log = logging.getLogger("torus.proxy")
TRUE_VALUES = frozenset({"true", "1", "yes", "on", "t", "y"})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/\d+")
# What a resumed GET must not repeat: its own Range and If-Match replace the client's.
_RESUME_DROPS = frozenset(
    {"range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"}
)


@dataclass
class Resume:
    """Where to look for the rest of a body whose node failed mid-way: the nodes not tried
    yet (at most ``tries`` more), with the request's headers."""

    nodes: Iterator[Device]
    tries: int
    path_for_node: Callable[[Device], str]
    headers: Mapping[str, str]


@dataclass
class Found:
    """The outcome of looking for an object: an open answer to stream (``response``) or a
    final one (``status``/``headers``/``body``) when no replica had it."""

    response: StreamedResponse | None = None
    node: Device | None = None
    status: int = 503
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    body: bytes = b""
    resume: Resume | None = None

    def release(self) -> None:
        if self.response is not None:
            self.response.release()


def _timestamp(headers: Mapping[str, str]) -> Timestamp | None:
    text = headers.get("X-Backend-Timestamp")
    if not text:
        return None
    try:
        return Timestamp.parse(text)
    except ValueError:
        return None


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUE_VALUES


class _Misses:
    """The 404s seen so far: the first one's answer, and the newest tombstone's time."""

    def __init__(self) -> None:
        self.first: tuple[int, CIMultiDict[str], bytes] | None = None
        self.tombstone: Timestamp | None = None

    async def add(self, response: StreamedResponse) -> None:
        body = await response.read()
        if self.first is None:
            self.first = (response.status, response_headers(response.headers), body)
        ts = _timestamp(response.headers)
        if ts is not None and (self.tombstone is None or ts > self.tombstone):
            self.tombstone = ts

    def hides(self, response: StreamedResponse) -> bool:
        """Whether a tombstone seen is newer than this successful answer's version."""
        if self.tombstone is None or not 200 <= response.status < 300:
            return False
        ts = _timestamp(response.headers)
        return ts is not None and ts < self.tombstone

    def answer(self) -> Found:
        if self.first is None:
            return Found(status=503)
        status, headers, body = self.first
        return Found(status=status, headers=headers, body=body)


async def _open(
    proxy: Proxy, node: Device, method: str, path: str, headers: Mapping[str, str]
) -> StreamedResponse | None:
    """The node's answer with its body unread (the caller releases it); None: no answer."""
    try:
        response = await proxy.pool.open(
            node.ip,
            node.port,
            method,
            path,
            headers,
            conn_timeout_s=proxy.config.conn_timeout_s,
            read_timeout_s=proxy.config.node_timeout_s,
        )
    except BACKEND_ERRORS as exc:
        note_failure(proxy, node, None, f"{method} {path}: {reason(exc)}")
        return None
    if is_node_failure(response.status):
        note_failure(proxy, node, response.status, f"{method} {path}")
        response.release()
        return None
    return response


async def find_object(
    proxy: Proxy,
    ring: Ring,
    part: int,
    primaries: list[Device],
    method: str,
    path_for_node: Callable[[Device], str],
    headers: Mapping[str, str],
    *,
    newest: bool = False,
) -> Found:
    """The answer to serve for a GET or HEAD of an object (the module docstring)."""
    nodes = read_nodes(proxy, ring, part, primaries)
    limit = request_node_count(ring)
    misses = _Misses()
    tried = 0
    if newest:
        first = list(itertools.islice(nodes, len(primaries)))
        tried = len(first)
        found = await _newest(proxy, first, method, path_for_node, headers, misses)
        if found is not None:
            if found.response is not None:  # the rest of the primaries were asked already
                found.resume = Resume(nodes, limit - tried, path_for_node, headers)
            return found
    for node in nodes:
        if tried >= limit:
            break
        tried += 1
        response = await _open(proxy, node, method, path_for_node(node), headers)
        if response is None:
            continue
        if response.status == 404:
            try:
                await misses.add(response)
            except BACKEND_ERRORS:
                pass
            finally:
                response.release()
            continue
        if misses.hides(response):
            response.release()
            return misses.answer()
        resume = Resume(nodes, limit - tried, path_for_node, headers)
        return Found(response=response, node=node, status=response.status, resume=resume)
    return misses.answer()


async def _newest(
    proxy: Proxy,
    nodes: list[Device],
    method: str,
    path_for_node: Callable[[Device], str],
    headers: Mapping[str, str],
    misses: _Misses,
) -> Found | None:
    """X-Newest: ask every node at once; the newest success (None if there was none)."""
    responses = await asyncio.gather(
        *(_open(proxy, node, method, path_for_node(node), headers) for node in nodes)
    )
    best: tuple[StreamedResponse, Device] | None = None
    best_ts: Timestamp | None = None
    for node, response in zip(nodes, responses, strict=True):
        if response is None:
            continue
        if response.status == 404:
            try:
                await misses.add(response)
            except BACKEND_ERRORS:
                pass
            finally:
                response.release()
            continue
        ts = _timestamp(response.headers) if 200 <= response.status < 300 else None
        if best is None or (ts is not None and (best_ts is None or ts > best_ts)):
            if best is not None:
                best[0].release()
            best, best_ts = (response, node), ts
        else:
            response.release()
    if best is None:
        return None
    response, node = best
    if misses.hides(response):
        response.release()
        return misses.answer()
    return Found(response=response, node=node, status=response.status)


async def answer(request: web.Request, proxy: Proxy, found: Found) -> web.StreamResponse:
    """Send ``found`` to the client: its answer as the object server gave it."""
    if found.response is None:
        if found.status == 503:
            return service_unavailable()
        return web.Response(status=found.status, headers=found.headers, body=found.body)
    backend = found.response
    try:
        headers = response_headers(backend.headers)
        length = backend.content_length
        if request.method == "HEAD" or backend.status in (204, 304):
            response = web.StreamResponse(status=backend.status, headers=headers)
            if length is not None and backend.status not in (204, 304):
                response.content_length = length
            await response.prepare(request)
            return response
        if length is not None and length <= proxy.config.object_chunk_size:
            try:
                body = await backend.read()
            except BACKEND_ERRORS as exc:
                log.warning("GET %s: the object server failed: %r", request.raw_path, exc)
                return service_unavailable()
            return web.Response(status=backend.status, headers=headers, body=body)
        return await _stream(request, proxy, found, headers, length)
    finally:
        if found.response is not None:
            found.response.release()


async def _stream(
    request: web.Request,
    proxy: Proxy,
    found: Found,
    headers: CIMultiDict[str],
    length: int | None,
) -> web.StreamResponse:
    """Stream ``found``'s body; if its node fails mid-way, go on from another replica of the
    same version (``_resume_from``), else cut the client's connection."""
    backend = found.response
    assert backend is not None
    span = _span(backend)
    response = web.StreamResponse(status=backend.status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    # Each read gives what the connection holds (up to 256 KiB unread before it pauses its
    # socket): whole pieces as they came, few writes to the client.
    chunk_size = proxy.config.stream_chunk_size
    sent = 0
    while True:
        try:
            chunk = await backend.content.read(chunk_size)
        except BACKEND_ERRORS as exc:
            log.warning("GET %s: the object server failed mid-body: %s", request.raw_path, exc)
            backend.close()
            resumed = await _resume_from(proxy, found, span, sent)
            if resumed is None:
                # The status went out: cutting the connection is the only signal left.
                if request.transport is not None:
                    request.transport.abort()
                return response
            backend = found.response = resumed
            continue
        if not chunk:
            break
        sent += len(chunk)
        try:
            await response.write(chunk)
        except ConnectionError:  # the client went away
            backend.close()
            return response
    await response.write_eof()
    return response


def _span(response: StreamedResponse) -> tuple[int, int] | None:
    """The first and last byte of the object a 200 or single-range 206 carries; None for
    anything else (a multipart answer cannot be resumed byte-wise)."""
    length = response.content_length
    if response.status == 200 and length:
        return 0, length - 1
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if response.status == 206 and match:
        return int(match[1]), int(match[2])
    return None


async def _resume_from(
    proxy: Proxy, found: Found, span: tuple[int, int] | None, sent: int
) -> StreamedResponse | None:
    """The rest of the body from another node, as Swift resumes a GET: a Range for the bytes
    not sent yet, with ``If-Match`` on the ETag, so only the same version can continue."""
    resume, first = found.resume, found.response
    assert first is not None
    etag = first.headers.get("ETag")
    if resume is None or span is None or not etag:
        return None
    start, end = span[0] + sent, span[1]
    headers = {k: v for k, v in resume.headers.items() if k.lower() not in _RESUME_DROPS}
    headers["Range"] = f"bytes={start}-{end}"
    headers["If-Match"] = etag
    while resume.tries > 0:
        node = next(resume.nodes, None)
        if node is None:
            return None
        resume.tries -= 1
        response = await _open(proxy, node, "GET", resume.path_for_node(node), headers)
        if response is None:
            continue
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if response.status == 206 and match and int(match[1]) == start:
            return response
        response.release()  # a 404, or another version (412): try the next node
    return None
