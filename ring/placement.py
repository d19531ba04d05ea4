"""Where a name lives: the keyed placement hash and the partition number.

A name ``/account[/container[/object]]`` is hashed with xxh3_128 over the
cluster's secret followed by the path; the partition is the top
``part_power`` bits of the 128-bit digest.  The secret lives in the cluster
config: without it nobody can aim many names at one partition.
"""

from __future__ import annotations

import xxhash

HASH_BITS = 128
MAX_PART_POWER = 32


def encode_path(
    account: str | bytes, container: str | bytes | None = None, obj: str | bytes | None = None
) -> bytes:
    """The UTF-8 path ``/account[/container[/object]]`` that placement hashes.

    Raises ``ValueError`` for an empty account, an object without a
    container, or a name that is not valid UTF-8.
    """
    parts = [account]
    if container is not None:
        parts.append(container)
    if obj is not None:
        if container is None:
            raise ValueError("an object name needs a container name")
        parts.append(obj)
    encoded = []
    for part in parts:
        if isinstance(part, bytes):
            try:
                part.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"name {part!r} is not valid UTF-8") from None
            raw = part
        elif isinstance(part, str):
            try:
                raw = part.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"name {part!r} cannot be encoded as UTF-8") from None
        else:
            raise TypeError(f"names must be str or bytes, not {type(part).__name__}")
        if not raw:
            raise ValueError("account, container and object names must not be empty")
        encoded.append(raw)
    return b"/" + b"/".join(encoded)


def hash_path(
    secret: bytes,
    account: str | bytes,
    container: str | bytes | None = None,
    obj: str | bytes | None = None,
) -> bytes:
    """The 16-byte placement digest of a name (also the object server's name hash)."""
    return xxhash.xxh3_128_digest(secret + encode_path(account, container, obj))


def partition_of_path(secret: bytes, path: bytes, part_power: int) -> int:
    """The partition of an already encoded path: the digest's top bits."""
    return xxhash.xxh3_128_intdigest(secret + path) >> (HASH_BITS - part_power)


def check_part_power(part_power: int) -> int:
    if (
        isinstance(part_power, bool)
        or not isinstance(part_power, int)
        or not 0 <= part_power <= MAX_PART_POWER
    ):
        raise ValueError(
            f"part_power must be an integer in 0..{MAX_PART_POWER}, not {part_power!r}"
        )
    return part_power
