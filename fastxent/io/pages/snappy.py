"""Raw snappy blocks (Parquet's SNAPPY codec) decompressed in Numba, without the GIL.

A block is a varint (the uncompressed length, at most 32 bits), then elements, each starting with
a tag byte whose low two bits give its kind:

- ``00`` a literal, the bytes that follow: its length less one is the tag's upper six bits when
  they are below 60; 60 to 63 say that the length less one follows in 1 to 4 bytes, little-endian.
- ``01`` a copy of 4 to 11 bytes (three bits of the tag, plus 4) from an 11-bit offset back (the
  tag's top three bits above the next byte).
- ``10`` and ``11`` a copy of 1 to 64 bytes (the tag's upper six bits, plus 1) from an offset
  back in the next 2 or 4 bytes, little-endian.

An offset counts back from the next byte to write, and a copy goes one byte after the other: an
offset below the copy's length repeats the last ``offset`` bytes (offset 1 is a run of one byte).

The bytes are untrusted: every read is checked against the input's end, every write against the
length the block gives, every copy against the start of the output; a block that is not valid
gives -1, never a read or a write outside the ranges given. Most elements are a few bytes long,
so those are moved as whole 8-byte words (one load and one store each, running past the element
into bytes the next elements overwrite) where the input and output have the room; long literals
and copies are plain loops that LLVM vectorises.
"""

from __future__ import annotations

import numpy as np

from .jitting import checked_jit

#: The longest preamble: a varint of a 32-bit length.
PREAMBLE_BYTES = 5
#: Elements up to this long are moved as this many bytes (two words) where both arrays have the
#: room: most elements, on one path without a loop.
SHORT = 16
#: The longest element moved a word at a time where there is room (a copy's longest).
WORDS_UP_TO = 64


@checked_jit
def _preamble(src, pos, end):
    """``(uncompressed length, position after it)``; position -1 when the bytes end first, or the
    varint runs past 5 bytes or 32 bits (snappy's limits)."""
    value = 0
    shift = 0
    while pos < end and shift < 7 * PREAMBLE_BYTES:
        byte = np.int64(src[pos])
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, (pos if value <= 0xFFFFFFFF else -1)
        shift += 7
    return value, -1


@checked_jit
def little_endian(src, pos, size):
    """The ``size``-byte little-endian unsigned integer at ``src[pos:pos + size]``."""
    value = 0
    for k in range(size):
        value |= np.int64(src[pos + k]) << (8 * k)
    return value


@checked_jit
def copy_bytes(dst, d, src, s, n):
    """``dst[d:d + n] = src[s:s + n]`` for ranges that do not overlap (``src`` may be ``dst``).

    A plain loop LLVM vectorises (checking at run time that the ranges do not overlap). Unsigned
    indices: with a signed one Numba wraps negative indices around, a select per byte that kept
    the loop scalar and 30 times slower on long literals."""
    for i in range(n):
        dst[np.uint64(d + i)] = src[np.uint64(s + i)]


@checked_jit
def _load64(src, s):
    """The 8 bytes at ``src[s:s + 8]`` as a little-endian word (LLVM makes this one load)."""
    value = np.uint64(0)
    for k in range(8):
        value |= np.uint64(src[np.uint64(s + k)]) << np.uint64(8 * k)
    return value


@checked_jit
def _store64(dst, d, value):
    """``dst[d:d + 8]``: the little-endian bytes of ``value`` (LLVM makes this one store)."""
    for k in range(8):
        dst[np.uint64(d + k)] = np.uint8((value >> np.uint64(8 * k)) & np.uint64(0xFF))


@checked_jit
def _words(dst, d, src, s, n):
    """``dst[d:d + n] = src[s:s + n]`` a word at a time, each word read before it is written.

    The caller has room for the bytes up to the next multiple of 8 in both arrays, and when
    ``src`` is ``dst``, ``s`` at least 8 bytes before ``d``: a word then reads only bytes that were
    written before it, as the byte-by-byte copy would have read them."""
    for i in range(0, n, 8):
        _store64(dst, d + i, _load64(src, s + i))


@checked_jit
def _short(dst, d, src, s):
    """``_words(dst, d, src, s, 16)`` written out: the move of most elements, small enough for
    LLVM to inline (a call costs more than the move: Numba counts references to the arrays it
    passes)."""
    _store64(dst, d, _load64(src, s))
    _store64(dst, d + 8, _load64(src, s + 8))


