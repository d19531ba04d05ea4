"""Talking to the storage servers: paths, headers, one call, and Swift's quorum answers.

Every backend call goes through the worker's one ``service.http11.ConnectionPool`` (the lean
keep-alive HTTP/1.1 client, ``proxy.context``) with ``conn_timeout_s`` to connect and
``node_timeout_s`` for each wait on the node.  A node that cannot be reached, times out,
answers a 5xx or a 507 is counted against (proxy/nodes.py) and replaced by the next node: a
handoff once the primaries are used up.

- ``replicated``, ``quorum_request``: Swift's ``make_requests`` + ``best_response`` for
  requests with small bodies (account/container writes, object POST and DELETE, small object
  PUTs): one request per replica at once, the answer a quorum of replicas agrees on.
- ``first_response``: a GET or HEAD of an account or container: nodes one at a time until one
  has it.
Streamed object bodies have their own paths (proxy/streaming.py, proxy/object_get.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from ring.device import Device
from ring.ring import Ring
from service.backend_client import BackendResponse, BackendUnavailable
from service.http11_connection import MIN_ACK_WAIT_S, Connection
from service.timestamp import Timestamp

from .context import INTERNAL_HEADERS, TIMESTAMP, TRANS_ID, Proxy
from .nodes import read_nodes, write_nodes

__all__ = [
    "BACKEND_ERRORS",
    "BackendResponse",
    "BackendUnavailable",
    "backend_headers",
    "backend_path",
    "best_response_index",
    "call",
    "first_response",
    "quorum_request",
    "quorum_size",
    "replicated",
    "request_timestamp",
]

# Request headers a backend never gets from the client: hop-by-hop ones, the body's framing
# (the proxy frames each backend body itself), credentials, and what the proxy sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
        "cookie",
        "authorization",
        "x-auth-token",
        "x-storage-token",
        "x-timestamp",
        "x-trans-id",
        "x-trans-id-extra",
        "x-openstack-request-id",
        "user-agent",
        # Where a backend sends its own updates: the proxy names those hosts from the rings.
        # From a client they would aim another server's writes at any host it likes.
        "x-container-host",
        "x-container-partition",
        "x-container-device",
        "x-account-host",
        "x-account-partition",
        "x-account-device",
        "x-account-override-deleted",
        "x-delete-at-host",
        "x-delete-at-partition",
        "x-delete-at-device",
        "x-delete-at-container",
    }
)
# Response headers that describe one hop only: the proxy's own answer sets its own.
HOP_BY_HOP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "date",
        "server",
        "x-trans-id",
    }
)
# What a backend call raises when the node cannot be reached, breaks or is too slow
# (service/http11.py: a malformed answer is a ConnectionError too).
BACKEND_ERRORS = (TimeoutError, OSError)
log = logging.getLogger("torus.proxy")
USER_AGENT = f"proxy-server {os.getpid()}"
SAFE_STATUSES = (200, 300, 400)  # status classes best_response looks for a quorum in
REACH_MARGIN_S = 0.05  # past a reachability verdict's own timer, before a replica is cut
REACH_POLL_S = 0.05  # how often a replica still proving its node reachable is looked at


def quorum_size(n: int) -> int:
    """How many of ``n`` replicas must agree: half, rounded up (2 of 3; 1 of 1; 2 of 4).

    Swift's ``quorum_size`` since 2.18 (its ``majority_size`` is ``n // 2 + 1``)."""
    return (n + 1) // 2


def backend_path(
    device: str, part: int, account: str, container: str | None = None, obj: str | None = None
) -> str:
    """``/<device>/<part>/<account>[/<container>[/<object>]]``, percent-quoted as UTF-8."""
    path = f"/{device}/{part}/{account}"
    if container is not None:
        path += f"/{container}"
        if obj is not None:
            path += f"/{obj}"
    return quote(path, safe="/")


# Headers only the cluster may set or see (Swift's gatekeeper): X-Backend-* and system
# metadata, which a client may neither send nor be shown.
GATEKEPT = re.compile(r"x-(?:backend-|(?:account|container|object)-(?:transient-)?sysmeta-)", re.I)


def is_gatekept(name: str) -> bool:
    return GATEKEPT.match(name) is not None


