"""Container and account metadata as Swift keeps it: ``{name: (value, timestamp)}``.

Everything a container or account server stores from headers goes here (X-Container-Meta-*,
X-Container-Read/Write, sync keys, sysmeta), each key a register of its own: the newest
timestamp wins, a tie goes to the greater value, so merging is a max and converges in any
order.  An empty value is a deleted key; it stays, with its timestamp, so an older set cannot
bring it back (reclaiming such keys after reclaim_age is the replicator's job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.errors import BadInput
from service.names import MAX_META_COUNT, MAX_META_OVERALL_SIZE
from service.timestamp import Timestamp

Metadata = dict[str, tuple[str, Timestamp]]
_USER_META = ("x-account-meta-", "x-container-meta-")


def check_metadata(updates: Mapping[str, tuple[str, Timestamp]] | None) -> Metadata:
    """A checked copy of ``updates``; BadInput for a key or value that cannot be stored."""
    checked: Metadata = {}
    for key, pair in (updates or {}).items():
        if not isinstance(key, str) or not key:
            raise BadInput(f"metadata names must be non-empty strings, not {key!r}")
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise BadInput(f"metadata {key!r} must be a (value, Timestamp) pair")
        value, timestamp = pair
        if not isinstance(value, str) or not isinstance(timestamp, Timestamp):
            raise BadInput(f"metadata {key!r} must be a (str, Timestamp) pair, not {pair!r}")
        for text in (key, value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(f"metadata {key!r} is not valid UTF-8") from None
        checked[key] = (value, timestamp)
    return checked


def merge_metadata(current: Mapping[str, tuple[str, Timestamp]], updates: Metadata) -> Metadata:
    merged = dict(current)
    for key, (value, timestamp) in updates.items():
        old = merged.get(key)
        if old is None or (timestamp, value) > (old[1], old[0]):
            merged[key] = (value, timestamp)
    return merged


def cleared_metadata(
    current: Mapping[str, tuple[str, Timestamp]], timestamp: Timestamp
) -> Metadata:
    """What a DELETE at ``timestamp`` leaves: every key older than it deleted (delete_db)."""
    return merge_metadata(current, {key: ("", timestamp) for key in current})


def check_metadata_limits(metadata: Mapping[str, tuple[str, Timestamp]]) -> None:
    """Swift's limits on the user metadata a container or account holds in all (its
    validate_metadata): BadInput, with Swift's message, when a PUT or POST would break them.
    """
    count = size = 0
    for key, (value, _ts) in metadata.items():
        lowered = key.lower()
        prefix = next((p for p in _USER_META if lowered.startswith(p)), None)
        if value and prefix is not None:
            count += 1
            size += len(key[len(prefix) :].encode("utf-8")) + len(value.encode("utf-8"))
    if count > MAX_META_COUNT:
        raise BadInput(f"Too many metadata items; max {MAX_META_COUNT}")
    if size > MAX_META_OVERALL_SIZE:
        raise BadInput(f"Total metadata too large; max {MAX_META_OVERALL_SIZE}")


def visible_metadata(metadata: Mapping[str, tuple[str, Timestamp]]) -> dict[str, str]:
    """The keys a HEAD or GET shows: those not deleted."""
    return {key: value for key, (value, _ts) in metadata.items() if value}


def metadata_to_json(metadata: Mapping[str, tuple[str, Timestamp]]) -> dict[str, list[str]]:
    return {key: [value, timestamp.internal] for key, (value, timestamp) in metadata.items()}


def metadata_from_json(data: Mapping[str, Any]) -> Metadata:
    return {key: (value, Timestamp.parse(ts)) for key, (value, ts) in data.items()}
