"""Opening the pages of one column chunk, in Numba: headers parsed, CRCs checked, pages
decompressed, levels and values decoded, without the GIL.

:func:`open_page` reads pages from the chunk position kept in a state array until it has opened
a data page: a dictionary page on the way is decoded into the chunk's dictionary, an index page
skipped. An open data page is its ``count`` levels (definition and repetition levels decoded
into scratch arrays where the column has them; of a list page without nulls or empty lists,
only the levels where rows start: :func:`.decode.row_starts`) and its present values, either still in the
page's bytes (PLAIN values of a page without nulls: copied once, straight into the batch) or
decoded into a typed scratch array. :mod:`.takes` copies rows out of open pages.

A page's CRC, where written, is checked once, when the page is opened, before anything reads
its bytes (:func:`.checksum.page_crc32`: zlib-ng's, called from here). Whatever Numba cannot do
itself it asks of Python and returns: bytes beyond the window of the file it was given (files
are read in windows), a page of a codec other than snappy decompressed (``cramjam``, without
the GIL); or a scratch array or the dictionary of the right size. The state is only advanced
once a page is open, so Python answers and calls again.
Damaged bytes give a negative status, never a read outside the arrays it is given: bounds come
from the footer (which pyarrow has parsed and checked) and every read is checked against them.
"""

from __future__ import annotations

import numpy as np

from . import decode, thrift
from .checksum import page_crc32
from .in_place import IN_PLACE_LEVEL_BYTES, back_to_buffer, in_place_values
from .jitting import checked_jit
from .protocol import (
    AS_CODES,
    AS_FLOAT,
    AT,
    AT_END,
    BAD_CODEC,
    BAD_CRC,
    BAD_HEADER,
    BAD_INDICES,
    BAD_LEVELS,
    BAD_SIZES,
    BAD_TYPE,
    BY_PYTHON,
    BYTE_STREAM_SPLIT,
    CODEC,
    COUNT,
    DEFS,
    DICTIONARY,
    END,
    FULL,
    IN_BYTES,
    IN_INDICES,
    IN_PLACE,
    IN_VALUES,
    IN_WINDOW,
    INDICES,
    IS_BOOL,
    IS_LIST,
    LARGEST,
    LEVEL,
    NEED,
    NEED_AT,
    NEED_BUFFER,
    NEED_BYTES,
    NEED_DECOMPRESS,
    NEED_DICTIONARY,
    NEED_SCRATCH,
    NEED_SIZE,
    NEXT_START,
    NO_DICTIONARY,
    NOT_AS_FLOAT,
    OK,
    PLAIN,
    PLAIN_DICTIONARY,
    POS,
    PREPARED,
    PRESENT,
    REPS,
    RLE,
    RLE_DICTIONARY,
    SHORT_DICTIONARY,
    SHORT_VALUES,
    SNAPPY,
    SOURCE,
    STARTS,
    TOO_FEW_VALUES,
    TOO_MANY_VALUES,
    TOP,
    UNCOMPRESSED,
    UNCOMPRESSED_SIZE,
    UNSUPPORTED_DICTIONARY,
    UNSUPPORTED_LEVELS,
    UNSUPPORTED_VALUES,
    VALUE,
    VALUES,
    VALUES_AT,
    VALUES_LEFT,
    VERIFIED,
    WIDTH,
)
from .snappy import decompress as snappy_decompress

#: Bytes first asked for a page header; more when the header (long statistics) is larger.
HEADER_BYTES = 1 << 10


