"""The account reaper: deletes the containers and objects of a deleted account.

A reseller admin's DELETE of an account only marks it deleted on the account servers
(accountd/broker_base.py); its containers and objects stay until this daemon removes them.
Swift's design (swift/account/reaper.py): each account server node runs a reaper that, each
pass, for every local device holding an ``accounts.lmdb``:

1. walks the device's accounts (replicator/account_reap_dbs.py: the server's LMDB file, read
   only, a page per read transaction) and picks the deleted ones;
2. skips an account whose partition's *first* primary in the account ring is not this device
   (so one node does the work, not every replica), and one deleted less than
   ``delay_reaping_s`` ago (an operator's window to undo a mistaken DELETE);
3. lists the account's live containers from the local database and reaps each one
   (replicator/account_reap_container.py): every object DELETEd on every object replica,
   then the container DELETEd on every container replica, which reports it to the account
   as deleted.  At most ``deletes_per_s`` objects and containers are started a second,
   ``concurrency`` objects at once.

The account's own row is left to the account replicator to reclaim, as in Swift (there is
none yet: the account stays deleted, and the proxy answers 410 for it, for good).

Idempotent and cancellation-safe: the reaper keeps no state of its own.  A container is
listed as live in the account until its DELETE reached the account, so a pass stopped
halfway (or a replica that failed) leaves the account's remaining containers, and their
remaining objects, for the next pass; repeating a DELETE is harmless.  A second pass over a
reaped account finds no live container and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ring.ring import Ring
from service.backend_client import BackendClient, open_backend_client
from service.config import ClusterConfig
from service.timestamp import Timestamp

from .account_reap_config import AccountReaperConfig
from .account_reap_container import ContainerReaper, ReapCounts
from .account_reap_dbs import DB_FILE, AccountDbs, DeletedAccount
from .daemon import Daemon
from .devices import local_devices
from .object_replication_local import is_local_device, local_ips
from .rings import RingFile
from .throttle import Throttle

PAGE_SIZE = 1000  # accounts (containers) read per read transaction


@dataclass
class AccountReaperStats:
    devices: int = 0  # devices visited
    errors: int = 0  # devices or accounts whose work raised
    accounts: int = 0  # deleted accounts this node reaps (first primary, delay passed)
    accounts_delayed: int = 0  # ...deleted less than delay_reaping_s ago: left alone
    accounts_elsewhere: int = 0  # deleted accounts another device is first primary of
    accounts_reaped: int = 0  # accounts this pass emptied of every container
    accounts_remaining: int = 0  # accounts left with work after a failure: next pass
    containers_deleted: int = 0
    objects_deleted: int = 0
    failures: int = 0  # replica requests (listings, DELETEs) that failed


@dataclass(frozen=True)
class Rings:
    account: Ring
    container: Ring
    object: Ring


class AccountReaper(Daemon[AccountReaperStats]):
    name = "account-reaper"

    def __init__(
        self,
        config: AccountReaperConfig,
        dbs: AccountDbs,
        client: BackendClient,
        rings: tuple[RingFile, RingFile, RingFile],  # account, container, object
        *,
        throttle: Throttle | None = None,
        my_ips: frozenset[str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(wall_clock=wall_clock)
        self.config = config
        self._dbs = dbs
        self._rings = rings
        self._my_ips = local_ips() if my_ips is None else my_ips  # for bind_ip 0.0.0.0
        self.throttle = throttle if throttle is not None else Throttle(config.deletes_per_s)
        self._reaper = ContainerReaper(
            client,
            self.throttle,
            concurrency=config.concurrency,
            user_agent=f"{self.name} {os.getpid()}",
            log=self.log,
            now=lambda: Timestamp.now(wall_clock),
        )

    async def sweep(self) -> AccountReaperStats:
        stats = AccountReaperStats()
        rings = self._load_rings()
        devices, stats.errors = await asyncio.to_thread(
            local_devices, self.config.devices, DB_FILE, mount_check=self.config.mount_check
        )
        for device in devices:
            stats.devices += 1
            try:
                await self._reap_device(device, rings, stats)
            except Exception:
                stats.errors += 1
                self.log.exception("account-reaper: device %s failed", device)
        return stats

    def _load_rings(self) -> Rings:
        loaded = [ring_file.get() for ring_file in self._rings]
        missing = [str(f.path) for f, ring in zip(self._rings, loaded, strict=True) if not ring]
        if missing:
            raise RuntimeError(f"no ring at {', '.join(missing)}")
        account, container, obj = loaded
        assert account is not None and container is not None and obj is not None
        return Rings(account, container, obj)

    async def _reap_device(self, device: str, rings: Rings, stats: AccountReaperStats) -> None:
        after: bytes | None = b""
        while after is not None:
            deleted, after = await asyncio.to_thread(
                self._dbs.scan_deleted, device, after=after, limit=PAGE_SIZE
            )
            for account in deleted:
                try:
                    await self._reap_account(device, account, rings, stats)
                except Exception:
                    stats.errors += 1
                    self.log.exception("account-reaper: account %r failed", account.account)

    async def _reap_account(
        self, device: str, deleted: DeletedAccount, rings: Rings, stats: AccountReaperStats
    ) -> None:
        account = deleted.account
        partition, nodes = rings.account.get_nodes(account)
        first = nodes[0]
        config = self.config
        if not is_local_device(
            first, device, bind_ip=config.bind_ip, bind_port=config.bind_port, my_ips=self._my_ips
        ):
            stats.accounts_elsewhere += 1
            return
        if self._wall_clock() - deleted.delete_timestamp.seconds < config.delay_reaping_s:
            stats.accounts_delayed += 1
            return
        stats.accounts += 1
        counts = ReapCounts()
        complete, after = True, ""
        while True:
            names = await asyncio.to_thread(
                self._dbs.live_containers, device, account, after=after, limit=PAGE_SIZE
            )
            if not names:
                break
            after = names[-1]
            for container in names:
                complete &= await self._reaper.reap(
                    account, container, (partition, nodes), rings.container, rings.object, counts
                )
        stats.containers_deleted += counts.containers_deleted
        stats.objects_deleted += counts.objects_deleted
        stats.failures += counts.failures
        if not complete:
            stats.accounts_remaining += 1
            self.log.info("account %r: work left for the next pass", account)
        elif counts.containers_deleted:
            stats.accounts_reaped += 1
            self.log.info(
                "account %r reaped: %d containers, %d objects deleted",
                account,
                counts.containers_deleted,
                counts.objects_deleted,
            )


@contextlib.asynccontextmanager
async def open_account_reaper(
    config: AccountReaperConfig, cluster: ClusterConfig
) -> AsyncIterator[AccountReaper]:
    """The daemon with its databases, client and rings, closed on exit
    (``torus serve account-reaper``)."""
    secret = cluster.hash_path_secret.encode("utf-8")
    dbs = AccountDbs(config.devices, secret)
    rings = tuple(RingFile(cluster.ring_dir / f"{kind}.ring", secret) for kind in _RING_KINDS)
    try:
        async with open_backend_client(
            conn_timeout_s=config.conn_timeout_s,
            node_timeout_s=config.node_timeout_s,
            max_connections=4 * config.concurrency,
        ) as client:
            yield AccountReaper(config, dbs, client, (rings[0], rings[1], rings[2]))
    finally:
        await asyncio.to_thread(dbs.close)


_RING_KINDS = ("account", "container", "object")
