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
# Lanes per pass; a wider batch is split into passes of at most this many lanes (a
# message is never split). Measured on CPython 3.11 with 4-block messages: the cost
# per lane falls steeply up to about 256 lanes, stays flat from 512 to 2048, and rises
# again from 4096 on, when the 16 words and their temporaries outgrow the CPU caches.
MAX_LANES = 1024

# (half-round, finished lanes' mask, running lanes' mask), see _permute.
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
    """round_count(key_words(key)), read straight from the bytes.

    Each word's low byte is every fourth byte of the key, so a C-level translate and
    sum replace the Python loop over the words.
    """
    if len(key) != KEY_LENGTH:
        raise ValueError(f"an X-Gnarly key has {KEY_LENGTH} bytes, got {len(key)}")
    return 5 + sum(key[::4].translate(_LOW_NIBBLE)) % 16


@lru_cache(maxsize=64)
def _lanes(blocks: int) -> tuple[int, int]:
    """(1 in every lane, 0xFFFFFFFF in every lane) for this many lanes."""
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

    `m` has 0xFFFFFFFF in every running lane. After half-round `stop` of each
    (stop, done, mask) in `exits` (in increasing order), the lanes that `done` covers
    have finished: their 16 words are saved (the words masked with `done`, so each lane
    keeps its place) and `m` becomes `mask`, which keeps only the lanes still running.
    Returns the final words of the lanes that ran to the end, and the saved words of
    each exit in order; OR-ing them all together gives every lane's final words.
    """
    x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = state
    saved: list[tuple[int, ...]] = []
    pending = iter(exits)
    stop, done, narrow = next(pending, (0, 0, 0))
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
                x0 & done, x1 & done, x2 & done, x3 & done,
                x4 & done, x5 & done, x6 & done, x7 & done,
                x8 & done, x9 & done, x10 & done, x11 & done,
                x12 & done, x13 & done, x14 & done, x15 & done,
            ))
            # fmt: on
            m = narrow
            # Every half-round rewrites each word through `& m`, so the dropped lanes
            # vanish from a word when it is next written, except words 8 and 9, which the
            # diagonal round leaves alone: narrow those two now.
            x8 &= m
            x9 &= m
            stop, done, narrow = next(pending, (0, 0, 0))
    return [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15], saved


def _serialise(out: list[int], lanes: int) -> bytes:
    """The keystream of lane-packed output words: 64 bytes per lane, lane after lane.

    Words are converted two at a time, the odd one moved into the empty upper halves of
    the lanes: word j of lane n is then cell 2n (or 2n + 1 for odd j) of the pair's bytes
    and goes to cell 16n + j of the stream. Only raw 4-byte cells are copied, so the
    host's byte order plays no part.
    """
    stream = bytearray(BLOCK_BYTES * lanes)
    cells = memoryview(stream).cast("I")
    width = _LANE_BYTES * lanes
    for j in range(0, 16, 2):
        pair = memoryview((out[j] | (out[j + 1] << 32)).to_bytes(width, "little")).cast("I")
        cells[j::16] = pair[::2]
        cells[j + 1 :: 16] = pair[1::2]
    return bytes(stream)


def _blocks_pass(keys: Sequence[bytes], blocks: Sequence[int], rounds: Sequence[int]) -> bytes:
    """The keystream blocks of several messages in one pass, laid end to end.

    Message i has keys[i], needs blocks[i] blocks and rounds[i] half-rounds; rounds must
    not increase along the list, so the messages that stop first hold the top lanes.
    """
    lanes = sum(blocks)
    ones, full = _lanes(lanes)
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
    running = full
    left = lanes
    i = len(blocks) - 1
    most = rounds[0]
    while rounds[i] < most:
        r = rounds[i]
        while rounds[i] == r:
            left -= blocks[i]
            i -= 1
        narrow = running & ((1 << (_LANE_BITS * left)) - 1)
        exits.append((r, running ^ narrow, narrow))
        running = narrow
    x, saved = _permute(state, most, full, exits)
    for words in saved[::-1]:
        x = [a | b for a, b in zip(x, words, strict=True)]
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
    # One message has its own, leaner set-up and read-out: with a few lanes, the
    # per-call overhead of the batched path's buffers would cost more than it saves.
    words = key_words(key)
    blocks = -(-length // BLOCK_BYTES)
    ones, m = _lanes(blocks)
    state = [c * ones for c in CONSTANTS] + [w * ones for w in words]
    # Word 12 is the block counter: block n starts from kw[8] + n.
    k8 = words[8]
    state[12] = sum(((k8 + n) & _U32) << (_LANE_BITS * n) for n in range(blocks))
    x, _ = _permute(state, round_count(words), m)
    width = _LANE_BYTES * blocks
    out = [((a + s) & m).to_bytes(width, "little") for a, s in zip(x, state, strict=True)]
    # Laid end to end, the output words give 32-bit cells in the order (word, block,
    # low/high half); block n is then every (2 * blocks)-th cell from cell 2n. Only
    # raw 4-byte cells are copied, so the host's byte order plays no part.
    cells = memoryview(b"".join(out)).cast("I")
    step = 2 * blocks
    stream = b"".join([cells[2 * n :: step].tobytes() for n in range(blocks)])
    return stream[:length]


def gnarly_keystreams(requests: Sequence[tuple[bytes, int]]) -> list[bytes]:
    """The keystreams for many (key, length) pairs, the same as gnarly_keystream on each.

    The blocks of all the messages share passes of lane-packed arithmetic, which costs
    much less per message than one call each. A bad key raises ValueError, as alone.
    """
    if len(requests) == 1:
        return [gnarly_keystream(*requests[0])]
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
    if len(items) == 1:
        return [gnarly_xor(*items[0])]
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
