"""The two ends of a container push (replicator/db_replication.py): ``BrokerSource`` reads one
container of a local device through the container broker; ``ContainerPeer`` is a primary's
container server, over REPLICATE (containerd_/replication_http.py).
"""

from __future__ import annotations

from typing import Any

from containerd_.broker_base import ContainerBrokerBase
from containerd_.replication import record_to_wire, row_to_wire

from .db_replication import PeerFailed
from .db_replication_http import ReplicateClient


class BrokerSource:
    def __init__(self, broker: ContainerBrokerBase, device: str, cid: bytes) -> None:
        self._broker = broker
        self._device = device
        self._cid = cid

    def record(self) -> tuple[dict[str, Any], int] | None:
        info, last = self._broker.replication_source(self._device, self._cid)
        return None if info is None else (record_to_wire(info), last)

    def changed(self, after_seq: int, limit: int) -> tuple[list[list[Any]], int]:
        rows, reached = self._broker.changed_rows(self._device, self._cid, after_seq, limit)
        return [row_to_wire(row) for row in rows], reached

    def page(self, after: str | None, limit: int) -> tuple[list[list[Any]], str | None]:
        rows = self._broker.rows_after(self._device, self._cid, after, limit)
        return [row_to_wire(row) for row in rows], rows[-1].name if rows else after


class ContainerPeer:
    def __init__(self, replicate: ReplicateClient) -> None:
        self._replicate = replicate

    async def sync(self, record: dict[str, Any], sender: str) -> int | None:
        answer = await self._replicate.call({"op": "sync", "sender": sender, "record": record})
        point = answer.get("point")
        if point is not None and (isinstance(point, bool) or not isinstance(point, int)):
            raise PeerFailed(f"{self._replicate.where()}: point {point!r} is not an integer")
        return point

    async def merge(self, rows: list[list[Any]], sender: str, point: int | None) -> None:
        await self._replicate.call({"op": "merge", "sender": sender, "rows": rows, "point": point})
