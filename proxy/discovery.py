"""``GET /info``: what this cluster is and offers, in Swift's format (its InfoController and
``register_swift_info``), without authentication.

``{"swift": {...}, "<feature>": {...}, ...}``: under ``"swift"`` the version, the
constraints (proxy/constraints.py) and the proxy's settings clients look at; then one key
per feature the proxy really has, with that feature's settings — only features that are
here: a client (python-swiftclient, Swift's functional tests, rclone) reads a key as "this
works".  Today that is ``tempauth`` (without account ACLs).  A feature added to the proxy
adds its key to ``FEATURES``.

Differences from Swift: ``valid_api_versions`` is published (Swift hides it by default, in
``disallowed_sections``); there is no admin section (``swiftinfo_sig``) and no
``expose_info`` switch.  HEAD answers the headers of a GET; OPTIONS the methods allowed.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from aiohttp import web

from .constraints import CONSTRAINTS
from .context import PROXY, Proxy

ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")
# The one storage policy there is: replicas placed by the object ring.
POLICIES = [{"name": "Policy-0", "aliases": "Policy-0", "default": True}]
# Each feature the proxy has, with its /info settings.
FEATURES: dict[str, dict[str, Any]] = {
    "tempauth": {"account_acls": False},
}


def _version() -> str:
    try:
        return metadata.version("torus")
    except metadata.PackageNotFoundError:  # running from a tree that was never installed
        return "0"


def swift_info(proxy: Proxy) -> dict[str, Any]:
    """The /info document for this proxy."""
    swift: dict[str, Any] = {
        "version": _version(),
        "strict_cors_mode": True,
        "policies": POLICIES,
        "allow_account_management": True,
        "account_autocreate": proxy.config.allow_account_autocreate,
        "allow_open_expired": False,
        **CONSTRAINTS,
    }
    return {"swift": swift, **FEATURES}


async def info_response(request: web.Request) -> web.Response:
    """``/info``: GET and HEAD the document, OPTIONS the methods; 405 otherwise."""
    allow = ", ".join(ALLOWED_METHODS)
    if request.method == "OPTIONS":
        return web.Response(status=200, headers={"Allow": allow})
    if request.method not in ("GET", "HEAD"):
        return web.Response(status=405, text="Method Not Allowed", headers={"Allow": allow})
    headers = {}
    origin = request.headers.get("Origin")
    if origin:  # Swift answers any origin: /info is public
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = "x-trans-id"
    body = json.dumps(swift_info(request.app[PROXY])).encode("ascii")
    return web.Response(
        status=200,
        headers=headers,
        body=body,
        content_type="application/json",
        charset="utf-8",
    )
