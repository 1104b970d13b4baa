"""Parquet encodings the writer produces, compiled: DELTA_BINARY_PACKED integers and RLE
definition levels (the formats of the Parquet specification's ``Encodings.md``).

Both write into a byte buffer the caller sizes with :func:`delta_bound` / :func:`levels_bound`
and return how many bytes they wrote. They release the GIL: the writer's thread encodes while
the scoring thread goes on.
"""

from __future__ import annotations

import numpy as np

from ...kernels.jit import strict_jit

#: Values of a DELTA_BINARY_PACKED block, and its miniblocks (of 32 values each).
BLOCK_VALUES = 128
MINIBLOCKS = 4
MINIBLOCK_VALUES = BLOCK_VALUES // MINIBLOCKS


def delta_bound(n: int, bits: int) -> int:
    """Bytes :func:`delta_binary_packed` may write for ``n`` values of ``bits`` bits: the header,
    then per block a minimum delta, its miniblocks' widths and at most ``bits`` bits a value."""
    blocks = -(-max(n - 1, 0) // BLOCK_VALUES)
    return 4 * 10 + blocks * (10 + MINIBLOCKS + BLOCK_VALUES * bits // 8)


def levels_bound(n: int) -> int:
    """Bytes :func:`rle_levels` may write for ``n`` levels: a run of one level takes two bytes,
    longer runs fewer a level."""
    return 2 * n + 8


@strict_jit
def _uleb128(out, at, value):
    """Write the unsigned varint ``value`` (uint64) at ``out[at]``; return the next position."""
    while value >= np.uint64(0x80):
        out[at] = np.uint8((value & np.uint64(0x7F)) | np.uint64(0x80))
        value >>= np.uint64(7)
        at += 1
    out[at] = np.uint8(value)
    return at + 1


@strict_jit
def _zigzag(value):
    """ZigZag of an int64: 0, -1, 1, -2, ... as 0, 1, 2, 3, ... (uint64)."""
    return (np.uint64(value) << np.uint64(1)) ^ np.uint64(value >> 63)


@strict_jit
def _pack(values, width, out, at):
    """Bit-pack :data:`MINIBLOCK_VALUES` ``values`` (uint64, each < 2**width) at ``out[at]``,
    least significant bit first, 64 bits at a time; return the next position."""
    word = np.uint64(0)
    filled = 0  # bits of ``word`` in use
    for j in range(MINIBLOCK_VALUES):
        value = values[j]
        word |= value << np.uint64(filled)
        filled += width
        if filled >= 64:
            for b in range(8):
                out[at + b] = np.uint8((word >> np.uint64(8 * b)) & np.uint64(0xFF))
            at += 8
            filled -= 64
            # the value's bits that did not fit (none when it ended the word)
            word = value >> np.uint64(width - filled) if filled > 0 else np.uint64(0)
    for b in range(filled // 8):  # 32 values of an odd width end half-way through a word
        out[at + b] = np.uint8((word >> np.uint64(8 * b)) & np.uint64(0xFF))
    return at + filled // 8


@strict_jit(forceinline=True)
def _mask(bits):
    """The low ``bits`` bits set (uint64): a column's values wrap at its width."""
    return ~np.uint64(0) if bits == 64 else (np.uint64(1) << np.uint64(bits)) - np.uint64(1)


@strict_jit(forceinline=True)
def _wrapped_delta(current, previous, k):
    """``current[k] - previous[k]`` of any signed integers, sign-extended to 64 bits, wrapping
    (uint64): the delta's bits, to be masked or read as signed (:func:`_signed`)."""
    return np.uint64(np.int64(current[k])) - np.uint64(np.int64(previous[k]))


@strict_jit(forceinline=True)
def _signed(delta, bits):
    """A wrapped delta (uint64) read as a signed value of ``bits`` = 32 or 64 bits (int64)."""
    return np.int64(delta) if bits == 64 else np.int64(np.int32(np.uint32(delta)))


@strict_jit
def _block(current, previous, bits, packed):
    """One block's deltas ``current[k] - previous[k]`` (wrapping at ``bits`` bits, read as
    signed) less their minimum into ``packed`` (zeros after them: the last miniblock's padding);
    returns the minimum. The arrays are views from 0, so Numba adds no negative-index checks and
    the loops vectorise (four times faster than indexing the whole column)."""
    m = current.shape[0]
    smallest = np.int64(0)
    for k in range(m):
        delta = _signed(_wrapped_delta(current, previous, k), bits)
        smallest = delta if k == 0 else min(smallest, delta)
    mask = _mask(bits)
    for k in range(m):
        delta = _signed(_wrapped_delta(current, previous, k), bits)
        packed[k] = (np.uint64(delta) - np.uint64(smallest)) & mask
    for k in range(m, packed.shape[0]):
        packed[k] = 0
    return smallest


@strict_jit
def _constant_delta(current, previous, bits, delta):
    """Whether every delta ``current[k] - previous[k]`` (wrapping at ``bits`` bits) is
    ``delta``'s bits: a compare a value, which vectorises (row numbers and ids counting up)."""
    mask = _mask(bits)
    differ = 0
    for k in range(current.shape[0]):
        differ += (_wrapped_delta(current, previous, k) & mask) != delta
    return differ == 0


@strict_jit
def _width(values):
    """The bit length of the largest of ``values`` (uint64)."""
    used = np.uint64(0)
    for k in range(values.shape[0]):
        used |= values[k]
    width = 0
    while width < 64 and (used >> np.uint64(width)) != np.uint64(0):
        width += 1
    return width


@strict_jit
def _extend_bounds(values, low, high):
    """``(min, max)`` of ``low``, ``high`` and ``values`` read as int64 (a pass that vectorises)."""
    for k in range(values.shape[0]):
        value = np.int64(values[k])
        low = min(low, value)
        high = max(high, value)
    return low, high


@strict_jit
def delta_binary_packed(values, bits, out):
    """DELTA_BINARY_PACKED of ``values`` (signed integers of any width holding each value of a
    column of ``bits`` = 32 or 64 bits, sign-extended to int64 as they are read: no int64 copy
    of a narrow column) into ``out``; returns the bytes written and the smallest and largest of
    ``values`` read as int64 (``0, 0`` when empty): each block's values are read again for them
    while in the cache, where NumPy's ``min`` and ``max`` of the page read it from memory twice
    more (20M rows of row numbers and ids: 0.15 s of the writer thread).

    Header: block size (128), miniblocks a block (4), value count, first value (ZigZag). Each
    block of 128 deltas ``d_i = v_i - v_{i-1}`` (wrapping at ``bits`` bits, read as signed):
    their minimum ``m`` (ZigZag), one byte a miniblock giving its width ``w`` (the bit length of
    its largest ``d_i - m``), then each miniblock's ``d_i - m`` in ``w`` bits (32 of them, the
    last miniblock padded with zeros; miniblocks after the last value take no bytes).
    """
    n = values.shape[0]
    at = _uleb128(out, 0, np.uint64(BLOCK_VALUES))
    at = _uleb128(out, at, np.uint64(MINIBLOCKS))
    at = _uleb128(out, at, np.uint64(n))
    at = _uleb128(out, at, _zigzag(np.int64(values[0]) if n > 0 else np.int64(0)))
    packed = np.zeros(BLOCK_VALUES, np.uint64)
    mask = _mask(bits)
    low = high = np.int64(values[0]) if n > 0 else np.int64(0)
    i = 1
    while i < n:
        m = min(BLOCK_VALUES, n - i)
        current, previous = values[i : i + m], values[i - 1 : i - 1 + m]
        low, high = _extend_bounds(current, low, high)
        # a block of one delta (consecutive row numbers, ids) packs to nothing: its minimum and
        # four widths of 0, written without the general path's passes (1M consecutive int64:
        # 0.27 ms rather than 0.63, AMD Zen 3)
        first = _wrapped_delta(current, previous, 0) & mask
        if _constant_delta(current, previous, bits, first):
            at = _uleb128(out, at, _zigzag(_signed(first, bits)))
            for b in range(MINIBLOCKS):
                out[at + b] = 0
            at += MINIBLOCKS
            i += m
            continue
        smallest = _block(current, previous, bits, packed)
        at = _uleb128(out, at, _zigzag(smallest))
        widths_at = at
        at += MINIBLOCKS
        for b in range(MINIBLOCKS):
            lo = b * MINIBLOCK_VALUES
            width = _width(packed[lo : lo + MINIBLOCK_VALUES]) if lo < m else 0
            out[widths_at + b] = width
            if width > 0:
                at = _pack(packed[lo : lo + MINIBLOCK_VALUES], width, out, at)
        i += m
    return at, low, high


@strict_jit
def rle_levels(valid, out):
    """Definition levels 0/1 (``valid``, uint8) as RLE runs of bit width 1 into ``out``: each run
    its length shifted left by one (a varint), then its level in one byte. Returns the bytes
    written."""
    n = valid.shape[0]
    at = 0
    i = 0
    while i < n:
        level = valid[i]
        j = i + 1
        while j < n and valid[j] == level:
            j += 1
        at = _uleb128(out, at, np.uint64(j - i) << np.uint64(1))
        out[at] = level
        at += 1
        i = j
    return at