def request_timestamp(request: web.Request) -> Timestamp:
    """The X-Timestamp of this request's writes: one per client request, assigned once."""
    timestamp = request.get(TIMESTAMP)
    if timestamp is None:
        timestamp = request[TIMESTAMP] = Timestamp.now()
    return timestamp


def backend_headers(request: web.Request, **extra: str) -> dict[str, str]:
    """The headers of a backend request made for ``request``.

    The client's headers (all but hop-by-hop, framing, credentials and gatekept ones, as
    Swift passes an object request's headers on), names title-cased (``Content-Type``, one
    spelling per name); then ``X-Trans-Id``, ``User-Agent``, the request's ``X-Timestamp``
    (writes only), the proxy's own ``INTERNAL_HEADERS``, then ``extra``.  An ``extra`` name
    may be given with underscores (``X_Container_Host="..."``): they become hyphens.
    """
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in _NOT_FORWARDED or is_gatekept(lower):
            continue
        headers[name.title()] = value  # one spelling per name, so callers can replace it
    trans_id = request.get(TRANS_ID)
    if trans_id is not None:
        headers["X-Trans-Id"] = trans_id
    headers["User-Agent"] = USER_AGENT
    if request.method not in ("GET", "HEAD"):
        headers["X-Timestamp"] = request_timestamp(request).internal
    internal = request.get(INTERNAL_HEADERS)
    if internal:
        headers.update(internal)
    for name, value in extra.items():
        headers[name.replace("_", "-")] = value
    return headers


