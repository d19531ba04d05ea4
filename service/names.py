"""Backend request paths and Swift's constraints on names and metadata.

A backend path is ``/<device>/<partition>/<account>[/<container>[/<object>]]``, percent-encoded
on the wire.  It is decoded first and split second, as Swift does, so ``%2F`` in an object
name is a ``/`` of the object name; the object is everything after the container.

Lengths count UTF-8 bytes, as Swift's do.  aiohttp hands header values over as ``str``
decoded with ``surrogateescape``, so bytes that were not UTF-8 come back as lone surrogates;
``_utf8_len`` counts them as the single bytes they were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from service.errors import BadRequest, PreconditionFailed

# Swift's defaults (swift/common/constraints.py); the proxy publishes them in /info.
MAX_FILE_SIZE = 5_368_709_122
MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_HEADER_SIZE = 8192
MAX_REQUEST_LINE = 8192
MAX_HEADER_COUNT = MAX_META_COUNT + 36  # user metadata plus Swift's own and plain HTTP headers
MAX_OBJECT_NAME_LENGTH = 1024
MAX_ACCOUNT_NAME_LENGTH = 256
MAX_CONTAINER_NAME_LENGTH = 256
CONTAINER_LISTING_LIMIT = 10_000
ACCOUNT_LISTING_LIMIT = 10_000

# Partitions are stored as u32 in keys (docs/design/storage.md).
MAX_PARTITION = (1 << 32) - 1

# What Swift's check_drive accepts: the characters quote_plus leaves alone.
_DEVICE = re.compile(r"[A-Za-z0-9._~-]+")
_METADATA_TARGETS = frozenset({"account", "container", "object"})


@dataclass(frozen=True, slots=True)
class BackendPath:
    device: str
    partition: int
    account: str
    container: str | None = None
    obj: str | None = None


def parse_backend_path(raw_path: str, *, min_parts: int = 3, max_parts: int = 5) -> BackendPath:
    """Decode and check a backend path (pass ``request.raw_path``, still percent-encoded).

    ``min_parts``/``max_parts`` count device and partition too: an object server wants (5, 5),
    a container server (4, 5), an account server (3, 4).  Raises ``PreconditionFailed`` for
    names that are not UTF-8 or hold NUL (Swift answers 412), ``BadRequest`` for anything else.
    """
    if not 3 <= min_parts <= max_parts <= 5:
        raise ValueError(f"need 3 <= min_parts <= max_parts <= 5, got {min_parts}, {max_parts}")
    encoded = raw_path.partition("?")[0]
    try:
        path = unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise PreconditionFailed("Invalid UTF8 or contains NULL") from None
    if "\x00" in path:
        raise PreconditionFailed("Invalid UTF8 or contains NULL")
    # The object takes the rest of the path: object names may hold "/", even "//".
    parts = path.split("/", 5)
    if parts[0] or not min_parts <= len(parts) - 1 <= max_parts or "" in parts[1:]:
        raise BadRequest(f"Invalid path: {quote(path)}")
    device, partition, *names = parts[1:]
    return BackendPath(check_device(device), parse_partition(partition), *_check_names(names))


def check_device(device: str) -> str:
    """A device name safe to join under the devices root (no '/', no '..')."""
    if not _DEVICE.fullmatch(device) or device in (".", ".."):
        raise BadRequest(f"Invalid device: {quote(device)}")
    return device


def parse_partition(text: str) -> int:
    # Digits only: int() would also take "+1", " 1" and "1_0".
    if not text.isascii() or not text.isdigit() or int(text) > MAX_PARTITION:
        raise BadRequest(f"Invalid partition: {quote(text)}")
    return int(text)


def _check_names(names: list[str]) -> list[str]:
    limits = (
        ("Account", MAX_ACCOUNT_NAME_LENGTH),
        ("Container", MAX_CONTAINER_NAME_LENGTH),
        ("Object", MAX_OBJECT_NAME_LENGTH),
    )
    for name, (kind, limit) in zip(names, limits, strict=False):
        size = len(name.encode("utf-8"))
        if size > limit:
            raise BadRequest(f"{kind} name length of {size} longer than {limit}")
    return names


def check_metadata(headers: Mapping[str, str], target: str) -> None:
    """Swift's limits on user metadata (``X-<target>-Meta-*``) in one request's headers.

    Raises ``BadRequest`` with Swift's message for the first limit broken.  Limits on the
    metadata a container or account holds in total are the broker's to check.
    """
    if target not in _METADATA_TARGETS:
        raise ValueError(f"metadata target must be one of {sorted(_METADATA_TARGETS)}")
    prefix = f"x-{target}-meta-"
    count = 0
    total_bytes = 0
    for key, value in headers.items():
        if _utf8_len(value) > MAX_HEADER_SIZE:
            raise BadRequest(f"Header value too long: {key[:MAX_META_NAME_LENGTH]}")
        if not key.lower().startswith(prefix):
            continue
        name = key[len(prefix) :]
        if not name:
            raise BadRequest("Metadata name cannot be empty")
        # Objects keep metadata as bytes; accounts and containers list it back as JSON.
        bad_utf8 = not _is_clean_utf8(name) or not _is_clean_utf8(value)
        if target != "object" and bad_utf8:
            raise BadRequest("Metadata must be valid UTF-8")
        count += 1
        total_bytes += _utf8_len(name) + _utf8_len(value)
        if _utf8_len(name) > MAX_META_NAME_LENGTH:
            raise BadRequest(f"Metadata name too long: {prefix}{name}")
        if _utf8_len(value) > MAX_META_VALUE_LENGTH:
            raise BadRequest(f"Metadata value longer than {MAX_META_VALUE_LENGTH}: {prefix}{name}")
        if count > MAX_META_COUNT:
            raise BadRequest(f"Too many metadata items; max {MAX_META_COUNT}")
        if total_bytes > MAX_META_OVERALL_SIZE:
            raise BadRequest(f"Total metadata too large; max {MAX_META_OVERALL_SIZE}")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _is_clean_utf8(text: str) -> bool:
    """True if ``text`` came from valid UTF-8 and holds no NUL (Swift's check_utf8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