@checked_jit
def _pattern(out, d, offset, n):
    """The copy of ``n`` bytes from an ``offset`` below 8, given room for 7 bytes past ``d + n`` (the
    last word stored starts before ``d + n``).

    The ``offset`` bytes before ``d`` are a period of what the copy writes, so they are doubled
    in a word until it holds 8 bytes of it, and the word stored every whole number of periods."""
    word = _load64(out, d - offset)
    word &= (np.uint64(1) << np.uint64(8 * offset)) - np.uint64(1)  # the bytes from d: not yet
    held = offset
    while held < 8:
        word |= word << np.uint64(8 * held)
        held *= 2
    step = offset * (8 // offset)
    for i in range(0, n, step):
        _store64(out, d + i, word)


@checked_jit
def _repeat(out, d, offset, n):
    """The copy of ``n`` bytes from ``offset`` back, with no room past its end.

    In chunks that do not overlap, from ``d - offset`` onwards: the bytes written so far repeat
    with a period of ``offset``, and the distance between source and destination stays a whole
    number of periods while it doubles with each chunk."""
    s = d - offset
    while n > 0:
        step = min(d - s, n)
        copy_bytes(out, d, out, s, step)
        d += step
        n -= step


@checked_jit
def decompress(src, pos, end, out, out_pos, out_end):
    """Decompress the raw snappy block ``src[pos:end]`` (a uint8 array) into
    ``out[out_pos:out_end]`` (a uint8 array that does not overlap it).

    Returns the bytes written, the length in the block's preamble, or -1 when the bytes are not a
    valid block: bounds outside the arrays, a preamble above ``out_end - out_pos``, an element cut
    off by the input's end or running past the preamble's length, a copy from offset 0 or from
    before ``out_pos``, fewer bytes than the preamble says. Only ``out[out_pos:out_pos + length]``
    is written, whether the block is valid or not.
    """
    if pos < 0 or end < pos or end > src.shape[0]:
        return -1
    if out_pos < 0 or out_end < out_pos or out_end > out.shape[0]:
        return -1
    length, pos = _preamble(src, pos, end)
    if pos < 0 or length > out_end - out_pos:
        return -1
    limit = out_pos + length  # no write reaches it: an element that would is invalid anyway
    d = out_pos
    while pos < end:
        tag = np.int64(src[pos])
        pos += 1
        if tag & 3 == 0:  # a literal
            n = (tag >> 2) + 1
            if n > 60:  # its length follows in n - 60 bytes
                size = n - 60
                if size > end - pos:
                    return -1
                n = little_endian(src, pos, size) + 1
                pos += size
            if n > end - pos or n > limit - d:
                return -1
            if n <= SHORT and end - pos >= SHORT and limit - d >= SHORT:  # the bytes past it: junk
                _short(out, d, src, pos)
            elif n <= WORDS_UP_TO and (n + 7) & ~7 <= min(end - pos, limit - d):
                _words(out, d, src, pos, n)
            else:
                copy_bytes(out, d, src, pos, n)
            pos += n
            d += n
            continue
        if tag & 3 == 1:  # a copy with an 11-bit offset
            if end - pos < 1:
                return -1
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | np.int64(src[pos])
            pos += 1
        else:  # a copy with a 2- or 4-byte offset
            n = (tag >> 2) + 1
            if end - pos < 2:
                return -1
            offset = np.int64(src[pos]) | (np.int64(src[pos + 1]) << 8)
            pos += 2
            if tag & 3 == 3:
                if end - pos < 2:
                    return -1
                offset |= (np.int64(src[pos]) << 16) | (np.int64(src[pos + 1]) << 24)
                pos += 2
        if offset == 0 or offset > d - out_pos or n > limit - d:
            return -1
        room = limit - d
        # a source 8 bytes back or more: a word reads only bytes written before it (a 16-byte
        # move would read the second word before the first is written)
        if offset >= 8 and n <= SHORT and room >= SHORT:
            _short(out, d, out, d - offset)
        elif offset >= 8 and (n + 7) & ~7 <= room:
            _words(out, d, out, d - offset, n)
        elif offset < 8 and n + 7 <= room:
            _pattern(out, d, offset, n)
        else:  # the last bytes of the output
            _repeat(out, d, offset, n)
        d += n
    if d != limit:
        return -1
    return length
