"""The standalone identity service (`torus serve identity`): v1 auth and a health check.

``build_app(config, cluster)`` is the process's composition root.  The proxy mounts the same
v1 routes on its own port (identity/v1.py), as Swift's SAIO serves tempauth from the proxy, so
this service is for clusters that want auth on its own host or port.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from service.config import ClusterConfig

from .config import IdentityConfig
from .tokens import TokenCodec
from .users import UserDirectory
from .v1 import add_v1_routes


def build_app(
    config: IdentityConfig,
    cluster: ClusterConfig,
    *,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The identity service.  ``cluster`` is unused today: users live in ``[identity]``."""
    directory = UserDirectory.from_config(config.users, reseller_prefix=config.reseller_prefix)
    app = web.Application()
    add_v1_routes(app, directory, TokenCodec.from_config(config, clock=clock), config)
    app.router.add_get("/healthcheck", _healthcheck)
    return app


async def _healthcheck(request: web.Request) -> web.Response:
    return web.Response(text="OK")
