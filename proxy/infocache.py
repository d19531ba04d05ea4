"""What the proxy knows of an account or a container without asking again: existence, ACLs,
totals, metadata (Swift's ``get_account_info``/``get_container_info``).

One HEAD to the first replica that answers (``backend.first_response``) fills an entry; the
answer is kept in ``proxy.info_cache`` (one dict per worker process) for
``config.info_cache_ttl_s``, a missing account or container (404) for a tenth of that, as
Swift keeps its negative answers shorter.  No answer at all (every replica down or failing)
is status 503 and is not kept.  Concurrent misses of one name share one HEAD.  The cache is
bounded (``MAX_ENTRIES``, oldest first out).

Across workers (proxy/generations.py): ``invalidate`` also bumps the name's slot in the
generation table the proxy's workers share on this host.  A fill reads the slot's generation
*before* its HEAD and keeps it with the entry; a lookup whose slot has moved on since is a
miss, as is joining a HEAD that began before the move.  The callers invalidate after the
backend write answered and before their response goes out, so a client that got its 2xx
sees the change through any worker of this host.  One memoryview read per lookup.

Known weaknesses: between proxy *hosts* nothing is shared, so another host keeps what it
cached until the TTL passes (an ACL just revoked may still grant for ``info_cache_ttl_s``;
a container just created may look missing for a tenth of it).  And a HEAD that reaches a
replica the write has not reached yet (a quorum is enough to answer) is cached as fresh.
A proxy without a table (``proxy.generations`` absent, as in unit tests) caches per worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from multidict import CIMultiDictProxy

from service.backend_client import BackendResponse

from . import backend
from .context import Proxy
from .generations import GenerationTable

MAX_ENTRIES = 10_000  # per worker: a bound, far above the names one worker serves at once
NEGATIVE_TTL_FRACTION = 0.1  # Swift caches a 404 for a tenth of recheck_*_existence
UNAVAILABLE = 503  # the status of an info no replica gave


@dataclass(frozen=True)
class ContainerInfo:
    status: int  # the backend's: 204 exists, 404 missing; 503 when no replica answered
    read_acl: str = ""
    write_acl: str = ""
    object_count: int = 0
    bytes_used: int = 0
    meta: Mapping[str, str] = field(default_factory=dict)  # X-Container-Meta-<key>, key lower
    sysmeta: Mapping[str, str] = field(default_factory=dict)  # X-Container-Sysmeta-<key>
    sync_key: str = ""
    sync_to: str = ""
    versions_location: str = ""
    history_location: str = ""

    @property
    def exists(self) -> bool:
        return 200 <= self.status < 300

    @property
    def cors(self) -> dict[str, str]:
        """The container's CORS settings (its ``X-Container-Meta-Access-Control-*``)."""
        keys = ("allow-origin", "expose-headers", "max-age")
        return {
            key: self.meta[f"access-control-{key}"]
            for key in keys
            if f"access-control-{key}" in self.meta
        }


@dataclass(frozen=True)
class AccountInfo:
    status: int  # 204 exists, 404 missing (``deleted`` if recently deleted), 503 unknown
    container_count: int = 0
    object_count: int = 0
    bytes_used: int = 0
    meta: Mapping[str, str] = field(default_factory=dict)  # X-Account-Meta-<key>, key lower
    sysmeta: Mapping[str, str] = field(default_factory=dict)
    deleted: bool = False  # the 404 said X-Account-Status: Deleted

    @property
    def exists(self) -> bool:
        return 200 <= self.status < 300


Info = TypeVar("Info", ContainerInfo, AccountInfo)


@dataclass(frozen=True)
class _Cached:
    expires_at: float  # time.monotonic()
    info: ContainerInfo | AccountInfo
    slot: int  # in the generation table
    generation: int  # the slot's, read before the HEAD that gave ``info``


@dataclass(frozen=True)
class _Loading:
    done: asyncio.Future[ContainerInfo | AccountInfo]
    slot: int
    generation: int  # read before the HEAD was sent


def _container_key(account: str, container: str) -> tuple[str, str, str]:
    return ("container", account, container)


def _account_key(account: str) -> tuple[str, str]:
    return ("account", account)


async def get_container_info(proxy: Proxy, account: str, container: str) -> ContainerInfo:
    """The container's info, cached (the module docstring)."""

    async def load() -> ContainerInfo:
        ring = proxy.container_ring
        part = ring.get_part(account, container)
        response = await _head(proxy, ring, part, account, container)
        return container_info_from(response)

    return await _cached(proxy, _container_key(account, container), load)


async def get_account_info(proxy: Proxy, account: str) -> AccountInfo:
    """The account's info, cached (the module docstring)."""

    async def load() -> AccountInfo:
        ring = proxy.account_ring
        part = ring.get_part(account)
        response = await _head(proxy, ring, part, account, None)
        return account_info_from(response)

    return await _cached(proxy, _account_key(account), load)


def invalidate(proxy: Proxy, account: str, container: str | None = None) -> None:
    """After a write to the container (``container`` given) or the account has answered,
    before the client hears of it: forget what this worker cached of it, and bump its
    generation so every worker of this host does.  A HEAD already under way is not
    stopped; its answer is dropped rather than kept."""
    key = _account_key(account) if container is None else _container_key(account, container)
    proxy.info_cache.pop(key, None)
    table = _table(proxy)
    if table is not None:
        table.bump(table.slot(account, container))


def remember(proxy: Proxy, account: str, info: AccountInfo) -> None:
    """Keep ``info`` as the account's: the proxy just created the account, and called
    ``invalidate(proxy, account)`` after.  Kept only if no other worker has bumped the
    account's slot since (it may have written something newer)."""
    slot = _slot(proxy, account)
    table = _table(proxy)
    generation = 0 if table is None else table.own_generation(slot)
    if generation is not None:
        _store(proxy, _account_key(account), info, slot, generation)


