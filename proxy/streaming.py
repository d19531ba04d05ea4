"""An object body sent to every replica at once: Swift's PUT fan-out, with backpressure.

Two paths, by size:

- **Small** (a known length up to ``object_chunk_size``, 64 KiB): the body is read whole first
  (one chunk; never more), then sent in one go to each replica, without ``Expect``: a
  round trip saved per replica on the common small PUT.  A replica whose node fails, times
  out or answers 5xx/507 is sent again, whole, to the next node (a handoff).
- **Streamed** (larger, or chunked with no length): each replica gets its own upload
  (service/http11_upload.py) with ``Expect: 100-continue``.  The object server answers 100
  only after its checks, so a 507 or an unreachable node is known before any byte is sent,
  and the replica moves on to the next node with nothing to replay.  Once every replica has
  its 100 (or gave up), and a quorum has, the client gets its own 100 and the body is read
  ``stream_chunk_size`` (1 MiB) at a time, each chunk written to every live replica's
  transport at once, with no await; the feeder waits only for a replica whose transport
  holds more than ``put_queue_chunks`` chunks unsent: the client is read no faster than the
  slowest replica still sending.  A replica that fails mid-body, or takes nothing for
  ``node_timeout_s``, is dropped (a body half-sent cannot move to a handoff); if fewer than
  a quorum remain the PUT is a 503.
  Chunked client bodies go on chunked; a body of known length goes with its Content-Length.

What a large body costs the proxy is per byte (reading it, the MD5 of the footer, three
socket writes) and per chunk (a read, then a write per replica, whatever its size); the
chunks' pieces are aiohttp's buffers as they came, never joined.  Memory per PUT stays
bounded: ``put_queue_chunks`` chunks per replica's transport, one chunk being read, and what
aiohttp buffers of the client.

The checksum footer (``SEND_CHECKSUM_FOOTER``; docs/design/proxy.md): the MD5 and xxh3-64 of
the data, computed here once as it streams, end every replica's body, so the object servers
need not compute the MD5 three times, and the xxh3 checks the proxy → object server hop.
With ``late_sysmeta`` (``LATE_SYSMETA``: an S3 checksum sent as an aws-chunked trailer), the
footer's version ``md5+xxh3-64+meta`` also carries sysmeta whose values are known only once
the body has passed, declared (names, lengths) in the headers before the body.

A client that goes away mid-body (499) or stalls for ``client_timeout_s`` (408) cuts every
replica's request: each connection is aborted before the end of its body, so no object
server commits a truncated object (a chunked body ends only with its last-chunk marker; a
body with a footer only with its footer).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import xxhash
from aiohttp import web
from aiohttp.http import HttpVersion11

from ring.device import Device
from ring.ring import Ring
from service import checksum_footer
from service.checksum_footer import (
    FOOTER_BYTES,
    FOOTER_HEADER,
    FOOTER_KIND,
    FOOTER_KIND_META,
    META_HEADER,
)
from service.http11 import Upload
from service.names import MAX_FILE_SIZE

from .backend import (
    BACKEND_ERRORS,
    BackendResponse,
    gather_until_quorum,
    is_node_failure,
    note_failure,
    quorum_size,
    reason,
    replicated,
)
from .context import Proxy
from .nodes import write_nodes

CONTINUE_SENT = web.RequestKey("torus.continue_sent", bool)
# The checksum footer (docs/design/proxy.md): the object servers' side must be deployed
# everywhere before this is turned on, as an older object server would store the footer.
SEND_CHECKSUM_FOOTER = True
# Late sysmeta in the footer (``md5+xxh3-64+meta``): an object server from before it refuses
# that version (400, nothing stored), so every one must have it before this is on.  Off, a
# LATE_SYSMETA is ignored: an S3 trailer's checksum is verified but not stored, as before.
SEND_FOOTER_META = True


class ClientDisconnected(Exception):
    """The client went away before its whole body arrived (Swift's 499)."""


class ClientTimeout(Exception):
    """The client sent nothing for ``client_timeout_s`` mid-body (Swift's 408)."""


class BodyTooLarge(Exception):
    """A body of no declared length grew past ``MAX_FILE_SIZE`` (413)."""


class EtagMismatch(Exception):
    """The body's MD5 is not the ETag the client sent (422); no replica stored it."""


# The next chunk of a body, as the pieces it arrived in (never joined: each piece goes to
# every replica as it is, one writev); [] at the end.
BodySource = Callable[[], Awaitable[list[bytes]]]
# The next piece of a body as the client sent it; b"" at the end.
PieceSource = Callable[[], Awaitable[bytes]]
# A request's body seen through a filter (the S3 API's aws-chunked decoding and checksums,
# proxy/s3/): the client's pieces in, the body's out.  A filter that raises fails the PUT
# before anything is committed (``put_replicas`` cuts every replica first).
BODY_FILTER = web.RequestKey("torus.body_filter", Callable[[PieceSource], PieceSource])


@dataclass(frozen=True)
class LateSysmeta:
    """Object sysmeta whose values are known only once the body has passed (an S3 checksum
    sent as an aws-chunked trailer, verified by the body filter at the body's end), stored
    with the object in the same commit: sent in the checksum footer (version
    ``md5+xxh3-64+meta``, service/checksum_footer.py).

    ``names_and_lengths``: each ``X-Object-Sysmeta-*`` name and its value's length in bytes
    (UTF-8), known before the body (the object servers hold that much of its end back).
    ``values()``: name → value, called once after the body's last piece, before the footer
    is sent; a value not of its declared length fails the PUT (nothing committed)."""

    names_and_lengths: tuple[tuple[str, int], ...]
    values: Callable[[], Mapping[str, str]]


# Set by the S3 layer (proxy/s3/body.py) on a PUT whose checksum comes as a trailer; the
# object controller passes it to ``put_replicas``.  Object servers must all understand
# ``md5+xxh3-64+meta`` before anything sets it (docs/design/proxy.md, the checksum footer).
LATE_SYSMETA = web.RequestKey("torus.late_sysmeta", LateSysmeta)


def client_body(request: web.Request, proxy: Proxy, length: int | None) -> BodySource:
    """Chunks of ``request``'s body, each ``stream_chunk_size`` or a little more (the last one
    shorter), each wait on the client at most ``client_timeout_s``.

    Whole chunks, not whatever has arrived: the fan-out writes to the replicas without
    waiting while they keep up, so handing on what has arrived would make each chunk as
    small as the client's packets, and cost three writes each.  The pieces are aiohttp's
    buffers as they came (``readchunk``), never joined: a 64 MiB PUT is not copied in the
    proxy, only hashed (the footer) and written."""
    chunk_size = proxy.config.stream_chunk_size
    timeout_s = proxy.config.client_timeout_s
    content = request.content
    received = 0

    async def read_piece() -> bytes:
        try:
            while True:
                async with asyncio.timeout(timeout_s):
                    piece, end_of_http_chunk = await content.readchunk()
                # (b"", True) marks a chunk's end, except from aiohttp's shared empty body,
                # which answers it forever: looping on it would never yield to the loop.
                if piece or not end_of_http_chunk or content.at_eof():
                    return piece
        except TimeoutError:
            raise ClientTimeout() from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reset, or a body cut short (aiohttp's payload errors)
            raise ClientDisconnected(str(exc) or type(exc).__name__) from exc

    body_filter = request.get(BODY_FILTER)
    next_piece = read_piece if body_filter is None else body_filter(read_piece)

    async def read() -> list[bytes]:
        nonlocal received
        pieces = []
        got = 0
        while got < chunk_size:
            piece = await next_piece()
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        received += got
        if not got and length is not None and received < length:
            raise ClientDisconnected(f"{received} of {length} bytes")
        if received > MAX_FILE_SIZE:
            raise BodyTooLarge()
        return pieces

    return read


async def send_continue(request: web.Request) -> None:
    """The client's 100 Continue, if it waits for one (once, and only when we are ready for
    its body: the route's expect handler defers it, proxy/server.py)."""
    if request.get(CONTINUE_SENT) or request.version != HttpVersion11:
        return
    if request.headers.get("Expect", "").lower() != "100-continue":
        return
    request[CONTINUE_SENT] = True
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # as aiohttp's own expect handler: no answer bytes yet


async def put_replicas(
    proxy: Proxy,
    ring: Ring,
    part: int,
    path_for_node: Callable[[Device], str],
    headers_per_replica: Sequence[Mapping[str, str]],
    read: BodySource,
    length: int | None,
    ready_for_body: Callable[[], Awaitable[None]],
    *,
    client_etag: str | None = None,
    late_sysmeta: LateSysmeta | None = None,
    conditional: bool = False,
) -> list[BackendResponse | None]:
    """PUT the body ``read`` gives to every replica; each replica's answer (None: none).

    ``length``: the body's length, None if unknown (chunked).  ``ready_for_body`` is awaited
    once the backends are ready for the body, just before the first read (the client's 100
    Continue).  ``client_etag``: the ETag the client sent (checked against the proxy's own
    MD5 when footers are sent, ``EtagMismatch``).  ``late_sysmeta``: sysmeta sent after the
    body, in the footer (which it turns on whatever ``SEND_CHECKSUM_FOOTER`` says), if
    ``SEND_FOOTER_META``.  Raises what ``read`` raises (or ``late_sysmeta.values()``, or
    FooterFormatError for a value not as declared), after cutting every replica's request.

    ``conditional``: the PUT has preconditions (If-None-Match, If-Match) the object servers
    check, each holding the object's lease from its check to its answer
    (objectd/write_leases.py).  Its body, however small, then waits for every replica's
    ``100 Continue``, and goes to none unless a quorum sent one and no replica failed the
    condition: a replica that answered 412 or was leased to another conditional write stores
    nothing, and neither do the others when this write is refused, so two racing conditional
    writes cannot both commit somewhere.
    """
    footer = None
    if late_sysmeta is not None and SEND_FOOTER_META:
        footer = FooterDigest(late_sysmeta)  # FooterFormatError now for a bad declaration
    elif SEND_CHECKSUM_FOOTER:
        footer = FooterDigest()
    if footer is not None:
        footer_headers = footer.headers
        headers_per_replica = [{**h, **footer_headers} for h in headers_per_replica]
    small = length is not None and length <= proxy.config.object_chunk_size
    if small and not conditional:
        await ready_for_body()
        body = await _read_small(read, length)
        if footer is not None:
            footer.update(body)
            footer.check(client_etag)
            body += footer.encode()
        return await replicated(proxy, ring, part, "PUT", path_for_node, headers_per_replica, body)
    if footer is not None and length is not None:
        length += footer.tail_bytes
    fanout = _FanOut(proxy, ring, part, path_for_node, headers_per_replica, length, conditional)
    return await fanout.run(read, ready_for_body, footer, client_etag)


async def _read_small(read: BodySource, length: int) -> bytes:
    pieces = []
    while chunk := await read():
        pieces += chunk
    body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    if len(body) != length:
        raise ClientDisconnected(f"{len(body)} of {length} bytes")
    return body


class _Replica:
    """One replica of a streamed PUT: its request (node after node until one is ready for the
    body, or answers), then the body written to it, then its answer."""

    def __init__(self, fanout: _FanOut, headers: Mapping[str, str]) -> None:
        self.fanout = fanout
        self.headers = headers
        self.upload: Upload | None = None  # a node took the request: no handoff from here on
        self.writing = False  # the body goes on to it
        self.answer: BackendResponse | None = None  # the node's answer before the body
        self.node: Device | None = None  # the node being tried

    def path(self) -> str:
        assert self.node is not None
        return self.fanout.path_for_node(self.node)

    async def connect(self) -> None:
        """Node after node until one sends 100 Continue (``upload``) or a final answer that
        is not a node failure (``answer``: a 412, a 409); neither if every node failed."""
        fanout = self.fanout
        proxy = fanout.proxy
        for node in fanout.nodes:
            self.node = node
            try:
                upload = await proxy.pool.open_upload(
                    node.ip,
                    node.port,
                    "PUT",
                    self.path(),
                    self.headers,
                    fanout.length,
                    conn_timeout_s=proxy.config.conn_timeout_s,
                    continue_timeout_s=proxy.config.node_timeout_s,
                )
            except BACKEND_ERRORS as exc:
                note_failure(proxy, node, None, f"PUT {self.path()}: {reason(exc)}")
                continue
            early = upload.early
            if early is None:
                upload.set_buffer_limit(fanout.buffer_bytes)
                self.upload, self.writing = upload, True
                return
            if not is_node_failure(early.status):
                self.answer = early
                return
            note_failure(proxy, node, early.status, f"PUT {self.path()}")

    def write(self, chunk: list[bytes]) -> None:
        """``chunk`` to the node, unless it stopped taking the body (``still_writing``)."""
        if self.still_writing():
            assert self.upload is not None
            self.upload.write(chunk)

    def still_writing(self) -> bool:
        """Whether the node still takes the body: one whose connection failed is cut, one
        that answered mid-body gets no more bytes (its answer is ``finish``'s)."""
        upload = self.upload
        if not self.writing or upload is None:
            return False
        if upload.failed:
            if upload.answered:
                self.writing = False
            else:
                self.cut(f"PUT {self.path()}: the connection failed mid-body")
            return False
        return True

    async def drain(self, timeout_s: float, *, flush: bool = False) -> None:
        """Wait for room in the transport's buffer (``flush``: until it is empty); a node
        that takes nothing for ``timeout_s`` is cut."""
        upload = self.upload
        if upload is not None and flush:
            upload.set_buffer_limit(0)
        if upload is None or not upload.must_drain:
            return
        try:
            await upload.drain(timeout_s)
        except TimeoutError:
            self.cut(f"PUT {self.path()}: took no body for {timeout_s}s")

    async def finish(self) -> BackendResponse | None:
        """The body's end and the node's answer (or the answer it gave before the body)."""
        upload, self.upload = self.upload, None
        self.writing = False
        if upload is None:
            return self.answer
        proxy = self.fanout.proxy
        assert self.node is not None
        try:
            answer = await upload.finish(proxy.config.node_timeout_s)
        except BACKEND_ERRORS as exc:
            note_failure(proxy, self.node, None, f"PUT {self.path()}: {reason(exc)}")
            return None
        except BaseException:
            upload.close()
            raise
        if is_node_failure(answer.status):
            note_failure(proxy, self.node, answer.status, f"PUT {self.path()}")
        return answer

    def cut(self, why: str | None = None) -> None:
        """Stop this replica's request before its body ends: nothing is committed.  ``why``:
        the node's fault (counted against it), not the client's."""
        upload, self.upload = self.upload, None
        self.writing = False
        if upload is None:
            return
        if why is not None and self.node is not None:
            note_failure(self.fanout.proxy, self.node, None, why)
        upload.close()


class _FanOut:
    def __init__(
        self,
        proxy: Proxy,
        ring: Ring,
        part: int,
        path_for_node: Callable[[Device], str],
        headers_per_replica: Sequence[Mapping[str, str]],
        length: int | None,
        conditional: bool,
    ) -> None:
        self.proxy = proxy
        self.conditional = conditional
        self.nodes = write_nodes(proxy, ring, part)
        self.path_for_node = path_for_node
        self.length = length  # of what each replica is sent (a footer included)
        config = proxy.config
        self.buffer_bytes = config.put_queue_chunks * config.stream_chunk_size
        self.quorum = quorum_size(len(headers_per_replica))
        self.replicas = [_Replica(self, headers) for headers in headers_per_replica]

    def live(self) -> int:
        return sum(1 for r in self.replicas if r.writing)

    async def run(
        self,
        read: BodySource,
        ready_for_body: Callable[[], Awaitable[None]],
        footer: FooterDigest | None,
        client_etag: str | None,
    ) -> list[BackendResponse | None]:
        connecting = [asyncio.ensure_future(r.connect()) for r in self.replicas]
        try:
            await asyncio.gather(*connecting)  # each bounded by its own timeouts
            if self.live() < self.quorum or self._condition_failed():
                return self._give_up()
            await ready_for_body()
            while chunk := await read():
                if footer is not None:
                    for piece in chunk:
                        footer.update(piece)
                await self.feed(chunk)
                if self.live() < self.quorum:
                    return self._give_up()
            if not await self.settle():
                return self._give_up()
            if footer is not None:
                footer.check(client_etag)
                await self.feed([footer.encode()])
        except BaseException:
            for task in connecting:
                task.cancel()
            await asyncio.gather(*connecting, return_exceptions=True)
            self._give_up()
            raise
        finishing = [asyncio.ensure_future(r.finish()) for r in self.replicas]
        return await gather_until_quorum(
            finishing, self.quorum, self.proxy.config.post_quorum_timeout_s
        )

    async def feed(self, chunk: list[bytes]) -> None:
        """Write ``chunk`` to every live replica, then wait for room where a node lags:
        at most ``node_timeout_s`` per replica; one that stays full is cut.  (The transports
        hold what the nodes have not taken yet, at most ``buffer_bytes`` past a chunk.)"""
        replicas = self.replicas
        for replica in replicas:
            if replica.writing:
                replica.write(chunk)
        for replica in replicas:
            if replica.writing:
                await replica.drain(self.proxy.config.node_timeout_s)

    async def settle(self) -> bool:
        """Before the body's end (the footer, or the chunked coding's last chunk): wait until
        every live replica's node took all that was written, so that one that broke is known,
        and say whether a quorum still takes the body.  Without it, two replicas failing mid-
        body could go unnoticed and the third commit what the client is told failed (503).
        (A body with a Content-Length and no footer has no end to hold back: a node commits
        as its last byte comes.)"""
        timeout_s = self.proxy.config.node_timeout_s
        for replica in self.replicas:
            if replica.writing:
                await replica.drain(timeout_s, flush=True)
        await asyncio.sleep(0)  # what the nodes sent meanwhile (a reset, an answer) is seen
        return sum(1 for r in self.replicas if r.still_writing()) >= self.quorum

    def _condition_failed(self) -> bool:
        """A conditional PUT one replica refused for its condition (Swift: then it is a 412,
        whatever the others said)."""
        if not self.conditional:
            return False
        return any(r.answer is not None and r.answer.status == 412 for r in self.replicas)

    def _give_up(self) -> list[BackendResponse | None]:
        """Cut every replica still sending; the answers of those that had answered before
        the body (a 412 for If-None-Match, say, comes instead of a 100 Continue)."""
        for replica in self.replicas:
            replica.cut()
        return [replica.answer for replica in self.replicas]


_PLAIN_FOOTER = {FOOTER_HEADER: FOOTER_KIND}


class FooterDigest:
    """The MD5 and xxh3-64 of an object's data, computed once here as it streams, sent after
    the data as the last ``FOOTER_BYTES`` of each replica's body (docs/design/proxy.md); with
    ``late_sysmeta``, followed by its meta part (``tail_bytes`` in all).  ``headers``: what
    every replica's request carries to say so."""

    def __init__(self, late_sysmeta: LateSysmeta | None = None) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._xxh3 = xxhash.xxh3_64()
        self._late = late_sysmeta
        self._layout: checksum_footer.MetaLayout = ()
        self.headers: Mapping[str, str] = _PLAIN_FOOTER
        self.tail_bytes = FOOTER_BYTES
        if late_sysmeta is not None:
            layout = tuple(late_sysmeta.names_and_lengths)
            self._layout = layout
            self.headers = {
                FOOTER_HEADER: FOOTER_KIND_META,
                META_HEADER: checksum_footer.encode_meta_header(layout),
            }
            self.tail_bytes = FOOTER_BYTES + checksum_footer.meta_part_bytes(layout)

    def update(self, data: bytes) -> None:
        self._md5.update(data)
        self._xxh3.update(data)

    def check(self, client_etag: str | None) -> None:
        """``EtagMismatch`` if the client sent an ETag the data does not have."""
        if client_etag is not None and client_etag.strip('"').lower() != self._md5.hexdigest():
            raise EtagMismatch()

    def encode(self) -> bytes:
        """The body's tail, once the data has passed: the footer, and any meta part (whose
        values are asked for now)."""
        footer = checksum_footer.encode(
            checksum_footer.ChecksumFooter(self._md5.hexdigest(), self._xxh3.hexdigest())
        )
        if self._late is None:
            return footer
        return footer + checksum_footer.encode_meta(self._layout, self._late.values())
