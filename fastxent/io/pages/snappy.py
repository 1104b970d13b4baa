"""Snappy decompression in Numba: Parquet's SNAPPY pages decompressed without the GIL, inside the
call that decodes them.

A page is one raw snappy block: its uncompressed length (a varint), then elements, each a
literal (tag ``00``: the length in the tag's upper six bits, or in the 1-4 bytes after it) or a
copy of earlier output (tags ``01``, ``10``, ``11``: a length and an offset of 1, 2 or 4 bytes).
Every read and write is checked against the ends given: bytes that are not a valid block give
-1, never a read or write outside them.
"""

from __future__ import annotations

import numpy as np

from . import decode
from .jitting import checked_jit
from .thrift import varint

#: Elements at least this long are copied as slices (vectorised), shorter ones byte by byte.
_LONG = 16


@checked_jit
def _copy_back(out, at, offset, length):
    """``length`` bytes at ``out[at:]`` from ``offset`` bytes back: a pattern of period
    ``offset`` where the two overlap, copied in pieces that double in length."""
    source = at - offset
    if length < _LONG:
        for j in range(length):
            out[at + j] = out[source + j]
        return
    while length > 0:
        piece = min(length, at - source)  # out[source:at] is already the pattern
        decode.copy(out[source : source + piece], out[at : at + piece])
        at += piece
        length -= piece


@checked_jit
def decompress(src, pos, end, out, out_pos, out_end):
    """Decompress the snappy block at ``src[pos:end]`` into ``out[out_pos:out_end]``. Returns the
    bytes written (the block's own uncompressed length), or -1 if the bytes are not a valid block
    that fits there."""
    if pos < 0 or end > src.shape[0] or out_pos < 0 or out_end > out.shape[0]:
        return -1
    start = pos
    size, pos = varint(src, pos, end)
    if pos < 0 or pos - start > 5 or size > 0xFFFFFFFF or size > out_end - out_pos:
        return -1  # the length is a varint of at most 32 bits
    at, stop = out_pos, out_pos + size
    while pos < end:
        tag = np.int64(src[pos])
        pos += 1
        kind = tag & 3
        if kind == 0:  # a literal
            length = tag >> 2
            if length >= 60:  # its length - 1 in the next 1-4 bytes
                extra = length - 59
                if extra > end - pos:
                    return -1
                length = 0
                for k in range(extra):
                    length |= np.int64(src[pos + k]) << (8 * k)
                pos += extra
            length += 1
            if length > end - pos or length > stop - at:
                return -1
            if length < _LONG:
                for j in range(length):
                    out[at + j] = src[pos + j]
            else:
                decode.copy(src[pos : pos + length], out[at : at + length])
            pos += length
            at += length
            continue
        if kind == 1:  # length 4-11, an 11-bit offset
            if pos >= end:
                return -1
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | np.int64(src[pos])
            pos += 1
        elif kind == 2:  # length 1-64, a 2-byte offset
            if end - pos < 2:
                return -1
            length = (tag >> 2) + 1
            offset = np.int64(src[pos]) | (np.int64(src[pos + 1]) << 8)
            pos += 2
        else:  # length 1-64, a 4-byte offset
            if end - pos < 4:
                return -1
            length = (tag >> 2) + 1
            offset = 0
            for k in range(4):
                offset |= np.int64(src[pos + k]) << (8 * k)
            pos += 4
        if offset == 0 or offset > at - out_pos or length > stop - at:
            return -1
        _copy_back(out, at, offset, length)
        at += length
    return size if at == stop else -1
