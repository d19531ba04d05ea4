"""ObjectMetadata: one stored version of an object, and its on-disk encoding.

Format (the value of the ``index`` table; this docstring is its spec): UTF-8 JSON, compact,
keys sorted, with ``"v": 1``.  Fields::

    v          1
    name       "/account/container/object"
    ts         data timestamp, internal form (a tombstone's is its DELETE's)
    meta_ts    timestamp of the last POST (== ts when none)
    ctype_ts   timestamp of the content type (a POST may change it)
    ctype      content type
    etag       MD5 hex of the body ("" for a tombstone)
    size       body length in bytes
    meta       stored headers: X-Object-Meta-*, X-Object-Sysmeta-* and Swift's allowed
               headers (Content-Encoding, Content-Disposition, ...); names as given
    delete_at  X-Delete-At as an int, or null
    deleted    true for a tombstone
    body       "inline" (in the ``bodies`` table), "file" (a data file) or null (tombstone)
    block      bytes per checksum block
    blocks     xxh3-64 of each block, 16 hex digits each

Decoders for older versions stay here when the format changes; an unknown version is a
ValueError, never a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from service.timestamp import Timestamp

FORMAT_VERSION = 1
BodyLocation = Literal["inline", "file"]


@dataclass(frozen=True, slots=True)
class ObjectMetadata:
    name: str
    timestamp: Timestamp
    meta_timestamp: Timestamp
    content_type: str = ""
    etag: str = ""
    size_bytes: int = 0
    user_meta: dict[str, str] = field(default_factory=dict)
    delete_at: int | None = None
    deleted: bool = False
    body: BodyLocation | None = None
    block_size_bytes: int = 1 << 20
    block_hashes: tuple[int, ...] = ()
    content_type_timestamp: Timestamp | None = None  # None: the data timestamp
    # Where this version was read from; set by the engine, never encoded, so that
    # read(meta) finds the body.
    device: str | None = field(default=None, compare=False)
    partition: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # One spelling for "the content type is the data's own", so that decode(encode(m)) == m.
        if self.content_type_timestamp == self.timestamp:
            object.__setattr__(self, "content_type_timestamp", None)

    @property
    def ctype_timestamp(self) -> Timestamp:
        return self.content_type_timestamp or self.timestamp

    @classmethod
    def tombstone(cls, name: str, timestamp: Timestamp) -> ObjectMetadata:
        return cls(name=name, timestamp=timestamp, meta_timestamp=timestamp, deleted=True)


def encode(meta: ObjectMetadata) -> bytes:
    doc: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "name": meta.name,
        "ts": meta.timestamp.internal,
        "meta_ts": meta.meta_timestamp.internal,
        "ctype_ts": meta.ctype_timestamp.internal,
        "ctype": meta.content_type,
        "etag": meta.etag,
        "size": meta.size_bytes,
        "meta": meta.user_meta,
        "delete_at": meta.delete_at,
        "deleted": meta.deleted,
        "body": meta.body,
        "block": meta.block_size_bytes,
        "blocks": [f"{h:016x}" for h in meta.block_hashes],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def decode(data: bytes) -> ObjectMetadata:
    """The inverse of encode; ValueError for anything that is not a known version."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"object metadata is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != FORMAT_VERSION:
        version = doc.get("v") if isinstance(doc, dict) else None
        raise ValueError(f"unknown object metadata version {version!r}")
    try:
        return _decode_v1(doc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed object metadata: {exc!r}") from None


def _decode_v1(doc: dict[str, Any]) -> ObjectMetadata:
    body = doc["body"]
    if body not in ("inline", "file", None):
        raise ValueError(f"unknown body location {body!r}")
    delete_at = doc["delete_at"]
    if delete_at is not None and (type(delete_at) is not int):
        raise ValueError(f"delete_at {delete_at!r} is not an integer")
    user_meta = doc["meta"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in user_meta.items()):
        raise ValueError("stored headers must be strings")
    return ObjectMetadata(
        name=str(doc["name"]),
        timestamp=Timestamp.parse(doc["ts"]),
        meta_timestamp=Timestamp.parse(doc["meta_ts"]),
        content_type=str(doc["ctype"]),
        etag=str(doc["etag"]),
        size_bytes=int(doc["size"]),
        user_meta=dict(user_meta),
        delete_at=delete_at,
        deleted=bool(doc["deleted"]),
        body=body,
        block_size_bytes=int(doc["block"]),
        block_hashes=tuple(int(h, 16) for h in doc["blocks"]),
        content_type_timestamp=Timestamp.parse(doc["ctype_ts"]),
    )
