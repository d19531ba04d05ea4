"""Reaping one container of a deleted account: its objects, then the container itself.

Swift's ``AccountReaper.reap_container`` and ``reap_object``, over direct requests:

1. List the container's objects from every container replica (the union of their pages:
   ``_list`` says why), a page of ``PAGE_SIZE`` at a time.
2. DELETE each object on every object replica with one ``X-Timestamp`` (taken when the
   container's reap starts), each replica told to update one container replica
   (``X-Container-Host``/``-Device``/``-Partition``, replica i -> container replica i mod n,
   as Swift pairs them), so the container's rows and count follow.  A 404 counts as done:
   the object server wrote the tombstone all the same.
3. DELETE the container on every container replica with a newer ``X-Timestamp``, each told
   to report to one account replica, with ``X-Account-Override-Deleted: yes`` (the account
   is deleted, and would refuse the report otherwise).  A 404 counts as done (already
   deleted); a 409 (a replica whose count has not reached 0: an object update still in an
   async_pending) is a failure, and the next pass lists and deletes again.

Every request is idempotent (a DELETE at a newer timestamp changes nothing that matters), so
a pass cut short, or failing halfway, leaves work for the next pass and breaks nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ring.device import Device as RingDevice
from ring.ring import Ring
from service.backend_client import BackendClient, BackendUnavailable
from service.timestamp import Timestamp

from .throttle import Throttle

PAGE_SIZE = 1000  # objects listed per container request (Swift's reaper lists 10,000)
OVERRIDE_DELETED = {"X-Account-Override-Deleted": "yes"}


@dataclass
class ReapCounts:
    containers_deleted: int = 0  # containers every replica deleted (or no longer had)
    objects_deleted: int = 0  # objects every replica took the DELETE of
    failures: int = 0  # replica requests that failed: the next pass tries again


def _host(node: RingDevice) -> str:
    ip = f"[{node.ip}]" if ":" in node.ip else node.ip
    return f"{ip}:{node.port}"


def _done(status: int) -> bool:
    return 200 <= status < 300 or status == 404


class ContainerReaper:
    def __init__(
        self,
        client: BackendClient,
        throttle: Throttle,
        *,
        concurrency: int,
        user_agent: str,
        log: logging.Logger,
        now: Callable[[], Timestamp] = Timestamp.now,
    ) -> None:
        self._client = client
        self._throttle = throttle
        self._concurrency = concurrency
        self._user_agent = user_agent
        self._log = log
        self._now = now

    async def reap(
        self,
        account: str,
        container: str,
        account_part: tuple[int, list[RingDevice]],
        container_ring: Ring,
        object_ring: Ring,
        counts: ReapCounts,
    ) -> bool:
        """Delete the container's objects, then the container; True if every replica of the
        container is now deleted."""
        cpart, cnodes = container_ring.get_nodes(account, container)
        timestamp = self._now()
        slots = asyncio.Semaphore(self._concurrency)
        marker: str | None = ""
        while marker is not None:
            page = await self._list(account, container, cpart, cnodes, marker)
            if page is None:
                counts.failures += 1
                return False  # no replica listed it: its DELETE would only be refused
            names, marker = page
            async with asyncio.TaskGroup() as group:
                for name in names:
                    await self._throttle.wait()
                    await slots.acquire()
                    opart, onodes = object_ring.get_nodes(account, container, name)
                    task = group.create_task(
                        self._delete_object(
                            f"/{account}/{container}/{name}",
                            (opart, onodes),
                            (cpart, cnodes),
                            timestamp,
                            counts,
                        )
                    )
                    task.add_done_callback(lambda _: slots.release())
        await self._throttle.wait()
        deleted_at = self._now()
        deleted = await self._delete_container(
            account, container, cpart, cnodes, account_part, deleted_at, counts
        )
        counts.containers_deleted += deleted
        return deleted

    async def _list(
        self, account: str, container: str, cpart: int, cnodes: list[RingDevice], marker: str
    ) -> tuple[list[str], str | None] | None:
        """(a page of the object names after ``marker`` that any container replica lists,
        the next page's marker: None once done); None if no replica could answer.

        Every replica is asked, not the first that answers: an object DELETE that failed on
        one object replica leaves its row live on the container replica that replica would
        have updated, and only that container replica lists it until a container replicator
        carries the delete row there; asking one replica, the next pass could find nothing
        to delete while that replica refused the container's DELETE (409).  Three listings
        per page cost little beside a page's thousands of DELETEs."""
        pages = await asyncio.gather(
            *(self._list_one(account, container, cpart, node, marker) for node in cnodes)
        )
        answered = [page for page in pages if page is not None]
        if not answered:
            return None
        # A full page covers names up to its last only: past the smallest such last name,
        # another replica's page may have missed some; they come in the next page.
        ends = [page[-1] for page in answered if len(page) >= PAGE_SIZE]
        bound = min(ends) if ends else None
        names = sorted({n for page in answered for n in page if bound is None or n <= bound})
        return names, bound

    async def _list_one(
        self, account: str, container: str, cpart: int, node: RingDevice, marker: str
    ) -> list[str] | None:
        """One replica's page after ``marker`` ([] if it has no such container); None if it
        could not answer."""
        query = {"format": "json", "limit": str(PAGE_SIZE)}
        if marker:
            query["marker"] = marker
        path = f"/{account}/{container}"
        headers = {"User-Agent": self._user_agent}
        try:
            response = await self._client.request(
                "GET", node.ip, node.port, node.device, cpart, path, headers, query=query
            )
        except BackendUnavailable as exc:
            self._log.info("listing %s: %s", path, exc)
            return None
        if response.status in (204, 404):
            return []
        if response.status == 200:
            return [entry["name"] for entry in json.loads(response.body) if "name" in entry]
        self._log.info("listing %s: %d from %s/%s", path, response.status, _host(node), node.device)
        return None

    async def _delete_object(
        self,
        path: str,
        object_part: tuple[int, list[RingDevice]],
        container_part: tuple[int, list[RingDevice]],
        timestamp: Timestamp,
        counts: ReapCounts,
    ) -> None:
        opart, onodes = object_part
        cpart, cnodes = container_part
        requests = []
        for i, node in enumerate(onodes):
            cnode = cnodes[i % len(cnodes)]
            headers = {
                "X-Timestamp": timestamp.internal,
                "X-Container-Host": _host(cnode),
                "X-Container-Device": cnode.device,
                "X-Container-Partition": str(cpart),
                "User-Agent": self._user_agent,
            }
            requests.append((node, opart, headers))
        if await self._delete_everywhere(path, requests, counts):
            counts.objects_deleted += 1

    async def _delete_container(
        self,
        account: str,
        container: str,
        cpart: int,
        cnodes: list[RingDevice],
        account_part: tuple[int, list[RingDevice]],
        timestamp: Timestamp,
        counts: ReapCounts,
    ) -> bool:
        apart, anodes = account_part
        requests = []
        for i, node in enumerate(cnodes):
            anode = anodes[i % len(anodes)]
            headers = {
                "X-Timestamp": timestamp.internal,
                "X-Account-Host": _host(anode),
                "X-Account-Device": anode.device,
                "X-Account-Partition": str(apart),
                "User-Agent": self._user_agent,
                **OVERRIDE_DELETED,
            }
            requests.append((node, cpart, headers))
        return await self._delete_everywhere(f"/{account}/{container}", requests, counts)

    async def _delete_everywhere(
        self,
        path: str,
        requests: list[tuple[RingDevice, int, dict[str, str]]],
        counts: ReapCounts,
    ) -> bool:
        """DELETE ``path`` on every replica at once; True if each took it (or had none)."""
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._delete_one(path, node, part, headers))
                for node, part, headers in requests
            ]
        failed = sum(1 for task in tasks if not task.result())
        counts.failures += failed
        return not failed

    async def _delete_one(
        self, path: str, node: RingDevice, part: int, headers: dict[str, str]
    ) -> bool:
        try:
            response = await self._client.request(
                "DELETE", node.ip, node.port, node.device, part, path, headers
            )
        except BackendUnavailable as exc:
            self._log.info("DELETE %s not sent: %s", path, exc)
            return False
        if _done(response.status):
            return True
        self._log.info(
            "DELETE %s refused: %d from %s/%s", path, response.status, _host(node), node.device
        )
        return False
