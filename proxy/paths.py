"""Client request paths: ``/<version>/<account>[/<container>[/<object>]]``, checked.

Swift's rules (swift/proxy/server.py ``handle_request``/``get_controller`` and
swift/common/utils ``split_path``), kept:

- The path is percent-decoded first and split second, so ``%2F`` is a ``/``; the object takes
  the rest of the path, every ``/`` in it included (``//`` too).  Bytes that are not UTF-8, and
  NUL, are 412 ``Invalid UTF8 or contains NULL``.
- The version must be one of ``VALID_API_VERSIONS`` (400 ``Invalid path``).
- An empty segment before the last (``/v1/a//o``, ``/v1//c``) is 404, as Swift's
  ``split_path`` refuses it; a path with no account (``/v1``, ``/v1/``) is 412 ``Bad URL``.
  A trailing ``/`` after an account or a container is ignored (``/v1/a/`` is the account,
  ``/v1/a/c/`` the container).
- Names count UTF-8 bytes.  One difference: a name over its limit is a 400 for every method
  here, where Swift checks the account's on account requests, the container's on container
  PUT and the object's on object PUT only (a longer name cannot exist, so a GET of one would
  be a 404 there).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from aiohttp import web

from .constraints import (
    MAX_ACCOUNT_NAME_LENGTH,
    MAX_CONTAINER_NAME_LENGTH,
    MAX_OBJECT_NAME_LENGTH,
    VALID_API_VERSIONS,
)

INVALID_UTF8 = "Invalid UTF8 or contains NULL"


@dataclass(frozen=True)
class SwiftPath:
    account: str
    container: str | None = None
    obj: str | None = None

    @property
    def kind(self) -> str:
        """``"account"``, ``"container"`` or ``"object"``: the resource the path names."""
        if self.obj is not None:
            return "object"
        return "container" if self.container is not None else "account"


def parse_swift_path(raw_path: str) -> SwiftPath:
    """The names in ``raw_path`` (``request.raw_path``: still percent-encoded; a query is
    ignored).  Raises ``web.HTTPPreconditionFailed``, ``web.HTTPBadRequest`` or
    ``web.HTTPNotFound`` with a text body, as the module docstring says."""
    encoded = raw_path.partition("?")[0]
    try:
        path = unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPPreconditionFailed(text=INVALID_UTF8) from None
    if "\x00" in path:
        raise web.HTTPPreconditionFailed(text=INVALID_UTF8)
    parts = path.split("/", 4)
    segments = parts[1:]
    # Swift's split_path: no empty segment but the last ("/v1/a//o", "/v1//c": 404).
    if parts[0] or not segments or not all(segments[:-1]) or not segments[0]:
        raise web.HTTPNotFound(text="Not Found")
    version, names = segments[0], segments[1:]
    account = names[0] if names else ""
    if account and version not in VALID_API_VERSIONS:
        raise web.HTTPBadRequest(text="Invalid path")
    if not account:  # "/v1", "/v1/": no controller takes it
        raise web.HTTPPreconditionFailed(text="Bad URL")
    container = names[1] if len(names) > 1 and names[1] else None
    obj = names[2] if len(names) > 2 and names[2] else None
    _check_length("Account", account, MAX_ACCOUNT_NAME_LENGTH)
    if container is not None:
        _check_length("Container", container, MAX_CONTAINER_NAME_LENGTH)
    if obj is not None:
        _check_length("Object", obj, MAX_OBJECT_NAME_LENGTH)
    return SwiftPath(account, container, obj)


def _check_length(kind: str, name: str, limit: int) -> None:
    size = len(name.encode("utf-8"))
    if size > limit:
        raise web.HTTPBadRequest(text=f"{kind} name length of {size} longer than {limit}")