@checked_jit
def row_start_room(reps):
    """The repetition levels' scratch array as int32 row starts (:func:`decode.row_starts`):
    a list page asks for 4 bytes a level."""
    return reps[: reps.shape[0] // 4 * 4].view(np.int32)


@checked_jit
def _need_scratch(state, count, wanted):
    """Ask for the scratch arrays in the mask ``wanted``, ``count`` values each."""
    state[NEED] = count
    state[NEED_SIZE] = wanted
    return NEED_SCRATCH


@checked_jit
def _plain_bytes(window, base, page_buf, state, params, at, body, size, full):
    """The decompressed bytes of the page body at file offset ``body`` (``size`` bytes,
    ``full`` decompressed): ``(status, in_window, start)``, the bytes being
    ``[start, start + full)`` of the window (uncompressed pages) or of the page buffer."""
    codec = params[CODEC]
    if codec == UNCOMPRESSED:
        if size != full:
            return UNCOMPRESSED_SIZE, 0, 0
        return OK, 1, body - base
    if codec == BY_PYTHON:
        if state[PREPARED] == at:
            return OK, 0, 0
        state[NEED_AT] = body
        state[NEED_SIZE] = size
        state[NEED] = full
        return NEED_DECOMPRESS, 0, 0
    if page_buf.shape[0] < full:
        state[NEED] = full
        return NEED_BUFFER, 0, 0
    if snappy_decompress(window, body - base, body - base + size, page_buf, 0, full) != full:
        return BAD_CODEC, 0, 0
    return OK, 0, 0


@checked_jit
def _levels(src, pos, end, count, level, prefixed, shortcut, out):
    """``count`` levels up to ``level`` (RLE, a 4-byte length first where ``prefixed``) at
    ``src[pos:end]`` into ``out``: ``(position after them, 1 if every level is ``level``)``;
    position -1 for bytes that are not such levels. With ``shortcut``, levels that are one run
    of ``level`` (a page without nulls) are not written to ``out``."""
    if prefixed:
        pos, end = length_prefixed(src, pos, end)
        if pos < 0:
            return -1, 0
    width = 0
    while (1 << width) <= level:
        width += 1
    if shortcut and decode.one_run(src, pos, end, width, count) == level:
        return end, 1  # a page without nulls: its levels need no decoding
    if decode.decode_hybrid(src, pos, end, width, count, level, out) < 0:
        return -1, 0
    return end, 0


@checked_jit
def length_prefixed(src, pos, end):
    """``(start, end)`` of the bytes after the 4-byte little-endian length at ``src[pos]`` (v1
    pages' levels, v2 pages' RLE booleans); ``(-1, -1)`` if they run past ``end``."""
    if pos < 0 or end - pos < 4:
        return -1, -1
    length = 0
    for k in range(4):
        length |= np.int64(src[pos + k]) << (8 * k)
    if length > end - pos - 4:
        return -1, -1
    return pos + 4, pos + 4 + length


@checked_jit
def _values(src, pos, end, encoding, present, params, state, dictionary, idx, vals):
    """Decode the ``present`` values at ``src[pos:end]`` of ``encoding``: into ``vals``, or
    dictionary indices into ``idx``, or PLAIN values left where they are (``state[SOURCE]``).
    Returns a status."""
    width = params[WIDTH]
    state[SOURCE] = IN_VALUES
    if encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY):
        if state[DICTIONARY] < 0:
            return NO_DICTIONARY
        if present == 0:
            return OK
        if end - pos < 1:
            return BAD_INDICES
        limit = state[DICTIONARY] - 1
        if decode.decode_hybrid(src, pos + 1, end, np.int64(src[pos]), present, limit, idx) < 0:
            return BAD_INDICES
        state[SOURCE] = IN_INDICES
        return OK
    if params[AS_FLOAT] == 1:  # given as float32 from its dictionary only (layout.as_float)
        return NOT_AS_FLOAT
    if params[AS_CODES] == 1:  # strings: their dictionary's codes only (layout.codes)
        return UNSUPPORTED_VALUES
    if params[IS_BOOL] == 1:
        if encoding == PLAIN:
            return OK if decode.unpack_booleans(src, pos, end, present, vals) >= 0 else SHORT_VALUES
        if encoding == RLE:  # booleans of v2 pages: a 4-byte length first
            return OK if _levels(src, pos, end, present, 1, True, False, vals)[0] >= 0 else BAD_LEVELS
        return UNSUPPORTED_VALUES
    if present * width > end - pos:
        return SHORT_VALUES
    if encoding == PLAIN:
        state[SOURCE] = IN_BYTES
        state[VALUES_AT] = pos
        return OK
    if encoding == BYTE_STREAM_SPLIT:
        return OK if decode.unsplit(src, pos, end, width, present, vals) >= 0 else SHORT_VALUES
    return UNSUPPORTED_VALUES