async def call(
    proxy: Proxy,
    node: Device,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes = b"",
    sent: Callable[[Connection], None] | None = None,
) -> BackendResponse:
    """One backend request, its whole answer read; ``BackendUnavailable`` if the node could
    not be reached or did not answer in time.  ``sent``: service/http11.py's."""
    try:
        return await proxy.pool.request(
            node.ip,
            node.port,
            method,
            path,
            headers,
            body or None,
            conn_timeout_s=proxy.config.conn_timeout_s,
            read_timeout_s=proxy.config.node_timeout_s,
            sent=sent,
        )
    except BACKEND_ERRORS as exc:
        raise BackendUnavailable(f"{method} {path}: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """An exception as a log line wants it: its message, else its type."""
    return str(exc) or type(exc).__name__


def is_node_failure(status: int) -> bool:
    """An answer that says "ask another node": a 5xx (507 included)."""
    return status >= 500


def note_failure(proxy: Proxy, node: Device, status: int | None, what: str) -> None:
    """Count a failed call against ``node`` (a 507 limits it at once) and log it, as Swift
    logs each backend error.  ``what``: the call and why, for the log."""
    if status == 507:
        proxy.errors.limit_now(node)
    else:
        proxy.errors.record(node)
    log.warning(
        "%s:%d/%s failed (%d errors): %s",
        node.ip,
        node.port,
        node.device,
        proxy.errors.count(node),
        what if status is None else f"{what}: {status}",
    )


class Attempt:
    """A replica's request to its current node: when it began (loop time) and the connection
    it went out on.  After a quorum, a replica whose node has not yet proven reachable is
    not cut (``replicated``)."""

    __slots__ = ("started_at", "connection")

    def __init__(self) -> None:
        self.started_at = 0.0
        self.connection: Connection | None = None

    def begin(self, now: float) -> None:
        self.started_at, self.connection = now, None

    def sent(self, connection: Connection) -> None:
        self.connection = connection

    def reached(self) -> bool:
        """The node has the request (its TCP acknowledged it, or it began to answer)."""
        return self.connection is not None and self.connection.acknowledged()


async def request_replica(
    proxy: Proxy,
    nodes: Iterator[Device],
    method: str,
    path_for_node: Callable[[Device], str],
    headers: Mapping[str, str],
    body: bytes,
    attempt: Attempt | None = None,
) -> BackendResponse | None:
    """One replica's request: the first node of ``nodes`` that answers other than 5xx."""
    loop = asyncio.get_running_loop()
    for node in nodes:
        path = path_for_node(node)
        if attempt is not None:
            attempt.begin(loop.time())
        try:
            response = await call(
                proxy, node, method, path, headers, body, None if attempt is None else attempt.sent
            )
        except BackendUnavailable as exc:
            note_failure(proxy, node, None, str(exc))
            continue
        if not is_node_failure(response.status):
            return response
        note_failure(proxy, node, response.status, f"{method} {path}")
    return None


async def replicated(
    proxy: Proxy,
    ring: Ring,
    part: int,
    method: str,
    path_for_node: Callable[[Device], str],
    headers_per_replica: Sequence[Mapping[str, str]],
    body: bytes = b"",
) -> list[BackendResponse | None]:
    """One request per replica at once (``headers_per_replica[i]`` for replica ``i``), each
    moving on to the next of ``write_nodes`` (the handoffs, once the primaries are taken)
    when its node is unreachable, times out or answers 5xx; every replica's answer (None:
    none), once a quorum agrees and the others had their time.

    That time, as in Swift: ``post_quorum_timeout_s`` after the quorum for a node that has
    the request and is slow to answer.  But a replica whose node is unreachable is written to
    a handoff, not given up with the others: Swift connects every replica (handoffs
    included) before it sends a byte.  Here a request goes out at once, and a node proves
    reachable within ``reach_s`` of its attempt (a connect, then the TCP acknowledgement of
    the request: ``conn_timeout_s`` each, service/http11.py); so after the quorum a replica
    whose node has not acknowledged the request is cut only once its current attempt is that
    old.  A black-holed primary then costs a small write about a connect timeout and its copy
    lands on a handoff, while a live node that is slow to answer is cut as in Swift.
    """
    nodes = write_nodes(proxy, ring, part)
    attempts = [Attempt() for _ in headers_per_replica]
    tasks = [
        asyncio.ensure_future(
            request_replica(proxy, nodes, method, path_for_node, h, body, attempt)
        )
        for h, attempt in zip(headers_per_replica, attempts, strict=True)
    ]
    config = proxy.config
    reach_s = 2 * max(config.conn_timeout_s, MIN_ACK_WAIT_S) + REACH_MARGIN_S
    return await gather_until_quorum(
        tasks, quorum_size(len(tasks)), config.post_quorum_timeout_s, attempts, reach_s
    )


def have_quorum(statuses: Iterable[int], quorum: int) -> bool:
    """Whether ``statuses`` hold ``quorum`` answers of one class (1xx to 4xx)."""
    counts = [0, 0, 0, 0, 0]
    for status in statuses:
        hundred = status // 100
        if 1 <= hundred <= 4:
            counts[hundred] += 1
            if counts[hundred] >= quorum:
                return True
    return False


def best_response_index(statuses: Sequence[int], quorum: int) -> int | None:
    """Swift's ``best_response``: the index of the answer to give, or None (then 503).

    The first of 2xx, 3xx, 4xx that ``quorum`` answers share decides; within it the highest
    status wins (a 404 over a 204 cannot happen: they are different classes).
    """
    for hundred in SAFE_STATUSES:
        found = [(s, i) for i, s in enumerate(statuses) if hundred <= s < hundred + 100]
        if found and len(found) >= quorum:
            return max(found, key=_status)[1]  # the first of the highest status
    return None


def _status(found: tuple[int, int]) -> int:
    return found[0]


def service_unavailable() -> web.Response:
    return web.Response(status=503, text="Service Unavailable")


async def quorum_request(
    proxy: Proxy,
    ring: Ring,
    part: int,
    method: str,
    path_for_node: Callable[[Device], str],
    headers_per_replica: Sequence[Mapping[str, str]],
    body: bytes = b"",
) -> web.Response:
    """``replicated``'s requests; the answer a quorum agrees on, with that answer's status,
    headers and body; else 503."""
    responses = await replicated(
        proxy, ring, part, method, path_for_node, headers_per_replica, body
    )
    return best_response(responses, quorum_size(len(headers_per_replica)))


async def gather_until_quorum(
    tasks: Sequence[asyncio.Future[BackendResponse | None]],
    quorum: int,
    post_quorum_s: float,
    attempts: Sequence[Attempt] | None = None,
    reach_s: float = 0.0,
) -> list[BackendResponse | None]:
    """Wait until ``quorum`` answers agree (then ``post_quorum_s`` more) or all are in; the
    answers in task order, None for a task that had no answer (failed, cut or still out).
    With ``attempts`` (``replicated``), a task is cut no sooner than ``reach_s`` after its
    current attempt began."""
    loop = asyncio.get_running_loop()
    decided = loop.create_future()
    statuses: list[int] = []
    remaining = len(tasks)

    def on_done(task: asyncio.Future[BackendResponse | None]) -> None:
        nonlocal remaining
        remaining -= 1
        if not task.cancelled() and task.exception() is None and task.result() is not None:
            statuses.append(task.result().status)  # type: ignore[union-attr]
        if not decided.done() and (remaining == 0 or have_quorum(statuses, quorum)):
            decided.set_result(None)

    def cut_at(index: int, after_quorum: float) -> float:
        if attempts is None or attempts[index].reached():
            return after_quorum
        return max(after_quorum, attempts[index].started_at + reach_s)

    for task in tasks:
        task.add_done_callback(on_done)
    try:
        if tasks:
            await decided
        after_quorum = loop.time() + post_quorum_s
        while True:
            now = loop.time()
            waiting = []
            for i, task in enumerate(tasks):
                if task.done():
                    continue
                if cut_at(i, after_quorum) <= now:
                    task.cancel()
                else:
                    waiting.append(i)
            if not waiting:
                break
            # Looked at again when the first is due, and every REACH_POLL_S while one waits to
            # prove its node reachable (it may do so, or move on to a handoff, any time).
            due = min(cut_at(i, after_quorum) for i in waiting)
            if attempts is not None and not all(attempts[i].reached() for i in waiting):
                due = min(due, now + REACH_POLL_S)
            await asyncio.wait([tasks[i] for i in waiting], timeout=due - now)
    finally:
        pending_tasks = [task for task in tasks if not task.done()]
        for task in pending_tasks:
            task.cancel()
        if pending_tasks:
            await asyncio.wait(pending_tasks)
    return [task_answer(task) for task in tasks]


def task_answer(task: asyncio.Future[BackendResponse | None]) -> BackendResponse | None:
    """A finished backend task's answer; None if it was cancelled or failed (a bug: logged)."""
    if not task.done() or task.cancelled():
        return None
    exc = task.exception()
    if exc is not None:
        log.error("a backend request failed unexpectedly", exc_info=exc)
        return None
    return task.result()


def best_response(responses: Sequence[BackendResponse | None], quorum: int) -> web.Response:
    """The client's answer from the replicas' (None: no answer, counted as a 503)."""
    statuses = [503 if r is None else r.status for r in responses]
    index = best_response_index(statuses, quorum)
    if index is None:
        return service_unavailable()
    chosen = responses[index]
    assert chosen is not None
    return web.Response(
        status=chosen.status, headers=response_headers(chosen.headers), body=chosen.body
    )


def response_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """A backend answer's headers minus framing and hop-by-hop ones.  ``X-Backend-*`` stay,
    for the controller to read: proxy/server.py strips gatekept headers from every answer
    as it goes out."""
    out = CIMultiDict(headers)  # copied in C; a few removals beat a Python loop over all
    for name in HOP_BY_HOP_RESPONSE:
        out.popall(name, None)
    return out


async def first_response(
    proxy: Proxy,
    ring: Ring,
    part: int,
    method: str,
    path_for_node: Callable[[Device], str],
    headers: Mapping[str, str],
) -> BackendResponse | None:
    """A GET or HEAD of an account or container: ``read_nodes`` one at a time (at most twice
    the replica count, as Swift's ``request_node_count``) until one answers other than
    5xx or 404.  The best answer seen (a 404 if that is all), None if no node answered."""
    limit = request_node_count(ring)
    found: BackendResponse | None = None
    for tried, node in enumerate(read_nodes(proxy, ring, part)):
        if tried >= limit:
            break
        path = path_for_node(node)
        try:
            response = await call(proxy, node, method, path, headers)
        except BackendUnavailable as exc:
            note_failure(proxy, node, None, str(exc))
            continue
        if is_node_failure(response.status):
            note_failure(proxy, node, response.status, f"{method} {path}")
            continue
        if response.status != 404:
            return response
        found = found or response
    return found


def request_node_count(ring: Ring) -> int:
    """How many nodes a read tries at most: twice the replicas (Swift's default)."""
    return 2 * max(int(ring.replica_count + 0.999), 1)
