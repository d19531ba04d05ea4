"""Three request headers by which the proxy serves a large object (a manifest) through the
object server, as Swift's object server (swift/obj/server.py, swift/common/request_helpers.py):

``X-Backend-Etag-Is-At: <name>[,<name>...]`` (GET, HEAD; and a PUT's If-None-Match)
    If-Match and If-None-Match are evaluated against the value of the first of those stored
    headers the object has (a manifest's ``X-Object-Sysmeta-...-Etag``: the ETag its client
    sees), else against the body's own ETag.  Swift's ``resolve_etag_is_at_header``; Swift
    does not apply it to a PUT's If-None-Match, we do (a client's conditional PUT of a
    manifest names the ETag it was shown).

``X-Backend-Ignore-Range-If-Metadata-Present: <name>[,<name>...]`` (GET)
    If the object has any of those stored headers, the Range is ignored: the whole body, 200
    (never 206 or 416), so the proxy reads the whole manifest whatever range its client asked
    for.  Swift's ``resolve_ignore_range_header``; Swift answers nothing more (the proxy tells
    a manifest by its metadata, which the response carries anyway).

``X-Object-Sysmeta-Container-Update-Override-{Etag,Size,Content-Type}`` (PUT)
    The listing row carries these instead of the body's own ETag, size and content type, so
    a listing shows the whole object's.  Kept as sysmeta, which a POST keeps and cannot set
    (objectd/versions.py), so a POST's row repeats them, as Swift's POST does.
    ``X-Backend-Container-Update-Override-{Etag,Size}``, Swift's older form, is accepted too
    and kept under the sysmeta name (the sysmeta form wins if both are sent): Swift does not
    store it, but a row that reverts to the manifest's own size at the next POST is never
    wanted.  Only those three row fields (Swift takes any): the timestamps order rows, and an
    override of them would break the container's merge.

When none is sent: one header lookup for a GET or HEAD, two for a PUT, and for a listing row
three dict lookups in the stored headers (none if there are none).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from service.errors import BadRequest

from .http_headers import _is_clean_utf8  # the same test stored_headers() applies
from .metadata import ObjectMetadata

ETAG_IS_AT = "X-Backend-Etag-Is-At"
IGNORE_RANGE = "X-Backend-Ignore-Range-If-Metadata-Present"
BACKEND_OVERRIDE_PREFIX = "X-Backend-Container-Update-Override-"
SYSMETA_OVERRIDE_PREFIX = "X-Object-Sysmeta-Container-Update-Override-"
# The row fields an override may replace; only Etag and Size in the X-Backend form (Swift's
# EC use of it), to keep a PUT without them at two header lookups.
OVERRIDE_FIELDS = ("Etag", "Size", "Content-Type")
_BACKEND_FORM = tuple(
    (BACKEND_OVERRIDE_PREFIX + f, SYSMETA_OVERRIDE_PREFIX + f) for f in ("Etag", "Size")
)
# (stored name, row header): stored names are title-cased (stored_headers()), so an exact
# dict lookup finds them.
_ROW_OVERRIDES = tuple((SYSMETA_OVERRIDE_PREFIX + f, "X-" + f) for f in OVERRIDE_FIELDS)


def conditional_etag(headers: Mapping[str, str], meta: ObjectMetadata) -> str:
    """The ETag that If-Match and If-None-Match are evaluated against."""
    names = headers.get(ETAG_IS_AT)
    if names is None:
        return meta.etag
    found = _first_stored(meta.user_meta, names)
    return meta.etag if found is None else found


def ignores_range(headers: Mapping[str, str], meta: ObjectMetadata) -> bool:
    """Whether a GET's Range is to be ignored (call it only when the GET has one)."""
    names = headers.get(IGNORE_RANGE)
    if names is None or not meta.user_meta:
        return False
    return _first_stored(meta.user_meta, names) is not None


def keep_put_overrides(headers: Mapping[str, str], stored: dict[str, str]) -> None:
    """Add a PUT's X-Backend-Container-Update-Override-* to ``stored`` (its stored headers)
    under the sysmeta name, and check every override (400: the row would be refused by every
    container replica, and kept as an async_pending for ever)."""
    for backend_name, sysmeta_name in _BACKEND_FORM:
        value = headers.get(backend_name)
        if value is not None:
            if not _is_clean_utf8(value):
                raise BadRequest(f"Invalid {backend_name}")
            stored.setdefault(sysmeta_name, value)
    if not stored:
        return
    size = stored.get(SYSMETA_OVERRIDE_PREFIX + "Size")
    if size is not None and not (size.isascii() and size.isdigit()):
        raise BadRequest(f"Invalid container update override size: {size!r}")


def apply_row_overrides(row: dict[str, str], user_meta: Mapping[str, str]) -> None:
    """Replace a listing row's X-Etag, X-Size, X-Content-Type by the object's overrides."""
    if not user_meta:
        return
    for stored_name, row_name in _ROW_OVERRIDES:
        value = user_meta.get(stored_name)
        if value is not None:
            row[row_name] = value


def _first_stored(user_meta: Mapping[str, str], names: str) -> str | None:
    """The value of the first of the comma-separated ``names`` stored (in any case), or None."""
    if not user_meta:
        return None
    for name in _stored_names(names):
        value = user_meta.get(name)
        if value is not None:
            return value
    return None


@functools.lru_cache(maxsize=64)
def _stored_names(names: str) -> tuple[str, ...]:
    """A comma-separated list of header names, each spelled as stored (title-cased, as
    stored_headers() does), so that any case matches with a dict lookup.

    Cached: the proxy sends the same one or two lists with every GET and HEAD (clients
    cannot send X-Backend-* headers), and parsing them cost more than the lookups.
    """
    return tuple(name.strip().title() for name in names.split(",") if name.strip())