async def _head(
    proxy: Proxy, ring, part: int, account: str, container: str | None
) -> BackendResponse | None:
    def path_for_node(node) -> str:
        return backend.backend_path(node.device, part, account, container)

    return await backend.first_response(proxy, ring, part, "HEAD", path_for_node, {})


def _table(proxy: Proxy) -> GenerationTable | None:
    return getattr(proxy, "generations", None)


def _slot(proxy: Proxy, account: str, container: str | None = None) -> int:
    table = _table(proxy)
    return 0 if table is None else table.slot(account, container)


def _generation(proxy: Proxy, slot: int) -> int:
    table = _table(proxy)
    return 0 if table is None else table.read(slot)


async def _cached(proxy: Proxy, key: tuple[str, ...], load: Callable[[], Awaitable[Info]]) -> Info:
    cache = proxy.info_cache
    entry = cache.get(key)
    if isinstance(entry, _Cached):
        fresh = entry.expires_at > time.monotonic()
        if fresh and entry.generation == _generation(proxy, entry.slot):
            return entry.info  # type: ignore[return-value]
        del cache[key]
    elif isinstance(entry, _Loading) and entry.generation == _generation(proxy, entry.slot):
        try:
            return await asyncio.shield(entry.done)  # type: ignore[return-value]
        except Exception:
            pass  # that load failed: try once more, ourselves
        except asyncio.CancelledError:
            if not entry.done.cancelled():
                raise  # we were cancelled, not the load we waited on
    # (A HEAD sent before the slot's last bump may answer from before that write: not joined.)
    return await _load(proxy, key, load)


async def _load(proxy: Proxy, key: tuple[str, ...], load: Callable[[], Awaitable[Info]]) -> Info:
    cache = proxy.info_cache
    slot = _slot(proxy, *key[1:])  # (account,) or (account, container)
    generation = _generation(proxy, slot)  # before the HEAD: a write after it moves the slot
    loading = _Loading(asyncio.get_running_loop().create_future(), slot, generation)
    cache[key] = loading
    try:
        info = await load()
    except BaseException as exc:
        if cache.get(key) is loading:
            del cache[key]
        if isinstance(exc, asyncio.CancelledError):
            loading.done.cancel()
        else:
            loading.done.set_exception(exc)
            loading.done.exception()  # retrieved: waiters may be none
        raise
    if cache.get(key) is loading:  # not invalidated by this worker, nor replaced, meanwhile
        del cache[key]
        _store(proxy, key, info, slot, generation)
    loading.done.set_result(info)
    return info


def _store(
    proxy: Proxy,
    key: tuple[str, ...],
    info: ContainerInfo | AccountInfo,
    slot: int,
    generation: int,
) -> None:
    ttl_s = proxy.config.info_cache_ttl_s
    if info.status == UNAVAILABLE or ttl_s <= 0:
        return
    if not info.exists:
        ttl_s *= NEGATIVE_TTL_FRACTION
    cache = proxy.info_cache
    cache.pop(key, None)
    while len(cache) >= MAX_ENTRIES:
        del cache[next(iter(cache))]  # the oldest insertion
    cache[key] = _Cached(time.monotonic() + ttl_s, info, slot, generation)


# -- from a backend's answer ----------------------------------------------------------------


def container_info_from(response: BackendResponse | None) -> ContainerInfo:
    """A container HEAD's (or GET's) answer as info; None (no answer) is 503."""
    if response is None or response.status >= 500:
        return ContainerInfo(status=UNAVAILABLE)
    headers = response.headers
    if not 200 <= response.status < 300:
        return ContainerInfo(status=response.status)
    return ContainerInfo(
        status=response.status,
        read_acl=headers.get("X-Container-Read", ""),
        write_acl=headers.get("X-Container-Write", ""),
        object_count=_count(headers, "X-Container-Object-Count"),
        bytes_used=_count(headers, "X-Container-Bytes-Used"),
        meta=_prefixed(headers, "x-container-meta-"),
        sysmeta=_prefixed(headers, "x-container-sysmeta-"),
        sync_key=headers.get("X-Container-Sync-Key", ""),
        sync_to=headers.get("X-Container-Sync-To", ""),
        versions_location=headers.get("X-Versions-Location", ""),
        history_location=headers.get("X-History-Location", ""),
    )


def account_info_from(response: BackendResponse | None) -> AccountInfo:
    """An account HEAD's (or GET's) answer as info; None (no answer) is 503."""
    if response is None or response.status >= 500:
        return AccountInfo(status=UNAVAILABLE)
    headers = response.headers
    if not 200 <= response.status < 300:
        deleted = headers.get("X-Account-Status", "").lower() == "deleted"
        return AccountInfo(status=response.status, deleted=deleted)
    return AccountInfo(
        status=response.status,
        container_count=_count(headers, "X-Account-Container-Count"),
        object_count=_count(headers, "X-Account-Object-Count"),
        bytes_used=_count(headers, "X-Account-Bytes-Used"),
        meta=_prefixed(headers, "x-account-meta-"),
        sysmeta=_prefixed(headers, "x-account-sysmeta-"),
    )


def _count(headers: CIMultiDictProxy[str] | Mapping[str, str], name: str) -> int:
    text = headers.get(name, "0").strip()
    return int(text) if text.isascii() and text.isdigit() else 0


def _prefixed(headers: CIMultiDictProxy[str] | Mapping[str, str], prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in headers.items():
        lowered = key.lower()
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            found[lowered[len(prefix) :]] = value
    return found
