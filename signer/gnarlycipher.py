"""The X-Gnarly stream cipher: a ChaCha-like block function with a key-dependent round count.

The block function is the hot spot of X-Gnarly (every signature is decoded again in
a self-check), so it is written for CPython speed rather than brevity:

- the 16 state words live in local variables and each half-round is written out;
- many blocks are computed at once. Each local holds one word of every block, one
  64-bit lane per block (the 32-bit value in the low half). Adding, XORing and masking
  a big integer works lane by lane, and a 32-bit rotation stays in its lane once masked
  (the bits a right shift drags in from the next lane land in the masked-off upper
  half), so one pass of Python arithmetic does the work of many blocks.

The lanes need not share a key: each lane starts from its own state words, so the
blocks of many messages go through one pass (`gnarly_keystreams`, `gnarly_xor_many`).
Round counts differ between keys, but every key runs the same sequence of half-rounds
and only stops at a different point. The lanes are therefore ordered by decreasing
round count; when the top lanes have had all their half-rounds, their words are put
aside and the mask narrows to the lanes below, which drops the finished lanes from
every later operation. Each lane costs exactly its own rounds, and a batch pays the
interpreter's per-operation overhead once instead of once per message.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

__all__ = [
    "CONSTANTS",
    "KEY_LENGTH",
    "gnarly_keystream",
    "gnarly_keystreams",
    "gnarly_xor",
    "gnarly_xor_many",
    "key_words",
    "round_count",
]

CONSTANTS = (1196819126, 600974999, 3863347763, 1451689750)
KEY_LENGTH = 48
BLOCK_BYTES = 64
_U32 = 0xFFFFFFFF
_LANE_BITS = 64
_LANE_BYTES = _LANE_BITS // 8
_ONE_LANE = (1).to_bytes(_LANE_BYTES, "little")
_KEY_WORDS = struct.Struct("<12I")
# Low nibble of every byte value: the round count reads the low byte of each key word.
_LOW_NIBBLE = bytes(b & 15 for b in range(256))
_ZEROS = bytes(BLOCK_BYTES)
# Lanes per pass. Wider passes still get cheaper per lane, but ever more slowly once
# the interpreter's overhead is spread thin, while the working set outgrows the
# CPU caches; past this width a batch is split (see the measurements in the report).
MAX_LANES = 512

# (half-round, cut, mask): after that half-round, the lanes from bit `cut` up are done.
_Exit = tuple[int, int, int]


def key_words(key: bytes) -> tuple[int, ...]:
    """The 48-byte key as 12 little-endian 32-bit words."""
    if len(key) != KEY_LENGTH:
        raise ValueError(f"an X-Gnarly key has {KEY_LENGTH} bytes, got {len(key)}")
    return _KEY_WORDS.unpack(key)


def round_count(words: tuple[int, ...]) -> int:
    """Half-rounds to run: 5 plus the low nibbles of the key words summed mod 16."""
    return 5 + sum(w & 15 for w in words) % 16


def _key_rounds(key: bytes) -> int:
    """round_count(key_words(key)) straight from the bytes: each word's low byte is
    every fourth byte, and a C-level translate and sum replace a Python loop."""
    if len(key) != KEY_LENGTH:
        raise ValueError(f"an X-Gnarly key has {KEY_LENGTH} bytes, got {len(key)}")
    return 5 + sum(key[::4].translate(_LOW_NIBBLE)) % 16


@lru_cache(maxsize=32)
def _lanes(blocks: int) -> tuple[int, int]:
    """(1 in every lane, 0xFFFFFFFF in every lane) for this many blocks."""
    ones = int.from_bytes(_ONE_LANE * blocks, "little")
    return ones, _U32 * ones


@lru_cache(maxsize=64)
def _counter_lanes(blocks: int) -> bytes:
    """Lanes holding 0, 1, ..., blocks-1: what each block adds to its counter word."""
    return b"".join([n.to_bytes(_LANE_BYTES, "little") for n in range(blocks)])


def _permute(
    state: Sequence[int], rounds: int, m: int, exits: Sequence[_Exit] = ()
) -> tuple[list[int], list[tuple[int, ...]]]:
    """Run `rounds` half-rounds over the lane-packed state words.

    `m` has 0xFFFFFFFF in every lane. After half-round `stop` of each (stop, cut, mask)
    in `exits` (in increasing order), the lanes from bit `cut` up have finished: their
    16 words are saved, shifted down by `cut`, and `m` becomes `mask`, which keeps only
    the lanes below. Returns the words of the lanes that ran to the end, and the saved
    words of each exit in order.
    """
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = state
    saved: list[tuple[int, ...]] = []
    pending = iter(exits)
    stop, cut, narrow = next(pending, (0, 0, 0))
    # Half-rounds alternate column, diagonal; an odd count ends on a column round.
    for half in range(1, rounds + 1):
        if half & 1:
            x0 = (x0 + x4) & m
            t = x12 ^ x0
            x12 = ((t << 16) | (t >> 16)) & m
            x8 = (x8 + x12) & m
            t = x4 ^ x8
            x4 = ((t << 12) | (t >> 20)) & m
            x0 = (x0 + x4) & m
            t = x12 ^ x0
            x12 = ((t << 8) | (t >> 24)) & m
            x8 = (x8 + x12) & m
            t = x4 ^ x8
            x4 = ((t << 7) | (t >> 25)) & m
            x1 = (x1 + x5) & m
            t = x13 ^ x1
            x13 = ((t << 16) | (t >> 16)) & m
            x9 = (x9 + x13) & m
            t = x5 ^ x9
            x5 = ((t << 12) | (t >> 20)) & m
            x1 = (x1 + x5) & m
            t = x13 ^ x1
            x13 = ((t << 8) | (t >> 24)) & m
            x9 = (x9 + x13) & m
            t = x5 ^ x9
            x5 = ((t << 7) | (t >> 25)) & m
            x2 = (x2 + x6) & m
            t = x14 ^ x2
            x14 = ((t << 16) | (t >> 16)) & m
            x10 = (x10 + x14) & m
            t = x6 ^ x10
            x6 = ((t << 12) | (t >> 20)) & m
            x2 = (x2 + x6) & m
            t = x14 ^ x2
            x14 = ((t << 8) | (t >> 24)) & m
            x10 = (x10 + x14) & m
            t = x6 ^ x10
            x6 = ((t << 7) | (t >> 25)) & m
            x3 = (x3 + x7) & m
            t = x15 ^ x3
            x15 = ((t << 16) | (t >> 16)) & m
            x11 = (x11 + x15) & m
            t = x7 ^ x11
            x7 = ((t << 12) | (t >> 20)) & m
            x3 = (x3 + x7) & m
            t = x15 ^ x3
            x15 = ((t << 8) | (t >> 24)) & m
            x11 = (x11 + x15) & m
            t = x7 ^ x11
            x7 = ((t << 7) | (t >> 25)) & m
        else:
            x0 = (x0 + x5) & m
            t = x15 ^ x0
            x15 = ((t << 16) | (t >> 16)) & m
            x10 = (x10 + x15) & m
            t = x5 ^ x10
            x5 = ((t << 12) | (t >> 20)) & m
            x0 = (x0 + x5) & m
            t = x15 ^ x0
            x15 = ((t << 8) | (t >> 24)) & m
            x10 = (x10 + x15) & m
            t = x5 ^ x10
            x5 = ((t << 7) | (t >> 25)) & m
            x1 = (x1 + x6) & m
            t = x12 ^ x1
            x12 = ((t << 16) | (t >> 16)) & m
            x11 = (x11 + x12) & m
            t = x6 ^ x11
            x6 = ((t << 12) | (t >> 20)) & m
            x1 = (x1 + x6) & m
            t = x12 ^ x1
            x12 = ((t << 8) | (t >> 24)) & m
            x11 = (x11 + x12) & m
            t = x6 ^ x11
            x6 = ((t << 7) | (t >> 25)) & m
            x2 = (x2 + x7) & m
            t = x13 ^ x2
            x13 = ((t << 16) | (t >> 16)) & m
            x12 = (x12 + x13) & m
            t = x7 ^ x12
            x7 = ((t << 12) | (t >> 20)) & m
            x2 = (x2 + x7) & m
            t = x13 ^ x2
            x13 = ((t << 8) | (t >> 24)) & m
            x12 = (x12 + x13) & m
            t = x7 ^ x12
            x7 = ((t << 7) | (t >> 25)) & m
            x3 = (x3 + x4) & m
            t = x14 ^ x3
            x14 = ((t << 16) | (t >> 16)) & m
            x13 = (x13 + x14) & m
            t = x4 ^ x13
            x4 = ((t << 12) | (t >> 20)) & m
            x3 = (x3 + x4) & m
            t = x14 ^ x3
            x14 = ((t << 8) | (t >> 24)) & m
            x13 = (x13 + x14) & m
            t = x4 ^ x13
            x4 = ((t << 7) | (t >> 25)) & m
        if half == stop:
            # fmt: off
            saved.append((
                x0 >> cut, x1 >> cut, x2 >> cut, x3 >> cut,
                x4 >> cut, x5 >> cut, x6 >> cut, x7 >> cut,
                x8 >> cut, x9 >> cut, x10 >> cut, x11 >> cut,
                x12 >> cut, x13 >> cut, x14 >> cut, x15 >> cut,
            ))
            # fmt: on
            m = narrow
            # Every half-round rewrites each word through `& m`, so the dropped lanes
            # vanish from a word when it is next written, except words 8 and 9, which the
            # diagonal round leaves alone: narrow those two now.
            x8 &= m
            x9 &= m
            stop, cut, narrow = next(pending, (0, 0, 0))
    return [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15], saved


def _serialise(out: list[int], lanes: int) -> bytes:
    """The keystream of lane-packed output words: 64 bytes per lane, lane after lane.

    Word j of lane n is the 32-bit cell 2n of word j's bytes (the high cell is the empty
    upper half), and goes to cell 16n + j of the stream. Only raw 4-byte cells are
    copied, so the host's byte order plays no part.
    """
    stream = bytearray(BLOCK_BYTES * lanes)
    cells = memoryview(stream).cast("I")
    width = _LANE_BYTES * lanes
    for j, word in enumerate(out):
        cells[j::16] = memoryview(word.to_bytes(width, "little")).cast("I")[::2]
    return bytes(stream)


def _blocks_pass(keys: Sequence[bytes], blocks: Sequence[int], rounds: Sequence[int]) -> bytes:
    """The keystream blocks of several messages in one pass, laid end to end.

    Message i has keys[i], needs blocks[i] blocks and rounds[i] half-rounds; rounds must
    not increase along the list, so the messages that stop first hold the top lanes.
    """
    lanes = sum(blocks)
    ones, full = _lanes(lanes) if lanes <= 32 else _lanes.__wrapped__(lanes)
    # Key word w of lane n is cell 12n + w of the keys repeated once per block; it goes
    # to the low cell of lane n (cell 2n) of an otherwise zero buffer.
    key_cells = memoryview(b"".join([k * b for k, b in zip(keys, blocks, strict=True)]))
    key_cells = key_cells.cast("I")
    slot = bytearray(_LANE_BYTES * lanes)
    slot_cells = memoryview(slot).cast("I")
    state = [c * ones for c in CONSTANTS]
    for w in range(12):
        slot_cells[::2] = key_cells[w::12]
        state.append(int.from_bytes(slot, "little"))
    # Word 12 is the block counter: block n of a message starts from kw[8] + n.
    counters = int.from_bytes(b"".join([_counter_lanes(b) for b in blocks]), "little")
    state[12] = (state[12] + counters) & full
    # Where lanes drop out: after half-round r, the messages with r rounds (the top ones
    # still running) are done. Walk down from the top message to find each cut.
    exits: list[_Exit] = []
    sizes: list[int] = []
    top = lanes
    i = len(blocks) - 1
    most = rounds[0]
    while rounds[i] < most:
        r = rounds[i]
        below = top
        while rounds[i] == r:
            below -= blocks[i]
            i -= 1
        cut = _LANE_BITS * below
        exits.append((r, cut, full & ((1 << cut) - 1)))
        sizes.append(_LANE_BYTES * (top - below))
        top = below
    x, saved = _permute(state, most, full, exits)
    if saved:
        # Put each word back together from its pieces, bottom lanes first.
        low = _LANE_BYTES * top
        x = [
            int.from_bytes(
                b"".join(
                    [x[j].to_bytes(low, "little")]
                    + [s[j].to_bytes(n, "little") for s, n in zip(saved[::-1], sizes[::-1])]
                ),
                "little",
            )
            for j in range(16)
        ]
    return _serialise([(a + s) & full for a, s in zip(x, state, strict=True)], lanes)


def _passes(
    keys: Sequence[bytes], lengths: Sequence[int]
) -> list[tuple[list[int], list[int], bytes]]:
    """Run the messages with a positive length in passes of at most MAX_LANES lanes.

    Returns, per pass, the message indices in lane order, their block counts, and the
    pass's keystream (64 bytes per block, message after message).
    """
    jobs = [
        (_key_rounds(key), i, -(-n // BLOCK_BYTES))
        for i, (key, n) in enumerate(zip(keys, lengths, strict=True))
        if n > 0
    ]
    # Most rounds first (ties keep their order); consecutive runs share round counts,
    # so a split batch keeps its short-round messages out of the long passes.
    jobs.sort(key=lambda job: -job[0])
    out: list[tuple[list[int], list[int], bytes]] = []
    start = 0
    while start < len(jobs):
        end = start
        lanes = 0
        while end < len(jobs) and (end == start or lanes + jobs[end][2] <= MAX_LANES):
            lanes += jobs[end][2]
            end += 1
        group = jobs[start:end]
        order = [job[1] for job in group]
        blocks = [job[2] for job in group]
        stream = _blocks_pass([keys[i] for i in order], blocks, [job[0] for job in group])
        out.append((order, blocks, stream))
        start = end
    return out


def gnarly_keystream(key: bytes, length: int) -> bytes:
    """The first `length` keystream bytes for a 48-byte key."""
    if length <= 0:
        return b""
    rounds = _key_rounds(key)
    blocks = -(-length // BLOCK_BYTES)
    return _blocks_pass((key,), (blocks,), (rounds,))[:length]


def gnarly_keystreams(requests: Sequence[tuple[bytes, int]]) -> list[bytes]:
    """The keystreams for many (key, length) pairs, the same as gnarly_keystream on each.

    The blocks of all the messages share passes of lane-packed arithmetic, which costs
    much less per message than one call each. A bad key raises ValueError, as alone.
    """
    keys = [key for key, _ in requests]
    lengths = [n for _, n in requests]
    result = [b""] * len(requests)
    for order, blocks, stream in _passes(keys, lengths):
        offset = 0
        for i, b in zip(order, blocks, strict=True):
            result[i] = stream[offset : offset + lengths[i]]
            offset += BLOCK_BYTES * b
    return result


def gnarly_xor(key: bytes, data: bytes) -> bytes:
    """Encrypt or decrypt `data` (XOR with the keystream, the same both ways)."""
    n = len(data)
    if n == 0:
        return b""
    stream = gnarly_keystream(key, n)
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def gnarly_xor_many(items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """gnarly_xor on many (key, data) pairs at once, with one XOR per pass."""
    keys = [key for key, _ in items]
    datas = [data for _, data in items]
    result = [b""] * len(items)
    for order, blocks, stream in _passes(keys, [len(d) for d in datas]):
        # The data of the pass laid out like its keystream: each message zero-padded
        # to whole blocks.
        parts: list[bytes] = []
        for i, b in zip(order, blocks, strict=True):
            parts.append(datas[i])
            parts.append(_ZEROS[: BLOCK_BYTES * b - len(datas[i])])
        size = len(stream)
        mixed = int.from_bytes(b"".join(parts), "little") ^ int.from_bytes(stream, "little")
        text = mixed.to_bytes(size, "little")
        offset = 0
        for i, b in zip(order, blocks, strict=True):
            result[i] = text[offset : offset + len(datas[i])]
            offset += BLOCK_BYTES * b
    return result
