"""The typed keys of the object server's aiohttp application (objectd/server.py)."""

from __future__ import annotations

import asyncio
import random

from aiohttp import web

from service.config import ObjectServerConfig

from .engine import ObjectEngine
from .memory import MemoryObjectEngine
from .write_leases import WriteLeases

# The storage the handlers call: the LMDB engine, or its in-memory twin in fast tests.
Engine = ObjectEngine | MemoryObjectEngine

ENGINE = web.AppKey("object_engine", Engine)  # type: ignore[arg-type]
CONFIG = web.AppKey("object_server_config", ObjectServerConfig)
# The process's random source (multipart boundaries, async_pending keys); a seeded one in tests.
RNG = web.AppKey("object_server_rng", random.Random)
# Commits and container updates still running for a handler that was cancelled (a shutdown):
# the app waits for them before it closes the backend client and the engine.
FINISHING = web.AppKey("object_server_finishing", set[asyncio.Task])
# The names this process's conditional PUTs hold (objectd/write_leases.py).
WRITE_LEASES = web.AppKey("object_server_write_leases", WriteLeases)
