"""Parquet page headers: the Thrift compact protocol, parsed in Numba from untrusted bytes.

:func:`parse_page_header` reads one ``PageHeader`` struct and fills the slots below with the
fields a reader needs (-1 where a field is absent); every other field (statistics, index pages,
fields added by later versions of the format) is skipped by its type, with an explicit stack
instead of recursion so that nesting is bounded by :data:`MAX_DEPTH`. Every byte read is checked
against the end of the buffer: corrupt or truncated bytes give a negative result, never a read
outside the buffer.
"""

from __future__ import annotations

import numpy as np

from .jitting import checked_jit

# Slots of the array filled by parse_page_header.
TYPE, UNCOMPRESSED, COMPRESSED, CRC, HAS_CRC = 0, 1, 2, 3, 4
NUM_VALUES, ENCODING, DEF_ENCODING, REP_ENCODING = 5, 6, 7, 8
NUM_NULLS, NUM_ROWS, DEF_BYTES, REP_BYTES, IS_COMPRESSED, SUB_HEADER = 9, 10, 11, 12, 13, 14
SLOTS = 15

# PageType, and the PageHeader field holding each page type's own header.
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 1, 2, 3
DATA_HEADER, DICTIONARY_HEADER, DATA_V2_HEADER = 5, 7, 8

#: Deepest nesting of structs and containers skipped (a PageHeader's statistics are at depth 2).
MAX_DEPTH = 16

_STRUCT, _LIST, _MAP = 0, 1, 2
# Compact protocol types.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST_T, _SET_T, _MAP_T, _STRUCT_T = range(
    13
)


@checked_jit
def varint(buf, pos, end):
    """``(value, position after it)``; position -1 when the bytes end first or run past 64 bits."""
    value = np.int64(0)
    shift = 0
    while pos < end:
        byte = np.int64(buf[pos])
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            return value, -1
    return value, -1


@checked_jit
def _zigzag(value):
    return ((value >> 1) & 0x7FFFFFFFFFFFFFFF) ^ -(value & 1)


@checked_jit
def _record(out, depth, owner, field, value):
    """Keep ``value`` of field ``field`` of the PageHeader (depth 0) or of its page header."""
    if depth == 0:
        if field == 1:
            out[TYPE] = value
        elif field == 2:
            out[UNCOMPRESSED] = value
        elif field == 3:
            out[COMPRESSED] = value
        elif field == 4:
            out[CRC] = value & 0xFFFFFFFF  # an i32 on the wire; zlib.crc32 is unsigned
            out[HAS_CRC] = 1
    elif depth == 1:
        if owner in (DATA_HEADER, DICTIONARY_HEADER):
            if field == 1:
                out[NUM_VALUES] = value
            elif field == 2:
                out[ENCODING] = value
            elif field == 3 and owner == DATA_HEADER:
                out[DEF_ENCODING] = value
            elif field == 4 and owner == DATA_HEADER:
                out[REP_ENCODING] = value
        elif owner == DATA_V2_HEADER:
            if field == 1:
                out[NUM_VALUES] = value
            elif field == 2:
                out[NUM_NULLS] = value
            elif field == 3:
                out[NUM_ROWS] = value
            elif field == 4:
                out[ENCODING] = value
            elif field == 5:
                out[DEF_BYTES] = value
            elif field == 6:
                out[REP_BYTES] = value


@checked_jit
def parse_page_header(buf, start, end, out):
    """Parse the PageHeader at ``buf[start:end]`` into ``out`` (int64, :data:`SLOTS` long).

    Returns the header's length in bytes, or -1 if the bytes are no valid compact-protocol struct
    within ``end``. Integer fields are kept only when they have an integer type, the v2 header's
    ``is_compressed`` only as a boolean; a field of another type leaves its slot at -1.
    """
    for i in range(SLOTS):
        out[i] = -1
    out[IS_COMPRESSED] = 1  # the v2 header's default
    kinds = np.zeros(MAX_DEPTH, np.int64)
    last = np.zeros(MAX_DEPTH, np.int64)  # last field id of each struct
    left = np.zeros(MAX_DEPTH, np.int64)  # items left in each container (a map: keys + values)
    first_type = np.zeros(MAX_DEPTH, np.int64)  # a list's element type, a map's key type
    second_type = np.zeros(MAX_DEPTH, np.int64)  # a map's value type
    owner = 0  # the PageHeader field of the struct open at depth 1
    depth = 0
    pos = start
    while True:
        kind = kinds[depth]
        field = -1
        if kind == _STRUCT:
            if pos >= end:
                return -1
            byte = np.int64(buf[pos])
            pos += 1
            typ = byte & 0x0F
            if typ == _STOP:
                if depth == 0:
                    return pos - start
                depth -= 1
                continue
            delta = byte >> 4
            if delta == 0:
                raw, pos = varint(buf, pos, end)
                if pos < 0:
                    return -1
                field = _zigzag(raw)
            else:
                field = last[depth] + delta
            last[depth] = field
        else:
            if left[depth] == 0:
                depth -= 1
                continue
            left[depth] -= 1
            typ = first_type[depth] if kind == _LIST or left[depth] % 2 == 1 else second_type[depth]
        if typ in (_TRUE, _FALSE):
            if kind == _STRUCT:
                value = 1 if typ == _TRUE else 0
            else:  # inside a container a boolean is a byte of its own
                if pos >= end:
                    return -1
                value = 1 if buf[pos] == 1 else 0
                pos += 1
            if kind == _STRUCT and depth == 1 and owner == DATA_V2_HEADER and field == 7:
                out[IS_COMPRESSED] = value
        elif typ == _BYTE:
            if pos >= end:
                return -1
            pos += 1
        elif typ in (_I16, _I32, _I64):
            raw, pos = varint(buf, pos, end)
            if pos < 0:
                return -1
            if kind == _STRUCT and typ != _I16:
                _record(out, depth, owner, field, _zigzag(raw))
        elif typ == _DOUBLE:
            if end - pos < 8:
                return -1
            pos += 8
        elif typ == _BINARY:
            size, pos = varint(buf, pos, end)
            if pos < 0 or size < 0 or size > end - pos:
                return -1
            pos += size
        elif typ in (_LIST_T, _SET_T, _MAP_T, _STRUCT_T):
            if depth + 1 >= MAX_DEPTH:
                return -1
            if typ == _STRUCT_T:
                if kind == _STRUCT and depth == 0:
                    owner = field
                    out[SUB_HEADER] = field
                depth += 1
                kinds[depth] = _STRUCT
                last[depth] = 0
                continue
            if typ == _MAP_T:
                size, pos = varint(buf, pos, end)
                if pos < 0 or size < 0 or 2 * size > end - pos:  # a key and a value: 2 bytes at least
                    return -1
                types = 0
                if size > 0:
                    if pos >= end:
                        return -1
                    types = np.int64(buf[pos])
                    pos += 1
                depth += 1
                kinds[depth] = _MAP
                left[depth] = 2 * size
                first_type[depth] = types >> 4
                second_type[depth] = types & 0x0F
                continue
            if pos >= end:
                return -1
            byte = np.int64(buf[pos])
            pos += 1
            size = byte >> 4
            if size == 15:
                size, pos = varint(buf, pos, end)
                if pos < 0:
                    return -1
            if size < 0 or size > end - pos:  # every element takes a byte at least
                return -1
            depth += 1
            kinds[depth] = _LIST
            left[depth] = size
            first_type[depth] = byte & 0x0F
        else:
            return -1
