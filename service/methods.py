"""Swift's backend-only methods (REPLICATE, SSYNC) on a wire that only knows standard ones.

aiohttp's server parses requests with llhttp, which refuses any method outside its fixed list
("Invalid method encountered"), and REPLICATE and SSYNC are not on it.  So between our own
nodes such a method travels as ``POST`` with ``X-HTTP-Method-Override: REPLICATE``:
``BackendClient`` spells it so by itself, and a server asks ``effective_method`` what it was
sent.  A parser that does take the method as is (aiohttp's pure-Python one) still works: the
name arrives unchanged.

Only these methods may be named in the header, and only on a POST: the override cannot turn
a POST into a DELETE.
"""

from __future__ import annotations

from collections.abc import Mapping

METHOD_OVERRIDE = "X-HTTP-Method-Override"
EXTENSION_METHODS = frozenset({"REPLICATE", "SSYNC"})


def wire_method(method: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """The method and headers to send for ``method`` (unchanged unless it is an extension)."""
    out = dict(headers or {})
    if method.upper() not in EXTENSION_METHODS:
        return method, out
    out[METHOD_OVERRIDE] = method.upper()
    return "POST", out


def effective_method(method: str, headers: Mapping[str, str]) -> str:
    """The method a request means: a POST may name an extension method in the override header.

    ``headers`` must be case-insensitive (aiohttp's are).
    """
    if method != "POST":
        return method
    override = headers.get(METHOD_OVERRIDE, "").strip().upper()
    return override if override in EXTENSION_METHODS else method
