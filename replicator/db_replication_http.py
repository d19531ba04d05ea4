"""One REPLICATE request of a database push to a peer's server: a JSON body, a JSON object
back (the container server's containerd_/replication_http.py, the account server's
accountd/replication_http.py); anything else is a ``PeerFailed``."""

from __future__ import annotations

import json
from typing import Any

from ring.device import Device as RingDevice
from service.backend_client import BackendClient

from .db_replication import PeerFailed


class ReplicateClient:
    def __init__(self, client: BackendClient, node: RingDevice, partition: int, path: str):
        self._client = client
        self._node = node
        self._partition = partition
        self._path = path  # "/account" or "/account/container"

    async def call(self, body: dict[str, Any]) -> dict[str, Any]:
        node = self._node
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            response = await self._client.request(
                "REPLICATE",
                node.replication_ip,
                node.replication_port,
                node.device,
                self._partition,
                self._path,
                {"Content-Type": "application/json"},
                data,
            )
        except Exception as exc:  # BackendUnavailable and protocol errors alike
            raise PeerFailed(f"{self.where()}: {exc}") from exc
        if response.status != 200:
            raise PeerFailed(f"{self.where()}: {response.status} {response.body[:200]!r}")
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PeerFailed(f"{self.where()}: the answer is not a JSON object")
        return answer

    def where(self) -> str:
        node = self._node
        return (
            f"REPLICATE {node.replication_ip}:{node.replication_port}/{node.device}/"
            f"{self._partition}{self._path}"
        )
