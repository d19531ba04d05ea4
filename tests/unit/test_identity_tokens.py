"""identity.tokens: self-contained AES-GCM tokens, validated with no round trip, cached."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from identity.tokens import (
    MAX_TOKEN_CHARS,
    Identity,
    TokenCodec,
    decode_token,
    derive_key,
    encode_token,
)

SECRET = "unit-token-secret-0123"
T0 = 1_700_000_000.0
ADMIN_GROUPS = frozenset({"test", "test:tester", "AUTH_test"})

# Pinned: a change to the key derivation, layout or payload shows here (old tokens would die).
GOLDEN_SECRET = "golden-token-secret"
GOLDEN_KEY_HEX = "37aaff35a000c05747128fe02e31027c2dc956fbc8c548f45b9fcace1169716f"
GOLDEN_IDENTITY = Identity("test", "tester", ADMIN_GROUPS, 1_700_086_400.0)
GOLDEN_TOKEN = (
    "AUTH_tkAQABAgMEBQYHCAkKC6Rwj1eIt4jQJhr5olh_xyHTK-uF39u2nzSDBK7QipYrGBY4hnsebyvNC2Hb3QlIj5sx"
    "mQJHhSsNQw9X2BXnO7ynVvfAQ10EbrXcmqUAtZqW0ogpJ-fiNtCzir7L2j9NjDU"
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def codec(clock: Clock, secret: str = SECRET, **kwargs: object) -> TokenCodec:
    return TokenCodec(secret, 3600.0, clock=clock, **kwargs)  # type: ignore[arg-type]


def raw_body(token: str, prefix: str = "AUTH_tk") -> bytearray:
    body = token[len(prefix) :]
    return bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def with_body(raw: bytes, prefix: str = "AUTH_tk") -> str:
    return prefix + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_golden_key_and_token() -> None:
    key = derive_key(GOLDEN_SECRET)
    assert key.hex() == GOLDEN_KEY_HEX
    aead = AESGCM(key)
    assert encode_token(aead, "AUTH_tk", bytes(range(12)), GOLDEN_IDENTITY) == GOLDEN_TOKEN
    assert decode_token(aead, "AUTH_tk", GOLDEN_TOKEN) == GOLDEN_IDENTITY


def test_golden_token_validates_until_it_expires() -> None:
    clock = Clock(GOLDEN_IDENTITY.expires_at - 1)
    assert TokenCodec(GOLDEN_SECRET, 60, clock=clock).validate(GOLDEN_TOKEN) == GOLDEN_IDENTITY
    clock.now = GOLDEN_IDENTITY.expires_at
    assert TokenCodec(GOLDEN_SECRET, 60, clock=clock).validate(GOLDEN_TOKEN) is None


def test_issue_then_validate() -> None:
    clock = Clock()
    tokens = codec(clock)
    token, expires_at = tokens.issue("test", "tester", ADMIN_GROUPS)
    assert token.startswith("AUTH_tk") and token.isascii() and len(token) < 300
    assert expires_at == T0 + 3600
    identity = tokens.validate(token)
    assert identity == Identity("test", "tester", ADMIN_GROUPS, T0 + 3600)
    assert identity is not None and identity.is_account_admin("AUTH_test")
    assert not identity.is_account_admin("AUTH_test2") and not identity.is_reseller_admin


def test_each_token_is_new_and_another_codec_with_the_secret_validates_it() -> None:
    clock = Clock()
    first, _ = codec(clock).issue("test", "tester", ADMIN_GROUPS)
    second, _ = codec(clock).issue("test", "tester", ADMIN_GROUPS)
    assert first != second  # a fresh nonce each time
    proxy_side = codec(clock)  # what a proxy builds from the shared config
    assert proxy_side.validate(first) == proxy_side.validate(second) is not None


def test_reseller_admin_helpers() -> None:
    groups = frozenset({"admin", "admin:admin", "AUTH_admin", ".reseller_admin"})
    identity = Identity("admin", "admin", groups, T0)
    assert identity.is_reseller_admin and identity.is_account_admin("AUTH_admin")
    assert not identity.is_account_admin("AUTH_test")


def test_expired_tokens_are_refused() -> None:
    clock = Clock()
    tokens = codec(clock)
    token, expires_at = tokens.issue("test", "tester", ADMIN_GROUPS)
    clock.now = expires_at - 0.001
    assert tokens.validate(token) is not None
    clock.now = expires_at
    assert tokens.validate(token) is None
    # Another codec, which has never cached it, refuses it as well.
    assert codec(clock).validate(token) is None


def test_a_cached_token_still_expires() -> None:
    clock = Clock()
    tokens = codec(clock)
    token, expires_at = tokens.issue("test", "tester", ADMIN_GROUPS)
    first = tokens.validate(token)
    assert tokens.validate(token) is first  # the cached Identity, not a second decryption
    assert tokens.cached == 1
    clock.now = expires_at + 1
    assert tokens.validate(token) is None
    assert tokens.cached == 0  # dropped when found expired


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    clock = Clock()
    tokens = codec(clock, cache_entries=2)
    a, b, c = (tokens.issue("test", f"u{i}", ["test"])[0] for i in range(3))
    assert tokens.validate(a) and tokens.validate(b)
    first_a = tokens.validate(a)  # a is now the most recently used
    assert tokens.validate(c) is not None
    assert tokens.cached == 2
    assert tokens.validate(a) is first_a  # still cached; b was evicted
    assert tokens.validate(b) is not None  # and is simply decrypted again


def test_no_cache_when_asked() -> None:
    clock = Clock()
    tokens = codec(clock, cache_entries=0)
    token, _ = tokens.issue("test", "tester", ["test"])
    assert tokens.validate(token) is not None and tokens.cached == 0


def test_a_token_under_another_secret_is_refused() -> None:
    clock = Clock()
    token, _ = codec(clock, secret="another-secret-entirely").issue("test", "tester", ["test"])
    assert codec(clock).validate(token) is None


def test_a_token_with_another_prefix_is_refused() -> None:
    clock = Clock()
    token, _ = codec(clock, prefix="KEY_tk").issue("test", "tester", ["test"])
    assert token.startswith("KEY_tk")
    assert codec(clock).validate(token) is None
    # The prefix is bound into the tag: relabelled, it still fails.
    assert codec(clock).validate("AUTH_tk" + token[len("KEY_tk") :]) is None
    assert codec(clock, prefix="KEY_tk").validate(token) is not None


@pytest.mark.parametrize("where", ["version", "nonce", "ciphertext", "tag"])
def test_a_tampered_token_is_refused(where: str) -> None:
    clock = Clock()
    tokens = codec(clock)
    token, _ = tokens.issue("test", "tester3", ["test", "test:tester3"])
    raw = raw_body(token)
    index = {"version": 0, "nonce": 5, "ciphertext": 20, "tag": len(raw) - 1}[where]
    raw[index] ^= 0x01
    assert codec(clock).validate(with_body(raw)) is None


def test_every_single_bit_flip_is_refused() -> None:
    clock = Clock()
    tokens = codec(clock, cache_entries=0)
    token, _ = tokens.issue("t", "u", [])
    raw = raw_body(token)
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            assert tokens.validate(with_body(flipped)) is None, (index, bit)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "AUTH_tk",
        "AUTH_tk!!!not-base64!!!",
        "AUTH_tkAQ",  # a version byte and nothing else
        "AUTH_tk" + "A" * 40,  # decodes, but version 0
        "Bearer AUTH_tkAQAB",
        "AUTH_tk" + "A" * MAX_TOKEN_CHARS,
        "AUTH_tké",
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert codec(Clock()).validate(token) is None


def test_an_unknown_version_is_refused_even_when_authentic() -> None:
    aead = AESGCM(derive_key(SECRET))
    nonce = bytes(12)
    plain = json.dumps({"a": "test", "u": "tester", "g": [], "e": T0 + 60}).encode()
    sealed = aead.encrypt(nonce, plain, b"\x02AUTH_tk")
    assert codec(Clock()).validate(with_body(b"\x02" + nonce + sealed)) is None


@pytest.mark.parametrize(
    "plain",
    [
        b"not json",
        b"[1, 2]",
        b'{"a": "test", "u": "tester", "g": [], "e": "soon"}',
        b'{"a": "test", "u": "tester", "g": [], "e": true}',
        b'{"a": "test", "u": "tester", "g": [1], "e": 1800000000}',
        b'{"a": "test", "u": 7, "g": [], "e": 1800000000}',
        b'{"u": "tester", "g": [], "e": 1800000000}',
    ],
)
def test_an_authentic_but_odd_payload_is_refused(plain: bytes) -> None:
    aead = AESGCM(derive_key(SECRET))
    nonce = bytes(range(12))
    sealed = aead.encrypt(nonce, plain, b"\x01AUTH_tk")
    assert codec(Clock()).validate(with_body(b"\x01" + nonce + sealed)) is None


def test_codec_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        TokenCodec("", 60)
    with pytest.raises(ValueError, match="ttl_s must be > 0"):
        TokenCodec(SECRET, 0)
    with pytest.raises(ValueError, match="cache_entries"):
        TokenCodec(SECRET, 60, cache_entries=-1)
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        encode_token(AESGCM(derive_key(SECRET)), "AUTH_tk", b"short", GOLDEN_IDENTITY)


def test_seconds_left_is_whole_and_never_negative() -> None:
    clock = Clock()
    tokens = codec(clock)
    assert tokens.seconds_left(T0 + 99.9) == 99
    assert tokens.seconds_left(T0 - 5) == 0


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@given(
    account=names,
    user=names,
    groups=st.frozensets(names, max_size=5),
    ttl_s=st.floats(min_value=1, max_value=1e7),
)
def test_round_trip(account: str, user: str, groups: frozenset[str], ttl_s: float) -> None:
    tokens = TokenCodec(SECRET, ttl_s, clock=Clock(), cache_entries=0)
    token, expires_at = tokens.issue(account, user, groups)
    assert tokens.validate(token) == Identity(account, user, groups, expires_at)
