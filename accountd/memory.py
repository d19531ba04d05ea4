"""The account broker's in-memory twin: the same API and semantics (both are
``AccountBrokerBase``), its store service/db_broker_memory.py's over account infos and
container rows.

Tests take a device away with ``offline_devices`` (DeviceUnavailable) or fill it with
``full_devices`` (DiskFull on writes).
"""

from __future__ import annotations

from dataclasses import replace

from service.db_broker_memory import MemoryDbBroker, MemoryRowsStore

from .broker_base import AccountBrokerBase, AccountStore
from .info import AccountInfo, Totals
from .rows import ContainerRow


class _MemoryStore(MemoryRowsStore[AccountInfo, ContainerRow, Totals]):
    no_totals = (0, 0, 0)

    def with_totals(self, info: AccountInfo, totals: Totals) -> AccountInfo:
        containers, objects, used = totals
        return replace(info, container_count=containers, object_count=objects, bytes_used=used)

    def account_ids(self, after: bytes, limit: int) -> list[bytes]:
        return self.scope_ids(after, limit)


class MemoryAccountBroker(MemoryDbBroker[AccountStore], AccountBrokerBase):
    store_type = _MemoryStore
