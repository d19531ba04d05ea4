"""The account broker: every account of a device in one LMDB environment.

``<devices_root>/<device>/accounts.lmdb`` holds four tables, keyed by the account id (the
16-byte ``hash_path(secret, account)``), read and written as service/db_broker_lmdb.py says:

- ``accounts``: id → the info record (name, timestamps, metadata; ``info.py``);
- ``totals``: id → container count, object count and bytes used over the live containers;
- ``containers``: id | name → the live container row (``rows.py``), in byte order of the names;
- ``tombstones``: the same for deleted container rows, kept apart so listings never walk them.
"""

from __future__ import annotations

from service.db_broker_lmdb import LmdbDbBroker, LmdbRowsStore

from . import info, rows
from .broker_base import AccountBrokerBase, AccountStore
from .info import AccountInfo, Totals
from .listing_views import decode_stored
from .rows import ContainerRow

TABLES = ("accounts", "totals", "containers", "tombstones")


class _LmdbStore(LmdbRowsStore[AccountInfo, ContainerRow, Totals]):
    info_table, rows_table = TABLES[0], TABLES[2]
    no_totals = (0, 0, 0)
    decode_record = staticmethod(info.decode_record)
    encode_record = staticmethod(info.encode_record)
    decode_totals = staticmethod(info.decode_totals)
    encode_totals = staticmethod(info.encode_totals)
    decode_row = staticmethod(decode_stored)
    encode_row = staticmethod(rows.encode)

    def account_ids(self, after: bytes, limit: int) -> list[bytes]:
        return self.scope_ids(after, limit)


class AccountBroker(LmdbDbBroker[AccountStore], AccountBrokerBase):
    file_name = "accounts.lmdb"
    tables = TABLES
    store_type = _LmdbStore
