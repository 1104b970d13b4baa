"""Page contents decoded in Numba: levels, dictionary indices, booleans, BYTE_STREAM_SPLIT values.

Every function reads untrusted bytes and checks each read against the end it is given (Numba
does not check indices): a corrupt page gives a negative status, never a read outside the page.
Decoded values are copied bit for bit, never computed, so NaN payloads and -0.0 survive.
"""

from __future__ import annotations

import numpy as np

from .jitting import checked_jit
from .thrift import varint

#: Status of :func:`walk_list`: the row group holds a null list or a null element here.
NULL_IN_LIST = -2


@checked_jit
def decode_hybrid(buf, pos, end, width, count, limit, out):
    """Decode ``count`` values of the RLE/bit-packed hybrid encoding with bit width ``width``
    from ``buf[pos:end]`` into ``out[:count]``. Returns the position after the last byte used,
    or -1 if the bytes end first, or a value exceeds ``limit`` (a level above the column's
    maximum, an index past the dictionary)."""
    if width < 0 or width > 32 or out.shape[0] < count:
        return -1
    value_bytes = (width + 7) // 8
    mask = (np.int64(1) << width) - 1
    i = 0
    while i < count:
        header, pos = varint(buf, pos, end)
        if pos < 0 or header < 0:
            return -1
        if header & 1:  # bit-packed: groups of 8 values, the least significant bit first
            groups = header >> 1
            run = min(groups * 8, count - i)
            full = groups * width  # the run's bytes; a writer may leave out the unused tail
            needed = (run * width + 7) // 8
            if needed > end - pos:
                return -1
            words = (((run - 1) * width) >> 6) + 2  # the last value reads words up to this one
            if width == 1 or width == 2 or width == 4:
                # binary labels, levels of a nullable column, small dictionaries: a byte holds 8,
                # 4 or 2 values. Views that start at 0 let the loops drop Numba's negative-index
                # checks (width 1, vectorised: 0.11 ns a value against 0.69 by the 64-bit windows
                # below; width 2: 0.36 against 0.76)
                packed, values = buf[pos : pos + needed], out[i : i + run]
                if width == 1:
                    biggest = unpack_bits(packed, run, values)
                elif width == 2:
                    biggest = unpack_pairs(packed, run, values)
                else:
                    biggest = unpack_nibbles(packed, run, values)
                if biggest > limit:
                    return -1
            elif 8 * words <= end - pos:
                # each value from the two 64-bit words holding it: no state carried from value
                # to value, so the loop pipelines (2.2x faster than a byte at a time)
                packed = buf[pos : pos + 8 * words].view(np.uint64)
                biggest = np.int64(0)
                first = 0
                if width <= 8:
                    # 8 values fill ``width`` bytes: one 64-bit window holds a group, 8 shifts
                    # unpack it (labels, small dictionaries: 10x fewer loads and shifts)
                    first = run - run % 8
                    for g in range(run // 8):
                        bit = g * 8 * width
                        word, shift = bit >> 6, np.uint64(bit & 63)
                        group = (packed[word] >> shift) | (
                            (packed[word + 1] << (np.uint64(63) - shift)) << np.uint64(1)
                        )
                        for k in range(8):
                            value = np.int64((group >> np.uint64(k * width)) & np.uint64(mask))
                            biggest = max(biggest, value)
                            out[i + 8 * g + k] = value
                for j in range(first, run):
                    bit = j * width
                    word, shift = bit >> 6, np.uint64(bit & 63)
                    both = (packed[word] >> shift) | (
                        (packed[word + 1] << (np.uint64(63) - shift)) << np.uint64(1)
                    )
                    value = np.int64(both & np.uint64(mask))
                    biggest = max(biggest, value)
                    out[i + j] = value
                if biggest > limit:
                    return -1
            else:
                # near the end of the bytes: through a 64-bit accumulator, a byte in at a time
                held = np.uint64(0)
                bits = 0
                at = pos
                for j in range(run):
                    while bits < width:
                        held |= np.uint64(buf[at]) << np.uint64(bits)
                        at += 1
                        bits += 8
                    value = np.int64(held & np.uint64(mask))
                    held >>= np.uint64(width)
                    bits -= width
                    if value > limit:
                        return -1
                    out[i + j] = value
            pos += min(full, end - pos)
            i += run
        else:  # a run of one value, in value_bytes bytes little-endian
            run = min(header >> 1, count - i)
            if value_bytes > end - pos:
                return -1
            value = np.int64(0)
            for k in range(value_bytes):
                value |= np.int64(buf[pos + k]) << (8 * k)
            pos += value_bytes
            if value > limit:
                return -1
            for j in range(run):
                out[i + j] = value
            i += run
    return pos


@checked_jit
def row_starts(buf, pos, end, count, starts):
    """The positions of the zeros among ``count`` repetition levels of bit width 1 (a list
    column's: 0 starts a row, 1 continues it) in the RLE/bit-packed hybrid encoding at
    ``buf[pos:end]``, in order, into ``starts`` (room for ``count``). Returns how many, or -1
    where :func:`decode_hybrid` (``limit`` 1) returns -1.

    The levels are the same, but not written out a byte each: a row of 100 values is about a
    bit-packed byte (its 0 and the next ones) and a run of ones, so this costs a few steps a row
    where decoding the levels and walking them cost ~1.5 ns a value (4M x 100: 0.6 s).
    """
    if starts.shape[0] < count:
        return -1
    found = 0
    i = 0
    while i < count:
        header, pos = varint(buf, pos, end)
        if pos < 0 or header < 0:
            return -1
        if header & 1:  # bit-packed: a byte holds 8 levels, the least significant bit first
            groups = header >> 1
            run = min(groups * 8, count - i)
            needed = (run + 7) // 8
            if needed > end - pos:
                return -1
            for b in range(needed):
                byte = np.int64(buf[pos + b])
                if byte != 0xFF:  # a row starts in this byte
                    for k in range(min(8, run - 8 * b)):
                        if (byte >> k) & 1 == 0:
                            starts[found] = i + 8 * b + k
                            found += 1
            pos += min(groups, end - pos)
            i += run
        else:  # a run of one level, in one byte
            run = min(header >> 1, count - i)
            if end - pos < 1:
                return -1
            level = np.int64(buf[pos])
            pos += 1
            if level > 1:
                return -1
            if level == 0:  # rows of one value each
                for j in range(run):
                    starts[found + j] = i + j
                found += run
            i += run
    return found


@checked_jit
def walk_starts(starts, k, found, pos, end, wanted, rows, offsets, elements):
    """:func:`walk_list` for a page whose every level is an element: its rows start at
    ``starts[k:found]`` (:func:`row_starts`), the levels before each continuing the row before.

    Returns ``(position, next start, rows started, elements, status)``: status 0, or -1 for a
    continuation before any row."""
    while k < found:
        at = starts[k]
        if at > pos and rows == 0:
            return pos, k, rows, elements, -1
        elements += at - pos
        pos = at
        if rows == wanted:
            return pos, k, rows, elements, 0
        offsets[rows] = elements
        rows += 1
        elements += 1
        pos += 1
        k += 1
    if pos < end and rows == 0:
        return pos, k, rows, elements, -1
    return end, k, rows, elements + end - pos, 0


@checked_jit
def unpack_bits(packed, count, out):
    """``out[:count]`` = the first ``count`` bits of ``packed``, the least significant bit of
    each byte first (``packed`` holds at least ``(count + 7) // 8`` bytes, ``out`` ``count``
    values). Returns the largest value written (0 or 1; 0 when ``count`` is 0)."""
    seen = 0
    whole = count // 8
    for g in range(whole):
        byte = np.int32(packed[g])
        seen |= byte
        for k in range(8):
            out[8 * g + k] = (byte >> k) & 1
    for j in range(8 * whole, count):
        bit = (np.int32(packed[j >> 3]) >> (j & 7)) & 1
        seen |= bit
        out[j] = bit
    return 1 if seen else 0


@checked_jit
def unpack_pairs(packed, count, out):
    """:func:`unpack_bits` of values of 2 bits (four a byte, the first in the lowest bits): a
    dictionary of 3 or 4 entries (a split, a model's name). Returns the largest value written."""
    biggest = np.int32(0)
    whole = count // 4
    for g in range(whole):
        byte = np.int32(packed[g])
        for k in range(4):
            value = (byte >> (2 * k)) & 3
            biggest = max(biggest, value)
            out[4 * g + k] = value
    for j in range(4 * whole, count):
        value = (np.int32(packed[j >> 2]) >> (2 * (j & 3))) & 3
        biggest = max(biggest, value)
        out[j] = value
    return biggest


@checked_jit
def unpack_nibbles(packed, count, out):
    """:func:`unpack_bits` of values of 4 bits (two a byte, the first in the low half): a
    dictionary of 5 to 16 entries. Returns the largest value written."""
    biggest = np.int32(0)
    whole = count // 2
    for g in range(whole):
        byte = np.int32(packed[g])
        low, high = byte & 15, byte >> 4
        biggest = max(biggest, max(low, high))
        out[2 * g] = low
        out[2 * g + 1] = high
    if count % 2:
        value = np.int32(packed[whole]) & 15
        biggest = max(biggest, value)
        out[count - 1] = value
    return biggest


@checked_jit
def one_run(buf, pos, end, width, count):
    """The value of levels that are a single RLE run of at least ``count`` values (a page without
    nulls: no levels need decoding), or -1 if they are anything else."""
    header, pos = varint(buf, pos, end)
    value_bytes = (width + 7) // 8
    if pos < 0 or header & 1 or (header >> 1) < count or value_bytes > end - pos:
        return -1
    value = 0
    for k in range(value_bytes):
        value |= np.int64(buf[pos + k]) << (8 * k)
    return value


@checked_jit
def copy(source, target):
    """``target[:] = source[:target.size]``, without the GIL (NumPy's copy holds it, and the
    row groups are decoded in threads); never past the end of ``source``."""
    for i in range(min(target.shape[0], source.shape[0])):
        target[i] = source[i]


@checked_jit
def count_up(out):
    """``out[i] = i``: a string dictionary's codes (:func:`.pages.dictionary_bytes`)."""
    for i in range(out.shape[0]):
        out[i] = i


@checked_jit
def string_offsets(raw, count, offsets, data):
    """The ``count`` PLAIN byte arrays of ``raw`` (each a 4-byte little-endian length, then its
    bytes) as Arrow's string layout: ``offsets[:count + 1]`` (int32) and their bytes one after
    the other in ``data``. Returns the bytes of ``data`` used, or -1 where ``raw`` ends early or
    the strings pass 2 GiB."""
    at = 0
    used = 0
    offsets[0] = 0
    for i in range(count):
        if at + 4 > raw.shape[0]:
            return -1
        length = np.int64(raw[at]) | (np.int64(raw[at + 1]) << 8)
        length |= (np.int64(raw[at + 2]) << 16) | (np.int64(raw[at + 3]) << 24)
        at += 4
        if length > raw.shape[0] - at or used + length > 2**31 - 1:
            return -1
        for k in range(length):
            data[used + k] = raw[at + k]
        at += length
        used += length
        offsets[i + 1] = used
    return used


@checked_jit
def _gather(dictionary, indices, count, out):
    if dictionary.shape[0] == 2:
        # two values (binary labels): a select vectorises where a gather does not (1M int64
        # labels: 0.15 ms against 0.49); the indices are 0 or 1, checked by the decoder
        first, second = dictionary[0], dictionary[1]
        for i in range(count):
            out[i] = second if indices[i] else first
        return
    for i in range(count):
        out[i] = dictionary[indices[i]]


@checked_jit
def gather(dictionary, indices, count, out, width):
    """``out[:count] = dictionary[indices[:count]]`` for values of ``width`` bytes, ``dictionary``
    and ``out`` being bytes (indices already checked by the decoder). The element loops are
    typed by width inside, so the page code around compiles once for every value width."""
    if width == 8:
        _gather(dictionary.view(np.uint64), indices, count, out.view(np.uint64))
    elif width == 4:
        _gather(dictionary.view(np.uint32), indices, count, out.view(np.uint32))
    elif width == 2:
        _gather(dictionary.view(np.uint16), indices, count, out.view(np.uint16))
    else:
        _gather(dictionary, indices, count, out)


#: Every integer of at most this magnitude (2**24) is exactly a float32.
FLOAT32_EXACT = 1 << 24


@checked_jit
def _exact_floats(values, floats):
    for k in range(values.shape[0]):
        if abs(np.int64(values[k])) > FLOAT32_EXACT:
            return False
    for k in range(values.shape[0]):
        floats[k] = np.float32(values[k])
    return True


@checked_jit
def integers_as_floats(dictionary, count, width):
    """Write the ``count`` signed integers of ``width`` bytes (4 or 8) at the start of
    ``dictionary`` (bytes) after them as float32. Returns whether each is exactly that float
    (at most 2**24 in magnitude); writes nothing if one is not."""
    nbytes = count * width
    floats = dictionary[nbytes : nbytes + 4 * count].view(np.float32)
    if width == 8:
        return _exact_floats(dictionary[:nbytes].view(np.int64), floats)
    if width == 4:
        return _exact_floats(dictionary[:nbytes].view(np.int32), floats)
    return False


@checked_jit
def unpack_booleans(buf, pos, end, count, out):
    """PLAIN booleans: one bit each, the least significant first. Returns the position after the
    last byte used, or -1 if the bytes end first."""
    nbytes = (count + 7) // 8
    if nbytes > end - pos or out.shape[0] < count:
        return -1
    unpack_bits(buf[pos : pos + nbytes], count, out[:count])
    return pos + nbytes


@checked_jit
def unsplit(buf, pos, end, width, count, out):
    """BYTE_STREAM_SPLIT: byte ``k`` of value ``i`` is at ``k * count + i``; ``out`` holds
    ``count * width`` bytes. Returns the position after the last byte used, or -1."""
    if count * width > end - pos or out.shape[0] < count * width:
        return -1
    for k in range(width):
        stream = pos + k * count
        for i in range(count):
            out[i * width + k] = buf[stream + i]
    return pos + count * width


@checked_jit
def scatter(values, defs, count, top, out, width):
    """Spread the present values (``width`` bytes each, ``values`` and ``out`` being bytes) over
    the rows of a nullable column: row ``i`` gets the next value where ``defs[i] == top``, zero
    elsewhere. Returns the values used, or -1 if there are fewer than the levels say."""
    if width == 8:
        return _scatter(values.view(np.uint64), defs, count, top, out.view(np.uint64))
    if width == 4:
        return _scatter(values.view(np.uint32), defs, count, top, out.view(np.uint32))
    if width == 2:
        return _scatter(values.view(np.uint16), defs, count, top, out.view(np.uint16))
    return _scatter(values, defs, count, top, out)


@checked_jit
def _scatter(values, defs, count, top, out):
    used = 0
    for i in range(count):
        if defs[i] == top:
            if used >= values.shape[0]:
                return -1
            out[i] = values[used]
            used += 1
        else:
            out[i] = 0
    return used


@checked_jit
def walk_list(reps, defs, pos, end, wanted, rows, empty, top, offsets, elements):
    """Walk the levels ``[pos, end)`` of a list column, starting rows until ``wanted`` rows have
    started and the next one begins. A row starts at repetition level 0; a definition level of
    ``top`` is an element, ``empty`` (with repetition 0) an empty list. ``offsets[r]`` gets the
    element count at the start of row ``r``.

    Returns ``(position, rows started, elements, status)``: status 0, or -1 for levels no writer
    produces (a continuation before any row, a repetition above 1), or :data:`NULL_IN_LIST`.
    """
    while pos < end:
        rep = reps[pos]
        level = defs[pos]
        if rep == 0:
            if rows == wanted:
                return pos, rows, elements, 0
            offsets[rows] = elements
            rows += 1
        elif rep != 1 or rows == 0:
            return pos, rows, elements, -1
        if level == top:
            elements += 1
        elif level != empty or rep != 0:
            return pos, rows, elements, NULL_IN_LIST
        pos += 1
    return pos, rows, elements, 0
