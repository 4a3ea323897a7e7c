"""API keys: their shape, their randomness and the digest stored for them."""

from __future__ import annotations

import hashlib
import hmac
import math
import re

import pytest

from accounts.apikeys import (
    KEY_SECRET_LENGTH,
    MAX_KEY_LENGTH,
    generate_key,
    hash_key,
    key_prefix,
    prefix_named_by,
)

KEY_SHAPE = re.compile(r"(sk_[0-9A-Za-z]{8})_([0-9A-Za-z]{32})")


def test_a_key_is_a_readable_prefix_and_a_long_random_secret() -> None:
    new = generate_key()
    found = KEY_SHAPE.fullmatch(new.key)
    assert found is not None
    assert found[1] == new.prefix
    assert KEY_SECRET_LENGTH * math.log2(62) >= 128


def test_keys_and_prefixes_do_not_repeat() -> None:
    keys = [generate_key() for _ in range(2000)]
    assert len({key.key for key in keys}) == len(keys)
    assert len({key.prefix for key in keys}) == len(keys)
    # Every base62 character turns up: the secret is not drawn from a narrower alphabet.
    assert len(set("".join(key.key.split("_")[2] for key in keys))) == 62


def test_repr_never_shows_the_secret() -> None:
    new = generate_key()
    assert new.key.split("_")[2] not in repr(new)
    assert new.prefix in repr(new)


def test_key_prefix_recognises_only_our_keys() -> None:
    new = generate_key()
    assert key_prefix(new.key) == new.prefix
    secret = new.key.split("_")[2]
    refused = [
        "",
        new.prefix,
        f"pk_{new.key[3:]}",
        f"{new.prefix}_{secret[:-1]}",  # one character short
        f"{new.prefix}-{secret}",
        f"{new.key} ",
        f" {new.key}",
        f"{new.prefix}_{secret[:-1]}!",
        f"{new.prefix}_{secret}é",
        new.key + "A" * (MAX_KEY_LENGTH - len(new.key) + 1),  # longer than any key of ours
        "sk_" + "A" * 100_000,
    ]
    for text in refused:
        assert key_prefix(text) is None, text
    # Longer secrets, up to the limit, stay recognised for a future release.
    assert key_prefix(new.key + "A" * (MAX_KEY_LENGTH - len(new.key))) == new.prefix


def test_prefix_named_by_takes_a_prefix_or_a_whole_key() -> None:
    new = generate_key()
    assert prefix_named_by(new.prefix) == new.prefix
    assert prefix_named_by(new.key) == new.prefix
    assert prefix_named_by("sk_short") is None
    assert prefix_named_by("anything") is None


def test_plain_hash_is_sha256_hex() -> None:
    key = generate_key().key
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(key))


@pytest.mark.parametrize("secret", ["s", "a much longer server secret ✓"])
def test_with_a_secret_the_hash_is_hmac_sha256(secret: str) -> None:
    key = generate_key().key
    expected = hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()
    assert hash_key(key, secret) == expected
    assert hash_key(key, secret) != hash_key(key)
    assert hash_key(key, secret) != hash_key(key, secret + "x")
