"""The typed keys of the account server's aiohttp application (accountd/server.py)."""

from __future__ import annotations

from aiohttp import web

from service.config import AccountServerConfig

from .broker_base import AccountBrokerBase

# The LMDB AccountBroker, or its in-memory twin in fast tests.
BROKER = web.AppKey("account_broker", AccountBrokerBase)
CONFIG = web.AppKey("account_server_config", AccountServerConfig)
