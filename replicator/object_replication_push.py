"""The sending end of the replication push (the wire: objectd/replication_wire.py).

``Pusher.push(node, device, partition, versions)`` brings one remote replica up to date with
the local versions of some suffixes: a missing check (``MISSING_CHECK_BATCH`` versions per
request) says which it wants, then one streamed updates request carries them all — PUTs with
their bodies, DELETEs (tombstones), POSTs (metadata only).  Bodies are read through
``engine.open_version`` (pinned, verified block by block) and written to the connection as
they are read, waiting for the socket to drain past ``UPLOAD_BUFFER_BYTES``: memory per push
is bounded by one block plus that buffer.  ``bytes_per_s`` throttles the bodies.

A version replaced since it was listed is sent as it is now (the newer one); one gone since
(deleted, expired, quarantined) is skipped: the next pass sees what replaced it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from objectd import replication_wire as wire
from objectd.engine import ObjectEngine
from objectd.errors import ObjectNotFound
from objectd.metadata import ObjectMetadata
from ring.device import Device as RingDevice
from service.backend_client import BackendClient, BackendUnavailable, backend_target
from service.http11 import ConnectionPool
from service.http11_upload import Upload
from service.methods import wire_method

from .throttle import Throttle

log = logging.getLogger("torus.object-replicator")
MISSING_CHECK_BATCH = 1000  # versions offered per missing-check request
UPLOAD_BUFFER_BYTES = 4 << 20  # unsent bytes the connection may hold before we wait


@dataclass
class PushResult:
    ok: bool = True  # every wanted version landed (or the replica had newer)
    objects: int = 0  # updates sent
    bytes: int = 0  # body bytes sent
    applied: int = 0
    ignored: int = 0


class Pusher:
    def __init__(
        self,
        engine: ObjectEngine,
        client: BackendClient,
        pool: ConnectionPool,
        byte_throttle: Throttle,
        *,
        user_agent: str = "object-replicator",
    ) -> None:
        self._engine = engine
        self._client = client
        self._pool = pool
        self._throttle = byte_throttle
        self._headers = {"User-Agent": user_agent}

    async def push(
        self, node: RingDevice, device: str, partition: int, versions: list[ObjectMetadata]
    ) -> PushResult:
        """Make ``node`` hold at least ``versions`` (the local ones of some suffixes)."""
        result = PushResult()
        by_name = {meta.name: meta for meta in versions}
        wants: list[wire.Want] = []
        for start in range(0, len(versions), MISSING_CHECK_BATCH):
            batch = versions[start : start + MISSING_CHECK_BATCH]
            found = await self._missing_check(node, partition, batch)
            if found is None:
                result.ok = False
                return result
            wants += found
        wants = [w for w in wants if w.name in by_name]  # never send what was not offered
        if wants:
            await self._send_updates(node, device, partition, wants, by_name, result)
        return result

    async def _missing_check(
        self, node: RingDevice, partition: int, batch: list[ObjectMetadata]
    ) -> list[wire.Want] | None:
        body = wire.encode_offers([wire.Offer.of(meta) for meta in batch])
        try:
            response = await self._client.request(
                "SSYNC",
                node.replication_ip,
                node.replication_port,
                node.device,
                partition,
                "",
                self._headers,
                body,
            )
        except BackendUnavailable as exc:
            log.warning("missing check to %s failed: %s", _where(node, partition), exc)
            return None
        if response.status != 200:
            log.warning(
                "missing check to %s: %d %s",
                _where(node, partition),
                response.status,
                response.body[:200],
            )
            return None
        try:
            return wire.decode_wants(response.body)
        except wire.WireError as exc:
            log.warning("missing check to %s: %s", _where(node, partition), exc)
            return None

    async def _send_updates(
        self,
        node: RingDevice,
        device: str,
        partition: int,
        wants: list[wire.Want],
        by_name: dict[str, ObjectMetadata],
        result: PushResult,
    ) -> None:
        method, headers = wire_method("SSYNC", self._headers)
        target = backend_target(node.device, partition, "")
        timeout_s = self._client.node_timeout_s
        try:
            upload = await self._pool.open_upload(
                node.replication_ip,
                node.replication_port,
                method,
                target,
                headers,
                None,  # chunked: the stream's length is known only at its end
                conn_timeout_s=self._client.conn_timeout_s,
                continue_timeout_s=timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("updates to %s failed: %s", _where(node, partition), exc)
            result.ok = False
            return
        if upload.early is not None:
            log.warning("updates to %s refused: %d", _where(node, partition), upload.early.status)
            result.ok = False
            return
        upload.set_buffer_limit(UPLOAD_BUFFER_BYTES)
        try:
            upload.write([wire.UPDATES_LINE])
            for want in wants:
                if upload.failed:
                    break
                await self._send_one(upload, device, partition, want, by_name[want.name], result)
            if not upload.failed:
                upload.write([wire.END_LINE])
            response = await upload.finish(timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            upload.close()
            log.warning("updates to %s failed: %s", _where(node, partition), exc)
            result.ok = False
            return
        except BaseException:
            upload.close()  # the receiver sees a cut stream: the updates before it stand
            raise
        if response.status != 200:
            log.warning(
                "updates to %s: %d %s",
                _where(node, partition),
                response.status,
                response.body[:200],
            )
            result.ok = False
            return
        try:
            answer = wire.UpdatesResult.decode(response.body)
        except wire.WireError as exc:
            log.warning("updates to %s: %s", _where(node, partition), exc)
            result.ok = False
            return
        result.applied += answer.applied
        result.ignored += answer.ignored

    async def _send_one(
        self,
        upload: Upload,
        device: str,
        partition: int,
        want: wire.Want,
        meta: ObjectMetadata,
        result: PushResult,
    ) -> None:
        if meta.deleted:
            upload.write([wire.encode_update("DELETE", meta)])
            result.objects += 1
            return
        if not want.data:
            upload.write([wire.encode_update("POST", meta)])
            result.objects += 1
            return
        account, container, obj = meta.name[1:].split("/", 2)
        try:
            opened = await self._engine.open_version(device, partition, account, container, obj)
        except ObjectNotFound:
            return  # deleted, expired or quarantined since it was listed: next pass
        with opened:
            upload.write([wire.encode_update("PUT", opened.meta)])
            try:
                async for chunk in opened.read():
                    await self._throttle.wait(len(chunk))
                    upload.write([chunk])
                    result.bytes += len(chunk)
                    if upload.must_drain:
                        await upload.drain(self._client.node_timeout_s)
            except ObjectNotFound as exc:  # quarantined while read: the frame cannot end
                log.warning("%s: %s; the push to this replica is cut", meta.name, exc)
                upload.close()  # the receiver keeps what it applied before this frame
                return
        result.objects += 1


def _where(node: RingDevice, partition: int) -> str:
    return f"{node.replication_ip}:{node.replication_port}/{node.device}/{partition}"
