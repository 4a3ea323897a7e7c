"""X-Gnarly: the current SDK's request fingerprint (see specs/signing.md and the contract).

A token is a TLV list of fields (hashes of the query, body and User-Agent, time,
canvas, SDK identity, random values, an XOR checksum) encrypted with the cipher in
`signer.gnarlycipher`, with the 48-byte key spliced into the ciphertext at a
position derived from the bytes themselves.

The signing service checks every token it makes, so decoding also comes in a batched
form (`decode_xgnarly_many`, `verify_xgnarly_many`) that runs the cipher for all the
tokens of a batch together; see `signer.gnarlycipher`.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache, reduce
from operator import xor

from signer.alphabet import decode_custom_b64, encode_custom_b64, to_utf8
from signer.gnarlycipher import KEY_LENGTH, gnarly_xor, gnarly_xor_many
from signer.tokenerrors import TokenDecodeError

__all__ = [
    "XGNARLY_ALPHABET",
    "GnarlyRandomness",
    "XGnarlyFields",
    "decode_xgnarly",
    "decode_xgnarly_many",
    "encode_xgnarly",
    "verify_xgnarly",
    "verify_xgnarly_many",
]

XGNARLY_ALPHABET = "u09tbS3UvgDEe6r-ZVMXzLpsAohTn7mdINQlW412GqBjfYiyk8JORCF5/xKHwacP"
_LEAD = 75

# Field keys, named after what they carry.
CHECKSUM = 0
MAGIC = 1
VARIANT = 2
QUERY_MD5 = 3
BODY_MD5 = 4
UA_MD5 = 5
TIMESTAMP = 6
CANVAS = 7
COUNTER = 8
SDK_TAG = 9
SDK_VERSION = 10
FLAG = 11
REQUESTS_SEEN = 12
REQUESTS_INTERCEPTED = 13
RANDOM16 = 14
RANDOM32 = 15

# Byte width of every integer field; the other known keys hold UTF-8 text.
_INT_WIDTHS = {
    CHECKSUM: 4,
    MAGIC: 2,
    VARIANT: 2,
    TIMESTAMP: 4,
    CANVAS: 4,
    COUNTER: 4,
    FLAG: 2,
    REQUESTS_SEEN: 2,
    REQUESTS_INTERCEPTED: 2,
    RANDOM16: 4,
    RANDOM32: 4,
}
_TEXT_KEYS = frozenset({QUERY_MD5, BODY_MD5, UA_MD5, SDK_TAG, SDK_VERSION})
_MD5_KEYS = (QUERY_MD5, BODY_MD5, UA_MD5)
# Without these a token says nothing a verifier could check.
_REQUIRED = frozenset({CHECKSUM, QUERY_MD5, BODY_MD5, UA_MD5, TIMESTAMP, CANVAS})
_HEX = frozenset("0123456789abcdef")
_HEX_BYTES = b"0123456789abcdef"

_NAMES = {
    CHECKSUM: "checksum",
    MAGIC: "magic",
    VARIANT: "variant",
    QUERY_MD5: "query_md5",
    BODY_MD5: "body_md5",
    UA_MD5: "ua_md5",
    TIMESTAMP: "timestamp",
    CANVAS: "canvas",
    COUNTER: "counter",
    SDK_TAG: "sdk_tag",
    SDK_VERSION: "sdk_version",
    FLAG: "flag",
    REQUESTS_SEEN: "requests_seen",
    REQUESTS_INTERCEPTED: "requests_intercepted",
    RANDOM16: "random16",
    RANDOM32: "random32",
}


@dataclass(frozen=True, slots=True)
class GnarlyRandomness:
    """The random inputs of one X-Gnarly token, injectable so tests are repeatable."""

    key: bytes
    counter: int
    random16: int
    random32: int

    def __post_init__(self) -> None:
        if len(self.key) != KEY_LENGTH:
            raise ValueError(f"the key has {KEY_LENGTH} bytes, got {len(self.key)}")
        if not 0 <= self.counter <= 0x7FFFFFFF:
            raise ValueError(f"counter must be a 31-bit value, got {self.counter}")
        if not 0 <= self.random16 <= 0xFFFF:
            raise ValueError(f"random16 must fit 16 bits, got {self.random16}")
        if not 0 <= self.random32 <= 0xFFFFFFFF:
            raise ValueError(f"random32 must fit 32 bits, got {self.random32}")

    @classmethod
    def draw(cls) -> GnarlyRandomness:
        """Fresh randomness; the counter follows the clock like the SDK's does."""
        return cls(
            key=secrets.token_bytes(KEY_LENGTH),
            counter=(time.time_ns() // 1_000_000) & 0x7FFFFFFF,
            random16=secrets.randbits(16),
            random32=secrets.randbits(32),
        )


@dataclass(frozen=True)
class XGnarlyFields:
    """The decoded fields of an X-Gnarly token, by key, plus the key it was sealed with.

    Integer fields are ints, text fields (hashes, SDK tag and version) are str, and
    keys this module does not know are kept as lowercase hex of their raw bytes.
    """

    fields: dict[int, int | str]
    key: bytes = field(default=b"", repr=False)

    def _text(self, key: int) -> str:
        value = self.fields.get(key)
        if not isinstance(value, str):
            raise KeyError(f"X-Gnarly field {key} is absent")
        return value

    def _int(self, key: int) -> int:
        value = self.fields.get(key)
        if not isinstance(value, int):
            raise KeyError(f"X-Gnarly field {key} is absent")
        return value

    @property
    def query_md5(self) -> str:
        """Hex md5 of the query string the token was made for."""
        return self._text(QUERY_MD5)

    @property
    def body_md5(self) -> str:
        """Hex md5 of the request body."""
        return self._text(BODY_MD5)

    @property
    def ua_md5(self) -> str:
        """Hex md5 of the User-Agent."""
        return self._text(UA_MD5)

    @property
    def timestamp(self) -> int:
        """Unix seconds at signing."""
        return self._int(TIMESTAMP)

    @property
    def canvas(self) -> int:
        """The profile's canvas fingerprint."""
        return self._int(CANVAS)

    @property
    def sdk_tag(self) -> str:
        """The SDK tag, such as 5.1.3-ZTCA."""
        return self._text(SDK_TAG)

    @property
    def sdk_version(self) -> str:
        """The SDK version, such as 2.0.0.485."""
        return self._text(SDK_VERSION)

    def randomness(self) -> GnarlyRandomness:
        """The random inputs this token was made with, to re-encode it exactly."""
        return GnarlyRandomness(
            key=self.key,
            counter=self._int(COUNTER),
            random16=self._int(RANDOM16) & 0xFFFF,
            random32=self._int(RANDOM32),
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view: known fields by name, every field by key under "fields"."""
        named: dict[str, object] = {
            _NAMES[k]: v for k, v in sorted(self.fields.items()) if k in _NAMES
        }
        named["fields"] = {str(k): v for k, v in sorted(self.fields.items())}
        if self.key:
            named["key"] = self.key.hex()
        return named


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _body_md5(body: bytes | str) -> str:
    return _md5_hex(to_utf8(body) if isinstance(body, str) else body)


@lru_cache(maxsize=256)
def _ua_md5(user_agent: str) -> str:
    return _md5_hex(to_utf8(user_agent))


def _checksum(fields: dict[int, int | str]) -> int:
    total = 0
    for k, v in fields.items():
        if k != CHECKSUM and isinstance(v, int):
            total ^= v
    return total


@lru_cache(maxsize=32)
def _layout(tag_len: int, version_len: int) -> struct.Struct:
    """The whole plaintext as one struct: count, then (key, length, value) per field.

    Only the SDK strings vary in length, so a few layouts cover every call and the
    plaintext is built by one C call. The order is the contract's: 1..15, then 0.
    """
    fmt = ">B" + "BHH" * 2 + "BH32s" * 3 + "BHI" * 3
    fmt += f"BH{tag_len}sBH{version_len}s" + "BHH" * 3 + "BHI" * 3
    return struct.Struct(fmt)


def _check_width(name: str, value: int, width: int) -> None:
    if not 0 <= value < 1 << (8 * width):
        raise ValueError(f"{name} must fit {width} bytes unsigned, got {value}")


def encode_xgnarly(
    query: str,
    user_agent: str,
    timestamp: int,
    canvas: int,
    body: bytes | str = b"",
    *,
    randomness: GnarlyRandomness | None = None,
    field2: int = 14,
    sdk_tag: str = "5.1.3-ZTCA",
    sdk_version: str = "2.0.0.485",
    requests_seen: int = 1,
    requests_intercepted: int = 0,
) -> str:
    """Compute the X-Gnarly token for a query string (no '?'), body and User-Agent.

    `randomness` is drawn fresh when not given; pass one to get a repeatable token.
    Integers must fit their field widths (timestamp and canvas: unsigned 32-bit).
    """
    _check_width("field2", field2, 2)
    _check_width("timestamp", timestamp, 4)
    _check_width("canvas", canvas, 4)
    _check_width("requests_seen", requests_seen, 2)
    _check_width("requests_intercepted", requests_intercepted, 2)
    tag = sdk_tag.encode("utf-8")
    version = sdk_version.encode("utf-8")
    if len(tag) > 0xFFFF or len(version) > 0xFFFF:
        raise ValueError("the SDK tag and version must each fit 65535 bytes")
    rnd = randomness if randomness is not None else GnarlyRandomness.draw()
    random16 = (65 << 16) | rnd.random16
    ints = (65, field2, timestamp, canvas, rnd.counter, 1, requests_seen, requests_intercepted)
    checksum = reduce(xor, ints, random16 ^ rnd.random32)
    # fmt: off
    plain = _layout(len(tag), len(version)).pack(
        16,
        MAGIC, 2, 65,
        VARIANT, 2, field2,
        QUERY_MD5, 32, _md5_hex(to_utf8(query)).encode("ascii"),
        BODY_MD5, 32, _body_md5(body).encode("ascii"),
        UA_MD5, 32, _ua_md5(user_agent).encode("ascii"),
        TIMESTAMP, 4, timestamp,
        CANVAS, 4, canvas,
        COUNTER, 4, rnd.counter,
        SDK_TAG, len(tag), tag,
        SDK_VERSION, len(version), version,
        FLAG, 2, 1,
        REQUESTS_SEEN, 2, requests_seen,
        REQUESTS_INTERCEPTED, 2, requests_intercepted,
        RANDOM16, 4, random16,
        RANDOM32, 4, rnd.random32,
        CHECKSUM, 4, checksum,
    )
    # fmt: on
    ciphertext = gnarly_xor(rnd.key, plain)
    insert = (sum(rnd.key) + sum(ciphertext)) % (len(ciphertext) + 1)
    spliced = bytes((_LEAD,)) + ciphertext[:insert] + rnd.key + ciphertext[insert:]
    return encode_custom_b64(spliced, XGNARLY_ALPHABET, pad=True)


def _value(key: int, raw: bytes) -> int | str:
    width = _INT_WIDTHS.get(key)
    if width is not None:
        if len(raw) != width:
            raise TokenDecodeError(f"X-Gnarly field {key} has {len(raw)} bytes, not {width}")
        return int.from_bytes(raw, "big")
    if key not in _TEXT_KEYS:
        return raw.hex()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenDecodeError(f"X-Gnarly field {key} is not UTF-8 text") from None
    if key in _MD5_KEYS and (len(text) != 32 or not _HEX.issuperset(text)):
        raise TokenDecodeError(f"X-Gnarly field {key} is not a lowercase hex md5")
    return text


_TLV_HEAD = struct.Struct(">BH")


def _parse(plain: bytes) -> dict[int, int | str]:
    """Parse the TLV list, which must be complete: count, lengths and end all agree."""
    count = plain[0]
    end = len(plain)
    head = _TLV_HEAD.unpack_from
    pos = 1
    fields: dict[int, int | str] = {}
    for _ in range(count):
        if pos + 3 > end:
            raise TokenDecodeError(f"X-Gnarly TLV list ends after {len(fields)} of {count} fields")
        key, size = head(plain, pos)
        start = pos + 3
        pos = start + size
        if pos > end:
            raise TokenDecodeError(f"X-Gnarly field {key} runs past the end of the TLV list")
        if key in fields:
            raise TokenDecodeError(f"X-Gnarly field {key} appears twice")
        fields[key] = _value(key, plain[start:pos])
    if pos != end:
        raise TokenDecodeError(f"X-Gnarly TLV list has {end - pos} bytes after its {count} fields")
    return fields


# The contract's layout: fields 1..15 then 0, with these widths (9 and 10 vary).
_ORDER = (*range(1, 16), CHECKSUM)
_WIDTHS_HEAD = (2, 2, 32, 32, 32, 4, 4, 4)
_WIDTHS_TAIL = (2, 2, 2, 4, 4, 4)
# Field 9's header follows the count byte and fields 1 to 8; the fixed-width fields
# and the 16 headers add up to 179 bytes besides the two SDK strings.
_TAG_HEAD = 1 + 2 * 5 + 3 * 35 + 3 * 7
_FIXED_BYTES = 179


@lru_cache(maxsize=32)
def _contract(tag_len: int, version_len: int) -> tuple[struct.Struct, tuple[int, ...]]:
    """The contract's plaintext layout for these SDK string lengths, and its field widths."""
    widths = (*_WIDTHS_HEAD, tag_len, version_len, *_WIDTHS_TAIL)
    return _layout(tag_len, version_len), widths


def _parse_contract(plain: bytes) -> dict[int, int | str] | None:
    """The checked fields of a plaintext in the contract's exact layout, or None.

    Our encoder always writes this layout, so a self-check meets little else, and one C
    call unpacks it. Anything unexpected returns None, and `_parse` then decides (and
    gives the error), so the outcome is always the general path's: the same fields in
    the same order, or for a wrong checksum the same TokenDecodeError.
    """
    size = len(plain)
    if size < _FIXED_BYTES or plain[0] != 16:
        return None
    tag_len = (plain[_TAG_HEAD + 1] << 8) | plain[_TAG_HEAD + 2]
    version_len = size - _FIXED_BYTES - tag_len
    if version_len < 0:
        return None
    layout, widths = _contract(tag_len, version_len)
    values = layout.unpack(plain)
    if values[1::3] != _ORDER or values[2::3] != widths:
        return None
    # fmt: off
    (
        magic, variant, query, body, ua, timestamp, canvas, counter,
        tag, version, flag, seen, intercepted, random16, random32, checksum,
    ) = values[3::3]
    # fmt: on
    if (
        query.translate(None, _HEX_BYTES)
        or body.translate(None, _HEX_BYTES)
        or ua.translate(None, _HEX_BYTES)
    ):
        return None
    try:
        tag_text = tag.decode("utf-8")
        version_text = version.decode("utf-8")
    except UnicodeDecodeError:
        return None
    expected = magic ^ variant ^ timestamp ^ canvas ^ counter
    expected ^= flag ^ seen ^ intercepted ^ random16 ^ random32
    if checksum != expected:
        raise TokenDecodeError("X-Gnarly checksum does not match")
    return {
        MAGIC: magic,
        VARIANT: variant,
        QUERY_MD5: query.decode("ascii"),
        BODY_MD5: body.decode("ascii"),
        UA_MD5: ua.decode("ascii"),
        TIMESTAMP: timestamp,
        CANVAS: canvas,
        COUNTER: counter,
        SDK_TAG: tag_text,
        SDK_VERSION: version_text,
        FLAG: flag,
        REQUESTS_SEEN: seen,
        REQUESTS_INTERCEPTED: intercepted,
        RANDOM16: random16,
        RANDOM32: random32,
        CHECKSUM: checksum,
    }


def _unseal(token: str) -> tuple[bytes, bytes]:
    """(key, ciphertext) of a token; raises TokenDecodeError if it cannot hold them."""
    raw = decode_custom_b64(token, XGNARLY_ALPHABET)
    if not raw or raw[0] != _LEAD:
        raise TokenDecodeError(f"X-Gnarly must start with byte {_LEAD}")
    if len(raw) < 2 + KEY_LENGTH:
        raise TokenDecodeError(f"X-Gnarly is too short ({len(raw)} bytes)")
    spliced = raw[1:]
    ct_len = len(spliced) - KEY_LENGTH
    # The splice rule sums the key and the ciphertext, which together are every byte
    # after the lead, so the position needs no search.
    insert = sum(spliced) % (ct_len + 1)
    key = spliced[insert : insert + KEY_LENGTH]
    ciphertext = spliced[:insert] + spliced[insert + KEY_LENGTH :]
    return key, ciphertext


def _checked(plain: bytes) -> dict[int, int | str]:
    """Parse and check a decrypted plaintext; raises TokenDecodeError if it is not well formed."""
    fields = _parse_contract(plain)
    if fields is not None:
        return fields
    fields = _parse(plain)
    missing = sorted(_REQUIRED - fields.keys())
    if missing:
        raise TokenDecodeError(f"X-Gnarly lacks fields {missing}")
    if fields[CHECKSUM] != _checksum(fields):
        raise TokenDecodeError("X-Gnarly checksum does not match")
    return fields


def decode_xgnarly(token: str) -> XGnarlyFields:
    """Unseal and parse an X-Gnarly token; raises TokenDecodeError if it is not well formed."""
    key, ciphertext = _unseal(token)
    return XGnarlyFields(_checked(gnarly_xor(key, ciphertext)), key)


def _decrypt_many(tokens: Sequence[str]) -> list[tuple[bytes, bytes] | TokenDecodeError]:
    """(key, plaintext) of every token, or the TokenDecodeError unsealing it raises.

    The cipher runs once for the whole batch. Errors are returned without their
    traceback, which would otherwise keep this frame's locals alive with them.
    """
    unsealed: list[tuple[bytes, bytes] | TokenDecodeError] = []
    for token in tokens:
        try:
            unsealed.append(_unseal(token))
        except TokenDecodeError as exc:
            unsealed.append(exc.with_traceback(None))
    sealed = [u for u in unsealed if not isinstance(u, TokenDecodeError)]
    plains = iter(gnarly_xor_many(sealed))
    return [u if isinstance(u, TokenDecodeError) else (u[0], next(plains)) for u in unsealed]


def decode_xgnarly_many(tokens: Sequence[str]) -> list[XGnarlyFields | TokenDecodeError]:
    """decode_xgnarly on every token, with the cipher run for all of them together.

    Each entry is what decode_xgnarly gives for that token, or the TokenDecodeError it
    raises (returned, not raised, so one bad token does not sink the batch).
    """
    if len(tokens) == 1:
        try:
            return [decode_xgnarly(tokens[0])]
        except TokenDecodeError as exc:
            return [exc.with_traceback(None)]
    results: list[XGnarlyFields | TokenDecodeError] = []
    for entry in _decrypt_many(tokens):
        if isinstance(entry, TokenDecodeError):
            results.append(entry)
            continue
        key, plain = entry
        try:
            results.append(XGnarlyFields(_checked(plain), key))
        except TokenDecodeError as exc:
            results.append(exc.with_traceback(None))
    return results


def _fingerprints(
    fields: dict[int, int | str], query: str, user_agent: str, body: bytes | str
) -> bool:
    # Checked fields always hold the three hashes (they are required).
    return (
        fields[QUERY_MD5] == _md5_hex(to_utf8(query))
        and fields[BODY_MD5] == _body_md5(body)
        and fields[UA_MD5] == _ua_md5(user_agent)
    )


def verify_xgnarly(token: str, query: str, user_agent: str, body: bytes | str = b"") -> bool:
    """True when the token is well formed and fingerprints this query, body and UA."""
    try:
        fields = decode_xgnarly(token)
    except TokenDecodeError:
        return False
    return _fingerprints(fields.fields, query, user_agent, body)


def verify_xgnarly_many(items: Sequence[tuple[str, str, str, bytes | str]]) -> list[bool]:
    """verify_xgnarly on many (token, query, user_agent, body) items at once."""
    if len(items) == 1:
        return [verify_xgnarly(*items[0])]
    results: list[bool] = []
    for entry, (_, query, user_agent, body) in zip(
        _decrypt_many([item[0] for item in items]), items, strict=True
    ):
        if isinstance(entry, TokenDecodeError):
            results.append(False)
            continue
        try:
            fields = _checked(entry[1])
        except TokenDecodeError:
            results.append(False)
        else:
            results.append(_fingerprints(fields, query, user_agent, body))
    return results
