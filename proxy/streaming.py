"""An object body sent to every replica at once: Swift's PUT fan-out, with backpressure.

Two paths, by size:

- **Small** (a known length up to ``object_chunk_size``, 64 KiB): the body is read whole first
  (one chunk; never more), then sent in one go to each replica, without ``Expect``: a
  round trip saved per replica on the common small PUT.  A replica whose node fails, times
  out or answers 5xx/507 is sent again, whole, to the next node (a handoff).
- **Streamed** (larger, or chunked with no length): each replica gets its own request with
  ``Expect: 100-continue`` and a bounded queue (``put_queue_chunks`` chunks).  The object
  server answers 100 only after its checks, so a 507 or an unreachable node is known before
  any byte is sent, and the replica moves on to the next node with nothing to replay.  Once
  every replica has its 100 (or gave up), and a quorum has, the client gets its own 100 and
  the body is read up to ``stream_chunk_size`` (1 MiB) at a time and put on every live
  replica's queue: the client is read no faster than the slowest replica still sending
  drains.  A replica that fails mid-body, or whose queue stays full for ``node_timeout_s``,
  is dropped (a body half-sent cannot move to a handoff); if fewer than a quorum remain the
  PUT is a 503.
  Chunked client bodies go on chunked; a body of known length goes with its Content-Length.

The chunk size is most of what a large body costs the proxy: each chunk is a read, a queue
put and a socket write per replica, whatever its size.  Measured on the 2-core dev box, a
64 MiB PUT took ~225 ms of proxy CPU in 64 KiB chunks and ~120 ms in 1 MiB ones.  Memory per
PUT stays bounded: ``put_queue_chunks`` chunks per replica, and what aiohttp buffers of the
client (up to two chunks).

A client that goes away mid-body (499) or stalls for ``client_timeout_s`` (408) cancels every
replica's request: each connection is cut before the end of its body, so no object server
commits a truncated object (a chunked body ends only with its last-chunk marker).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import aiohttp
from aiohttp import web
from aiohttp.http import HttpVersion11

from ring.device import Device
from ring.ring import Ring
from service.names import MAX_FILE_SIZE

from .backend import (
    BackendResponse,
    gather_until_quorum,
    is_node_failure,
    node_url,
    note_failure,
    quorum_size,
    reason,
    request_replica,
    task_answer,
)
from .context import Proxy
from .nodes import write_nodes

CONTINUE_SENT = web.RequestKey("torus.continue_sent", bool)


class ClientDisconnected(Exception):
    """The client went away before its whole body arrived (Swift's 499)."""


class ClientTimeout(Exception):
    """The client sent nothing for ``client_timeout_s`` mid-body (Swift's 408)."""


class BodyTooLarge(Exception):
    """A body of no declared length grew past ``MAX_FILE_SIZE`` (413)."""


BodySource = Callable[[], Awaitable[bytes]]  # the next chunk; b"" at the end


def client_body(request: web.Request, proxy: Proxy, length: int | None) -> BodySource:
    """Chunks of ``request``'s body, each what has arrived up to ``stream_chunk_size``, each
    waited for at most ``client_timeout_s``.  (``read(n)`` lets aiohttp buffer up to ``2n``,
    so while the replicas are the bottleneck, every read is a whole chunk.)"""
    chunk_size = proxy.config.stream_chunk_size
    timeout_s = proxy.config.client_timeout_s
    content = request.content
    received = 0

    async def read() -> bytes:
        nonlocal received
        try:
            async with asyncio.timeout(timeout_s):
                chunk = await content.read(chunk_size)
        except TimeoutError:
            raise ClientTimeout() from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reset, or a body cut short (aiohttp's payload errors)
            raise ClientDisconnected(str(exc) or type(exc).__name__) from exc
        received += len(chunk)
        if not chunk and length is not None and received < length:
            raise ClientDisconnected(f"{received} of {length} bytes")
        if received > MAX_FILE_SIZE:
            raise BodyTooLarge()
        return chunk

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
) -> list[BackendResponse | None]:
    """PUT the body ``read`` gives to every replica; each replica's answer (None: none).

    ``length``: the body's length, None if unknown (chunked).  ``ready_for_body`` is awaited
    once the backends are ready for the body, just before the first read (the client's 100
    Continue).  Raises what ``read`` raises, after cancelling every replica's request.
    """
    if length is not None and length <= proxy.config.object_chunk_size:
        await ready_for_body()
        body = await _read_small(read, length)
        nodes = write_nodes(proxy, ring, part)
        tasks = [
            asyncio.ensure_future(request_replica(proxy, nodes, "PUT", path_for_node, h, body))
            for h in headers_per_replica
        ]
        quorum = quorum_size(len(tasks))
        return await gather_until_quorum(tasks, quorum, proxy.config.post_quorum_timeout_s)
    fanout = _FanOut(proxy, ring, part, path_for_node, headers_per_replica, length)
    return await fanout.run(read, ready_for_body)


async def _read_small(read: BodySource, length: int) -> bytes:
    pieces = []
    received = 0
    while received < length:
        chunk = await read()
        if not chunk:
            break
        pieces.append(chunk)
        received += len(chunk)
    if received != length:
        raise ClientDisconnected(f"{received} of {length} bytes")
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Replica:
    """One replica of a streamed PUT: its request (node after node until one takes the
    body), fed from its bounded queue."""

    def __init__(self, fanout: _FanOut, headers: Mapping[str, str]) -> None:
        self.fanout = fanout
        self.headers = headers
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(fanout.proxy.config.put_queue_chunks)
        self.started = False  # a backend took the first chunk: no handoff from here on
        self.dropped = False  # no more chunks for it (failed, answered early, or cut)
        self.deadline: asyncio.Timeout | None = None
        self.task: asyncio.Task[BackendResponse | None] | None = None
        self.node: Device | None = None  # the node being tried

    async def body(self) -> AsyncIterator[bytes]:
        """The request body aiohttp sends: runs once the node's 100 Continue came."""
        self.started = True
        self.fanout.resolved(self)
        loop = asyncio.get_running_loop()
        if self.deadline is not None:
            self.deadline.reschedule(None)  # feeding has its own timeout (_FanOut.feed)
        while True:
            chunk = await self.queue.get()
            if not chunk:  # the end of the body (a real chunk is never empty)
                break
            yield chunk
        if self.deadline is not None:
            self.deadline.reschedule(loop.time() + self.fanout.proxy.config.node_timeout_s)

    async def run(self) -> BackendResponse | None:
        fanout = self.fanout
        proxy = fanout.proxy
        wait_s = proxy.config.conn_timeout_s + proxy.config.node_timeout_s
        try:
            for node in fanout.nodes:
                self.node = node
                try:
                    async with asyncio.timeout(wait_s) as self.deadline:
                        async with proxy.session.put(
                            node_url(node, fanout.path_for_node(node)),
                            headers=self.headers,
                            data=self.body(),
                            expect100=True,
                            timeout=proxy.stream_timeout,
                        ) as response:
                            answer = BackendResponse(
                                response.status, response.headers, await response.read()
                            )
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    note_failure(
                        proxy, node, None, f"PUT {fanout.path_for_node(node)}: {reason(exc)}"
                    )
                    if self.started:
                        return None
                    continue
                failed = is_node_failure(answer.status)
                if failed:
                    note_failure(proxy, node, answer.status, f"PUT {fanout.path_for_node(node)}")
                if self.started or not failed:
                    return answer
            return None
        finally:
            self.drop()
            fanout.resolved(self)

    def drop(self) -> None:
        """No more chunks for this replica; a feeder blocked on its full queue goes on."""
        if self.dropped:
            return
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()

    def cut(self, why: str | None = None) -> None:
        """Stop this replica's request before its body ends: nothing is committed.  ``why``:
        the node's fault (counted against it), not the client's."""
        if why is not None and self.node is not None and not self.dropped:
            note_failure(self.fanout.proxy, self.node, None, why)
        self.drop()
        if self.task is not None:
            self.task.cancel()


class _FanOut:
    def __init__(
        self,
        proxy: Proxy,
        ring: Ring,
        part: int,
        path_for_node: Callable[[Device], str],
        headers_per_replica: Sequence[Mapping[str, str]],
        length: int | None,
    ) -> None:
        self.proxy = proxy
        self.nodes = write_nodes(proxy, ring, part)
        self.path_for_node = path_for_node
        self.quorum = quorum_size(len(headers_per_replica))
        self._unresolved = len(headers_per_replica)
        self._all_resolved = asyncio.Event()
        self._resolved: set[int] = set()
        self.replicas = []
        for headers in headers_per_replica:
            if length is not None:
                headers = {**headers, "Content-Length": str(length)}
            self.replicas.append(_Replica(self, headers))

    def resolved(self, replica: _Replica) -> None:
        """A replica is ready for the body, or has given up: the connect phase counts it."""
        if id(replica) in self._resolved:
            return
        self._resolved.add(id(replica))
        self._unresolved -= 1
        if self._unresolved == 0:
            self._all_resolved.set()

    def live(self) -> list[_Replica]:
        return [r for r in self.replicas if r.started and not r.dropped]

    async def run(
        self, read: BodySource, ready_for_body: Callable[[], Awaitable[None]]
    ) -> list[BackendResponse | None]:
        for replica in self.replicas:
            replica.task = asyncio.ensure_future(replica.run())
        tasks = [r.task for r in self.replicas if r.task is not None]
        try:
            await self._all_resolved.wait()
            if len(self.live()) < self.quorum:
                return await self._give_up(tasks)
            await ready_for_body()
            while True:
                chunk = await read()
                await self.feed(chunk)
                if not chunk:
                    break
                if len(self.live()) < self.quorum:
                    return await self._give_up(tasks)
        except BaseException:
            await self._give_up(tasks)
            raise
        return await gather_until_quorum(
            tasks, self.quorum, self.proxy.config.post_quorum_timeout_s
        )

    async def feed(self, chunk: bytes) -> None:
        """Put ``chunk`` (b"": the end) on every live replica's queue, waiting for room at
        most ``node_timeout_s`` per replica; a replica that stays full is cut.  (A replica
        dropped meanwhile empties its queue, so a wait on it ends at once.)"""
        timeout_s = self.proxy.config.node_timeout_s
        for replica in self.live():
            if replica.queue.full():
                try:
                    async with asyncio.timeout(timeout_s):
                        await replica.queue.put(chunk)
                except TimeoutError:
                    replica.cut(f"took no body for {timeout_s}s")
                    continue
            else:
                replica.queue.put_nowait(chunk)

    async def _give_up(
        self, tasks: list[asyncio.Task[BackendResponse | None]]
    ) -> list[BackendResponse | None]:
        """Cut every replica still sending; the answers of those that had already answered
        (a 412 for If-None-Match, say, comes before any 100 Continue)."""
        for replica in self.replicas:
            replica.cut()
        await asyncio.gather(*tasks, return_exceptions=True)
        return [task_answer(task) for task in tasks]
