"""Where a version lives: index keys, suffixes, and data file paths.

Index key: ``partition (u32 BE) | suffix (u16 BE) | name_hash (16 B) | ~raw (u64 BE) |
~offset (u64 BE)``.  The complemented timestamp sorts the newest version of a name first, so
one ``set_range`` on ``partition | suffix | name_hash`` finds it; a partition or a suffix is a
contiguous key range.  The suffix is the name hash's last 12 bits: Swift's last three hex
digits of the hash, which name the suffix directory.
"""

from __future__ import annotations

import os
import struct

from ring.placement import hash_path
from service.timestamp import Timestamp

_U64 = (1 << 64) - 1
MAX_PARTITION = (1 << 32) - 1
SUFFIX_COUNT = 1 << 12
_INDEX_KEY = struct.Struct(">IH16sQQ")
_OBJECT_PREFIX = struct.Struct(">IH16s")
_SUFFIX_PREFIX = struct.Struct(">IH")
_PARTITION_PREFIX = struct.Struct(">I")


def object_name(account: str, container: str, obj: str) -> str:
    return f"/{account}/{container}/{obj}"


def name_hash(secret: bytes, name: str) -> bytes:
    """The placement digest of "/account/container/object" (the object may contain "/")."""
    account, container, obj = name[1:].split("/", 2)
    return hash_path(secret, account, container, obj)


def suffix_of(digest: bytes) -> int:
    return int.from_bytes(digest[-2:], "big") & (SUFFIX_COUNT - 1)


def suffix_hex(suffix: int) -> str:
    return f"{suffix:03x}"


def parse_suffix(text: str) -> int:
    if len(text) != 3 or text.strip("0123456789abcdef"):
        raise ValueError(f"suffix {text!r} is not three lower-case hex digits")
    return int(text, 16)


def check_partition(partition: int) -> int:
    if isinstance(partition, bool) or not isinstance(partition, int):
        raise TypeError(f"partition must be an int, not {type(partition).__name__}")
    if not 0 <= partition <= MAX_PARTITION:
        raise ValueError(f"partition {partition} is out of range")
    return partition


def index_key(partition: int, digest: bytes, timestamp: Timestamp) -> bytes:
    return _INDEX_KEY.pack(
        partition,
        suffix_of(digest),
        digest,
        ~timestamp.raw & _U64,
        ~timestamp.offset & _U64,
    )


def key_timestamp(key: bytes) -> Timestamp:
    _part, _suffix, _digest, raw, offset = _INDEX_KEY.unpack(key)
    return Timestamp(~raw & _U64, ~offset & _U64)


def key_name_hash(key: bytes) -> bytes:
    return key[6:22]


def key_partition(key: bytes) -> int:
    return _PARTITION_PREFIX.unpack_from(key)[0]


def key_suffix(key: bytes) -> int:
    return _SUFFIX_PREFIX.unpack_from(key)[1]


def object_prefix(partition: int, digest: bytes) -> bytes:
    return _OBJECT_PREFIX.pack(partition, suffix_of(digest), digest)


def suffix_prefix(partition: int, suffix: int) -> bytes:
    """Also the key of the suffix's cached hash."""
    return _SUFFIX_PREFIX.pack(partition, suffix)


def partition_prefix(partition: int) -> bytes:
    return _PARTITION_PREFIX.pack(partition)


def hash_dir(device_path: str, partition: int, digest: bytes) -> str:
    """``<device>/objects/<partition>/<suffix>/<hash hex>``, as Swift lays it out."""
    return os.path.join(
        device_path, "objects", str(partition), suffix_hex(suffix_of(digest)), digest.hex()
    )


def data_file_name(timestamp: Timestamp) -> str:
    return f"{timestamp.internal}.data"
