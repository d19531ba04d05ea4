"""The typed keys of the container server's aiohttp application (containerd_/server.py)."""

from __future__ import annotations

import random

from aiohttp import web

from service.config import ContainerServerConfig

from .broker_base import ContainerBrokerBase

# The LMDB ContainerBroker, or its in-memory twin in fast tests.
BROKER = web.AppKey("container_broker", ContainerBrokerBase)
CONFIG = web.AppKey("container_server_config", ContainerServerConfig)
# The process's random source (async_pending keys); a seeded one in tests.
RNG = web.AppKey("container_server_rng", random.Random)
