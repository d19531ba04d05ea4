"""Which version wins: the rules PUT, POST and DELETE apply to the stored version.

Pure functions over ObjectMetadata, shared by the LMDB engine (inside its write transaction)
and the in-memory twin, so both decide conflicts the same way.  Newest timestamp wins; an
equal timestamp loses (409), as in Swift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from service.timestamp import Timestamp

from .errors import ObjectConflict, ObjectNotFound
from .metadata import ObjectMetadata

# Stored headers that belong to the data, not to the metadata a POST replaces (Swift's
# DATAFILE_SYSTEM_META and object sysmeta): a POST keeps them and cannot set them.
_DATAFILE_META_PREFIX = "x-object-sysmeta-"
_DATAFILE_META_NAMES = frozenset({"x-static-large-object"})
# Kept in their own fields; a stored header of the same name would be a second truth.
_RESERVED = frozenset(
    {"x-delete-at", "content-type", "content-length", "etag", "x-timestamp", "name"}
)


def is_datafile_meta(header: str) -> bool:
    lower = header.lower()
    return lower.startswith(_DATAFILE_META_PREFIX) or lower in _DATAFILE_META_NAMES


def check_user_meta(user_meta: Mapping[str, str] | None) -> dict[str, str]:
    checked = dict(user_meta or {})
    for key, value in checked.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"stored header {key!r}: names and values must be str")
        if key.lower() in _RESERVED:
            raise ValueError(f"{key} is kept in its own field, not in user_meta")
    return checked


def check_delete_at(delete_at: int | None) -> int | None:
    if delete_at is not None and (isinstance(delete_at, bool) or not isinstance(delete_at, int)):
        raise TypeError(f"delete_at must be an int or None, not {delete_at!r}")
    return delete_at


def is_expired(meta: ObjectMetadata, now: float) -> bool:
    """Swift's rule: expired once X-Delete-At <= now."""
    return meta.delete_at is not None and meta.delete_at <= now


def is_reclaimable(meta: ObjectMetadata, now: float, reclaim_age_s: float) -> bool:
    """A tombstone older than reclaim_age has done its job (every replica has seen it)."""
    return meta.deleted and meta.timestamp.seconds < now - reclaim_age_s


def live(current: ObjectMetadata | None, now: float) -> ObjectMetadata:
    """The current version if it is live; ObjectNotFound (with its timestamp) if not."""
    if current is None:
        raise ObjectNotFound()
    if current.deleted:
        raise ObjectNotFound("object deleted", timestamp=current.timestamp, metadata=current)
    if is_expired(current, now):
        raise ObjectNotFound("object expired", timestamp=current.timestamp, metadata=current)
    return current


def check_newer(current: ObjectMetadata | None, timestamp: Timestamp) -> None:
    """A PUT or DELETE at ``timestamp`` must be newer than the data or tombstone stored."""
    if current is not None and current.timestamp >= timestamp:
        raise ObjectConflict(
            f"{timestamp.internal} is not newer than the stored {current.timestamp.internal}",
            timestamp=current.timestamp,
        )


def check_put(current: ObjectMetadata | None, new: ObjectMetadata) -> ObjectMetadata:
    """The version a PUT stores, given what is stored now.

    A POST newer than this PUT (it reached this replica first) still applies to the new data,
    as Swift's .meta does over an older .data: that is what a replica that saw them in order
    holds, so replicas converge whatever order they see them in.
    """
    check_newer(current, new.timestamp)
    if current is None or current.deleted:
        return new
    merged = new
    if current.meta_timestamp > new.timestamp:
        post_meta = {k: v for k, v in current.user_meta.items() if not is_datafile_meta(k)}
        data_meta = {k: v for k, v in new.user_meta.items() if is_datafile_meta(k)}
        merged = replace(
            merged,
            user_meta=post_meta | data_meta,
            delete_at=current.delete_at,
            meta_timestamp=current.meta_timestamp,
        )
    if current.ctype_timestamp > new.timestamp:
        merged = replace(
            merged,
            content_type=current.content_type,
            content_type_timestamp=current.ctype_timestamp,
        )
    return merged


def check_post(
    current: ObjectMetadata | None,
    timestamp: Timestamp,
    content_type: str | None,
    user_meta: dict[str, str],
    delete_at: int | None,
    now: float,
) -> ObjectMetadata:
    """Swift's fast-POST: the POST's headers replace the stored ones; the data stays."""
    meta = live(current, now)
    if timestamp <= meta.meta_timestamp:
        raise ObjectConflict(
            f"{timestamp.internal} is not newer than the stored metadata "
            f"{meta.meta_timestamp.internal}",
            timestamp=meta.meta_timestamp,
        )
    kept = {k: v for k, v in meta.user_meta.items() if is_datafile_meta(k)}
    given = {k: v for k, v in user_meta.items() if not is_datafile_meta(k)}
    if content_type is not None:
        meta = replace(meta, content_type=content_type, content_type_timestamp=timestamp)
    return replace(meta, meta_timestamp=timestamp, user_meta=kept | given, delete_at=delete_at)


def check_delete(
    current: ObjectMetadata | None, name: str, timestamp: Timestamp, now: float
) -> tuple[ObjectMetadata, ObjectMetadata | None]:
    """The tombstone a DELETE stores, and the live version it replaces (None: a 404)."""
    check_newer(current, timestamp)
    replaced = None
    if current is not None and not current.deleted and not is_expired(current, now):
        replaced = current
    return ObjectMetadata.tombstone(name, timestamp), replaced