@checked_jit
def read_header(window, base, state, header):
    """Parse the page header at ``state[POS]``: ``(status, length)``."""
    pos, end = state[POS], state[END]
    have = min(end, base + window.shape[0]) - pos
    if pos < base or have <= 0:
        state[NEED_AT] = pos
        state[NEED_SIZE] = min(HEADER_BYTES, end - pos)
        return NEED_BYTES, 0
    length = thrift.parse_page_header(window, pos - base, pos - base + have, header)
    if length > 0:
        return OK, length
    if have >= end - pos:
        return BAD_HEADER, 0
    state[NEED_AT] = pos
    state[NEED_SIZE] = min(max(HEADER_BYTES, 4 * have), end - pos)
    return NEED_BYTES, 0


@checked_jit
def dictionary_bytes(count, full, params):
    """The bytes of the dictionary of ``count`` values whose page holds ``full`` bytes: its values,
    then with ``params[AS_FLOAT]`` the same values as float32; strings (``params[AS_CODES]``),
    the codes 0, 1, ... (int32), then the page's bytes, to a multiple of 4."""
    if params[AS_CODES] == 1:
        return 4 * count + 4 * ((full + 3) // 4)
    return count * (params[WIDTH] + 4 * params[AS_FLOAT])


@checked_jit
def _dictionary_page(window, base, state, params, page_buf, dictionary, header, body):
    """Read the dictionary page whose body is at ``body`` into ``dictionary`` (which Python sizes
    first, :func:`dictionary_bytes`) and move past it. Returns a status."""
    count, size, full = header[thrift.NUM_VALUES], header[thrift.COMPRESSED], header[thrift.UNCOMPRESSED]
    if header[thrift.ENCODING] not in (PLAIN, PLAIN_DICTIONARY) or params[IS_BOOL] == 1:
        return UNSUPPORTED_DICTIONARY
    if count < 0:
        return SHORT_DICTIONARY
    codes = params[AS_CODES] == 1
    if dictionary.shape[0] != dictionary_bytes(count, full, params):
        state[NEED] = count
        state[NEED_SIZE] = full
        return NEED_DICTIONARY
    status, in_window, start = _plain_bytes(
        window, base, page_buf, state, params, state[AT], body, size, full
    )
    if status != OK:
        return status
    src = window if in_window == 1 else page_buf
    if codes:
        # each entry's code, gathered by the data pages' indices like any dictionary's values:
        # the codes themselves; the strings after them, for Python (cursor.ColumnCursor)
        decode.count_up(dictionary[: 4 * count].view(np.int32))
        decode.copy(src[start : start + full], dictionary[4 * count : 4 * count + full])
        state[DICTIONARY] = count
        state[POS] = body + size
        return OK
    nbytes = count * params[WIDTH]
    if nbytes > full:
        return SHORT_DICTIONARY
    decode.copy(src[start : start + nbytes], dictionary[:nbytes])
    if params[AS_FLOAT] == 1 and not decode.integers_as_floats(dictionary, count, params[WIDTH]):
        return NOT_AS_FLOAT
    state[DICTIONARY] = count
    state[POS] = body + size
    return OK


@checked_jit
def open_page(window, base, state, params, page_buf, defs, reps, idx, vals, dictionary, batch, batch_at):
    """Open the next data page of the chunk (see the module): returns :data:`OK`, :data:`AT_END`
    when the chunk has no more pages, a NEED_* status, or a negative status.

    ``batch`` (bytes): where a flat column's next values go, from byte ``batch_at`` (-1: none,
    for lists and at the chunk's end): a snappy page of PLAIN values that fit there is
    decompressed in place (:func:`.in_place.in_place_values`) rather than into the page buffer and copied."""
    header = np.empty(thrift.SLOTS, np.int64)
    top, is_list, width = params[TOP], params[IS_LIST], params[WIDTH]
    while True:
        state[COUNT] = state[LEVEL] = state[VALUE] = 0
        if state[POS] >= state[END]:
            return TOO_FEW_VALUES if state[VALUES_LEFT] != 0 else AT_END
        at = state[POS]
        state[AT] = at
        status, length = read_header(window, base, state, header)
        if status != OK:
            return status
        kind, size, full = header[thrift.TYPE], header[thrift.COMPRESSED], header[thrift.UNCOMPRESSED]
        body = at + length
        if size < 0 or full < 0 or size > state[END] - body or full > max(params[LARGEST], size):
            return BAD_SIZES
        if body < base or body + size > base + window.shape[0]:
            state[NEED_AT] = at
            state[NEED_SIZE] = length + size
            return NEED_BYTES
        if body + size > state[VERIFIED]:  # checked once, however often the page is opened
            if header[thrift.HAS_CRC] == 1 and page_crc32(window, body - base, size) != header[thrift.CRC]:
                return BAD_CRC
            state[VERIFIED] = body + size
        if kind == thrift.INDEX_PAGE:
            state[POS] = body + size
            continue
        sub = header[thrift.SUB_HEADER]
        count = header[thrift.NUM_VALUES]
        if kind == thrift.DICTIONARY_PAGE and sub == thrift.DICTIONARY_HEADER:
            status = _dictionary_page(window, base, state, params, page_buf, dictionary, header, body)
            if status != OK:
                return status
            continue
        v2 = kind == thrift.DATA_PAGE_V2 and sub == thrift.DATA_V2_HEADER
        if not v2 and not (kind == thrift.DATA_PAGE and sub == thrift.DATA_HEADER):
            return BAD_TYPE
        if count < 0 or count > state[VALUES_LEFT]:
            return TOO_MANY_VALUES
        encoding = header[thrift.ENCODING]
        # the scratch arrays this page needs, each only when it does (100 columns open at once)
        wanted = (
            (top > 0 and defs.shape[0] < count) * DEFS
            | (is_list == 1 and reps.shape[0] < 4 * count) * REPS  # levels, or row starts (int32)
            | (encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY) and idx.shape[0] < count) * INDICES
            | ((encoding == BYTE_STREAM_SPLIT or params[IS_BOOL] == 1) and vals.shape[0] < count * width)
            * VALUES
        )
        if wanted:
            return _need_scratch(state, count, wanted)
        lo = body - base
        # where the compressed bytes are: v2 pages keep their levels uncompressed before them
        compressed, comp_at, comp_size, out_size = 1, body, size, full
        rep_bytes = levels = 0
        if v2:
            rep_bytes, def_bytes = header[thrift.REP_BYTES], header[thrift.DEF_BYTES]
            levels = rep_bytes + def_bytes
            if rep_bytes < 0 or def_bytes < 0 or levels > min(size, full):
                return BAD_LEVELS
            compressed = 1 if header[thrift.IS_COMPRESSED] != 0 else 0
            comp_at, comp_size, out_size = body + levels, size - levels, full - levels
        else:
            for which in (thrift.REP_ENCODING, thrift.DEF_ENCODING):
                if header[which] != RLE and header[which] != -1:
                    return UNSUPPORTED_LEVELS
        in_window, start = 1, comp_at - base
        # the level bytes a page without nulls has before its values (0 for v2 pages)
        split = out_size - count * width
        in_place = (
            compressed == 1
            and params[CODEC] == SNAPPY
            and is_list == 0
            and params[AS_FLOAT] == 0
            and params[AS_CODES] == 0
            and params[IS_BOOL] == 0
            and encoding == PLAIN
            and 0 <= split <= IN_PLACE_LEVEL_BYTES
            and (split == 0 or not v2)
            and split <= batch_at
            and batch_at + count * width <= batch.shape[0]
        )
        if in_place:
            if page_buf.shape[0] < out_size:  # room to fall back on
                state[NEED] = out_size
                return NEED_BUFFER
            status = in_place_values(
                window, comp_at - base, comp_size, page_buf, split, batch, batch_at, out_size
            )
            if status != OK:
                return status
            in_window, start = 0, 0
            # the levels must end where the values begin (a v1 page: its 4-byte length first)
            if top > 0 and not v2 and length_prefixed(page_buf, 0, split)[1] != split:
                back_to_buffer(page_buf, split, batch, batch_at, out_size)
                in_place = False
        elif compressed == 1:
            status, in_window, start = _plain_bytes(
                window, base, page_buf, state, params, at, comp_at, comp_size, out_size
            )
            if status != OK:
                return status
        src = window if in_window == 1 else page_buf
        pos, stop = start, start + (out_size if compressed == 1 else comp_size)
        if in_place:
            stop = split  # the page buffer holds its levels only
        # the levels: v2's before the compressed bytes, v1's (each after its 4-byte length) in them
        if v2:
            level_src = window
            reps_at, reps_end, defs_at, defs_end = lo, lo + rep_bytes, lo + rep_bytes, lo + levels
        else:
            level_src = src
            reps_at = reps_end = pos
            if is_list == 1:
                reps_at, reps_end = length_prefixed(src, pos, stop)
                pos = reps_end
            defs_at = defs_end = pos
            if top > 0:
                defs_at, defs_end = length_prefixed(src, pos, stop)
                pos = defs_end
            if pos < 0:
                return BAD_LEVELS
        full_page = 1
        if top > 0:
            end_defs, full_page = _levels(level_src, defs_at, defs_end, count, top, False, True, defs)
            if end_defs < 0:
                return BAD_LEVELS
        if is_list == 1 and full_page == 1:
            # every level an element: only where rows start matters (decode.walk_starts)
            found = decode.row_starts(level_src, reps_at, reps_end, count, row_start_room(reps))
            if found < 0:
                return BAD_LEVELS
            state[STARTS], state[NEXT_START] = found, 0
        elif is_list == 1 and _levels(level_src, reps_at, reps_end, count, 1, False, False, reps)[0] < 0:
            return BAD_LEVELS
        present = count
        if full_page == 0:
            present = 0
            for i in range(count):
                present += defs[i] == top
        if in_place and (full_page == 0 or pos != split):  # nulls after all: the whole page here
            back_to_buffer(page_buf, split, batch, batch_at, out_size)
            in_place = False
            stop = out_size
        src = window if in_window == 1 else page_buf
        if in_place:
            state[SOURCE] = IN_PLACE
        else:
            status = _values(
                src, pos, stop, header[thrift.ENCODING], present, params, state, dictionary, idx, vals
            )
            if status != OK:
                return status
        if full_page == 0 and is_list == 0:
            if params[AS_FLOAT] == 1:  # nulls: not given as floats (layout.as_float)
                return NOT_AS_FLOAT
            # a flat page with nulls spreads its values over rows from the scratch array
            if vals.shape[0] < count * width:
                return _need_scratch(state, count, VALUES)
            if state[SOURCE] == IN_BYTES:
                start = state[VALUES_AT]
                nbytes = present * width
                decode.copy(src[start : start + nbytes], vals[:nbytes])
            elif state[SOURCE] == IN_INDICES and params[AS_CODES] == 1:  # a string's code: its index
                decode.copy(idx[:present].view(np.uint8), vals[: present * width])
            elif state[SOURCE] == IN_INDICES:
                decode.gather(dictionary, idx, present, vals, width)
            state[SOURCE] = IN_VALUES
        state[IN_WINDOW] = in_window
        state[VALUES_LEFT] -= count
        state[COUNT] = count
        state[PRESENT] = present
        state[FULL] = full_page
        state[POS] = body + size
        state[PREPARED] = -1
        return OK
