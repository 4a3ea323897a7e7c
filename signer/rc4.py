"""RC4, as used by X-Bogus (keys [255] and [0, h1, h2]).

The keys are few and repeat on every signature, so the keystream for a key is
computed once and reused; a call is then one XOR of two integers.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["rc4"]


@lru_cache(maxsize=64)
def _key_schedule(key: bytes) -> bytes:
    if not key:
        raise ValueError("an RC4 key cannot be empty")
    s = bytearray(range(256))
    klen = len(key)
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % klen]) & 0xFF
        s[i], s[j] = s[j], s[i]
    return bytes(s)


@lru_cache(maxsize=128)
def _keystream(key: bytes, length: int) -> bytes:
    s = bytearray(_key_schedule(key))
    out = bytearray(length)
    i = j = 0
    for n in range(length):
        i = (i + 1) & 0xFF
        si = s[i]
        j = (j + si) & 0xFF
        sj = s[j]
        s[i] = sj
        s[j] = si
        out[n] = s[(si + sj) & 0xFF]
    return bytes(out)


def rc4(key: bytes, data: bytes) -> bytes:
    """Encrypt or decrypt `data` with RC4 under `key` (the same operation both ways)."""
    n = len(data)
    if n == 0:
        return b""
    # Round the cached length up to a power of two so that inputs of similar
    # length share one cache entry instead of filling the cache with near-copies.
    stream = _keystream(bytes(key), max(64, 1 << (n - 1).bit_length()))
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(stream[:n], "little")
    return mixed.to_bytes(n, "little")
