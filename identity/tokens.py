"""Self-contained tokens: whoever holds the secret validates them without asking anyone.

A token is ``<prefix><body>``: the prefix is tempauth's ``<reseller_prefix>tk`` (``AUTH_tk``),
so a proxy can tell its tokens from others' at a glance; the body is unpadded URL-safe base64
of ``version (1 byte) | nonce (12) | AES-256-GCM(payload) with its 16-byte tag``.  The key is
HKDF-SHA256 of the shared ``token_secret``; the version byte and the prefix are the AEAD's
associated data, so neither can be changed without the tag failing.  The payload is compact
JSON, ``{"a": account, "u": user, "g": [groups, sorted], "e": expires_at}``.  The format is
specified in docs/design/identity.md; ``encode_token``/``decode_token`` are the pure halves.

``TokenCodec.validate`` keeps a small LRU of tokens it has validated (token → Identity, until
the identity expires), so a proxy decrypts a token once, not once per request.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .users import RESELLER_ADMIN

if TYPE_CHECKING:
    from .config import IdentityConfig

VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_TOKEN_CHARS = 4096  # longer is not ours: refused before any decoding
CACHE_ENTRIES = 4096
_HKDF_INFO = b"torus identity token v1"


@dataclass(frozen=True)
class Identity:
    """Who a valid token speaks for.  Groups follow tempauth (identity/users.py)."""

    account: str  # "test"; the storage account is reseller_prefix + account ("AUTH_test")
    user: str  # "tester"
    groups: frozenset[str]  # {"test", "test:tester", "AUTH_test" (admins), ".reseller_admin"?}
    expires_at: float  # unix time

    @property
    def is_reseller_admin(self) -> bool:
        """Owner of every account of the reseller prefix (tempauth's ``.reseller_admin``)."""
        return RESELLER_ADMIN in self.groups

    def is_account_admin(self, storage_account: str) -> bool:
        """Owner of ``storage_account`` (``AUTH_test``): the user's entry listed ``.admin``."""
        return storage_account in self.groups


def derive_key(secret: str) -> bytes:
    """The 256-bit AES key for a ``token_secret``."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return hkdf.derive(secret.encode("utf-8"))


def encode_token(aead: AESGCM, prefix: str, nonce: bytes, identity: Identity) -> str:
    """The token for ``identity``; ``nonce`` must never repeat under one key."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    payload = {
        "a": identity.account,
        "u": identity.user,
        "g": sorted(identity.groups),
        "e": identity.expires_at,
    }
    plain = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header = bytes([VERSION])
    sealed = aead.encrypt(nonce, plain, header + prefix.encode("utf-8"))
    body = base64.urlsafe_b64encode(header + nonce + sealed).rstrip(b"=").decode("ascii")
    return prefix + body


def decode_token(aead: AESGCM, prefix: str, token: str) -> Identity | None:
    """The identity in ``token``, expired or not; None if malformed, tampered or not ours."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(prefix):
        return None
    body = token[len(prefix) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 1 + NONCE_BYTES + TAG_BYTES or raw[0] != VERSION:
        return None
    header, nonce, sealed = raw[:1], raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
    try:
        plain = aead.decrypt(nonce, sealed, header + prefix.encode("utf-8"))
    except InvalidTag:
        return None
    return _identity(plain)


def _identity(plain: bytes) -> Identity | None:
    """The payload as an Identity.  Authentic yet odd means another version's bug: refuse it."""
    try:
        payload = json.loads(plain)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    account, user = payload.get("a"), payload.get("u")
    groups, expires_at = payload.get("g"), payload.get("e")
    if not (isinstance(account, str) and isinstance(user, str) and isinstance(groups, list)):
        return None
    if not all(isinstance(group, str) for group in groups):
        return None
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        return None
    return Identity(account, user, frozenset(groups), float(expires_at))


class TokenCodec:
    """Issues and validates tokens under one secret; the proxy and identity share the secret."""

    def __init__(
        self,
        secret: str,
        ttl_s: float,
        *,
        prefix: str = "AUTH_tk",
        clock: Callable[[], float] = time.time,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        if not secret:
            raise ValueError("the token secret must not be empty")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        if cache_entries < 0:
            raise ValueError("cache_entries must be >= 0")
        self._aead = AESGCM(derive_key(secret))
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._clock = clock
        self._cache_entries = cache_entries
        self._cache: OrderedDict[str, Identity] = OrderedDict()

    @classmethod
    def from_config(
        cls, config: IdentityConfig, *, clock: Callable[[], float] = time.time
    ) -> TokenCodec:
        """The codec ``config`` describes: its secret, lifetime and ``<reseller_prefix>tk``."""
        return cls(
            config.token_secret,
            config.token_ttl_s,
            prefix=config.reseller_prefix + "tk",
            clock=clock,
        )

    def issue(self, account: str, user: str, groups: Iterable[str]) -> tuple[str, float]:
        """A new token and the unix time it expires at."""
        expires_at = self._clock() + self.ttl_s
        identity = Identity(account, user, frozenset(groups), expires_at)
        return encode_token(self._aead, self.prefix, os.urandom(NONCE_BYTES), identity), expires_at

    def validate(self, token: str) -> Identity | None:
        """Who ``token`` speaks for; None if malformed, tampered, under another key or expired."""
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > now:
                self._cache.move_to_end(token)
                return cached
            del self._cache[token]
            return None
        identity = decode_token(self._aead, self.prefix, token)
        if identity is None or identity.expires_at <= now:
            return None
        if self._cache_entries:
            self._cache[token] = identity
            if len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return identity

    def seconds_left(self, expires_at: float) -> int:
        """Whole seconds until ``expires_at`` (tempauth's ``X-Auth-Token-Expires``)."""
        return max(int(expires_at - self._clock()), 0)

    @property
    def cached(self) -> int:
        """How many validated tokens the cache holds now."""
        return len(self._cache)
