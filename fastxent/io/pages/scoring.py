"""Binary logits scored straight from their Parquet pages: one compiled pass from the file's
bytes to the block sums, with no Arrow array between (the fused pass of :mod:`fastxent.run.fused`).

Two calls a row group, each over windows of its column chunk (a status :data:`NEED_BYTES` asks
for the window from ``state[POS]``, ``state[NEED_SIZE]`` bytes long; :data:`NEED_PAGE`,
:data:`NEED_ENTRIES` and :data:`NEED_INDICES` for a larger page buffer, dictionary or index
scratch, ``state[NEED_SIZE]`` long):

- :func:`take_labels` decodes the label column, INT32, INT64 (PLAIN or dictionary-encoded) or
  BOOLEAN (PLAIN, or RLE in v2 pages), into one byte a row, each label 0 or 1;
- :func:`take_codes` decodes a string group key column (dictionary-encoded) into each row's
  entry of its dictionary page, whose bytes it hands to Python;
- :func:`score_logits` reads the logits, FLOAT or DOUBLE (PLAIN or dictionary-encoded), in
  2048-row blocks from the row group's first row, each block scored and summed by the kernels'
  own :func:`~fastxent.kernels.binary.logit_block_sums`: the bits of the batch path, for any
  batches, since blocks are the row group's whatever the pages; in a grouped run, each row's
  loss and marks too, for its groups (:mod:`fastxent.unit_groups`).

Pages are opened as the page reader opens them (:mod:`.pages`): the Thrift header parsed, the
CRC checked where written, snappy (in Numba) or zstd (by libzstd, :mod:`.zstd`) decompressed
into a page buffer that stays in the cache (an uncompressed page read where it lies). A data
page of v1 or v2 whose definition levels are not all present (a null), any other encoding or
codec, a label other than 0 or 1, or bytes that do not parse give :data:`ELSEWHERE`: the row
group is read by the batch path instead, which scores what this pass does not (torch takes any
label), and names the damage as it always has. This pass never reads outside the arrays it is
given: every read is checked against their ends.
"""

from __future__ import annotations

import numpy as np

from ...kernels.binary import labels_like, logit_block_sums, logit_row_values
from ...kernels.codes import BLOCK_ROWS, N_COUNTS
from . import decode, protocol, snappy, thrift, zstd
from .checksum import page_crc32
from .jitting import checked_jit
from .pages import length_prefixed, read_header
from .protocol import END, NEED_SIZE, PLAIN, PLAIN_DICTIONARY, POS, RLE, RLE_DICTIONARY, SNAPPY, UNCOMPRESSED

#: A chunk's codec, besides the page reader's UNCOMPRESSED and SNAPPY: zstd, decompressed by the
#: system's libzstd (:mod:`.zstd`).
ZSTD = 3

#: Statuses: the chunk is done; it needs the window from ``state[POS]``, or a larger page buffer,
#: dictionary or index scratch (``state[NEED_SIZE]``: bytes, entries, indices); the batch path
#: reads this row group.
DONE, NEED_BYTES, NEED_PAGE, NEED_ENTRIES, NEED_INDICES, ELSEWHERE = 0, 1, 2, 3, 4, -1

#: A chunk's state (int64) is the page reader's (:mod:`.protocol`: ``POS``, ``END``,
#: ``NEED_SIZE``, read and written by :func:`.pages.read_header` as for the page reader), with
#: the rows taken (its ``DONE``), the dictionary's entries (its ``DICTIONARY``, -1: none read) and
#: after them the rows of the open block (logits) or the dictionary page's bytes (key codes).
ROWS, ENTRIES, HELD = protocol.DONE, protocol.DICTIONARY, protocol.STATE_SLOTS
STATE_SLOTS = protocol.STATE_SLOTS + 1

#: Physical types of the label column (parquet.thrift).
BOOLEAN, INT32, INT64 = 0, 1, 2

H = thrift


@checked_jit
def _open(window, base, state, header, page, page_ro, codec, optional):
    """Open the page at ``state[POS]``: ``(status, source, lo, hi, next)``, its values (the
    levels skipped) at ``source[lo:hi]`` (``window`` itself or ``page_ro``, the page buffer
    read-only), ``next`` the file offset of the page after it. Status :data:`DONE` for a page
    opened (``header`` holds its fields), else what the caller returns."""
    pos, end = state[POS], state[END]
    found, length = read_header(window, base, state, header)
    if found != protocol.OK:
        return (NEED_BYTES if found == protocol.NEED_BYTES else ELSEWHERE), window, 0, 0, pos
    have = min(end, base + window.shape[0]) - pos
    at = pos - base
    stored, size = header[H.COMPRESSED], header[H.UNCOMPRESSED]
    if stored < 0 or size < 0 or length + stored > end - pos:
        return ELSEWHERE, window, 0, 0, pos
    if length + stored > have:
        state[NEED_SIZE] = length + stored
        return NEED_BYTES, window, 0, 0, pos
    body = at + length
    if header[H.HAS_CRC] > 0 and np.int64(page_crc32(window, body, stored)) != header[H.CRC] & 0xFFFFFFFF:
        return ELSEWHERE, window, 0, 0, pos
    kind = header[H.TYPE]
    levels = 0  # v2: the levels' bytes, stored uncompressed before the values
    if kind == H.DATA_PAGE_V2:
        if header[H.NUM_NULLS] != 0 or header[H.REP_BYTES] > 0 or header[H.DEF_BYTES] < 0:
            return ELSEWHERE, window, 0, 0, pos
        levels = header[H.DEF_BYTES]
        if levels > stored or levels > size or (levels > 0) != optional:
            return ELSEWHERE, window, 0, 0, pos
        if optional and decode.one_run(window, body, body + levels, 1, header[H.NUM_VALUES]) != 1:
            return ELSEWHERE, window, 0, 0, pos  # a null the header's count left out
    elif kind == H.DATA_PAGE:
        if optional and header[H.DEF_ENCODING] != RLE:  # not the hybrid (BIT_PACKED levels)
            return ELSEWHERE, window, 0, 0, pos
    elif kind != H.DICTIONARY_PAGE or header[H.ENCODING] not in (PLAIN, PLAIN_DICTIONARY):
        return ELSEWHERE, window, 0, 0, pos
    following = pos + length + stored
    compressed = codec != UNCOMPRESSED and not (kind == H.DATA_PAGE_V2 and header[H.IS_COMPRESSED] == 0)
    if compressed:
        if size > page.shape[0]:
            state[NEED_SIZE] = size
            return NEED_PAGE, window, 0, 0, pos
        values = size - levels
        if codec == SNAPPY:
            got = snappy.decompress(window, body + levels, body + stored, page, 0, values)
        else:
            got = zstd.decompress(window, body + levels, stored - levels, page, values)
        if got != values:
            return ELSEWHERE, window, 0, 0, pos
        source, lo, hi = page_ro, 0, values
    else:  # an uncompressed chunk, or a v2 page stored uncompressed
        if stored != size:
            return ELSEWHERE, window, 0, 0, pos
        source, lo, hi = window, body + levels, body + stored
    if kind == H.DATA_PAGE and optional:  # v1: the levels, length-prefixed, first
        levels_at, lo = length_prefixed(source, lo, hi)
        if levels_at < 0 or decode.one_run(source, levels_at, lo, 1, header[H.NUM_VALUES]) != 1:
            return ELSEWHERE, window, 0, 0, pos  # a null (or levels not written as one run)
    return DONE, source, lo, hi, following


@checked_jit
def _dictionary_codes(source, lo, hi, entries, count, out):
    """``out[:count]``: a dictionary-encoded page's codes at ``source[lo:hi]`` (a byte of bit
    width, then the RLE/bit-packed hybrid), each an entry of a dictionary of ``entries``; False
    where there is no dictionary or they do not decode."""
    if entries <= 0 or hi - lo < 1:
        return False
    return decode.decode_hybrid(source, lo + 1, hi, np.int64(source[lo]), count, entries - 1, out) >= 0


@checked_jit
def _plain_labels(source, lo, width, count, out):
    """``out[:count]``: the PLAIN integers of ``width`` bytes at ``source[lo:]`` (the caller
    checked their room); False, from the first that is not 0 or 1."""
    for k in range(count):
        value = snappy.little_endian(source, lo + k * width, width)
        if value != 0 and value != 1:
            return False
        out[k] = value
    return True


@checked_jit
def take_labels(window, base, state, header, page, page_ro, codec, optional, physical, dictionary, labels):
    """Decode the label chunk's rows into ``labels`` (int8, one a row: 0 or 1), from
    ``state[POS]`` on, as far as the ``window`` (the file's bytes from offset ``base``) goes.

    ``dictionary`` (int8, two entries) holds a dictionary page's labels. Returns a status
    (:data:`DONE` once the chunk gave exactly ``labels.shape[0]`` rows); ``state[ROWS]`` counts
    the rows taken."""
    width = 1 if physical == BOOLEAN else (4 if physical == INT32 else 8)
    while state[POS] < state[END]:
        status, source, lo, hi, following = _open(window, base, state, header, page, page_ro, codec, optional)
        if status != DONE:
            return status
        count = header[H.NUM_VALUES]
        if header[H.TYPE] == H.DICTIONARY_PAGE:
            if physical == BOOLEAN or count > dictionary.shape[0] or count < 0 or count * width > hi - lo:
                return ELSEWHERE
            if not _plain_labels(source, lo, width, count, dictionary):
                return ELSEWHERE
            state[ENTRIES] = count
            state[POS] = following
            continue
        row = state[ROWS]
        if count < 0 or row + count > labels.shape[0]:
            return ELSEWHERE
        out = labels[row : row + count]
        encoding = header[H.ENCODING]
        if encoding == PLAIN and physical == BOOLEAN:
            if decode.unpack_booleans(source, lo, hi, count, out) < 0:
                return ELSEWHERE
        elif encoding == RLE and physical == BOOLEAN:  # v2 pages' booleans: a 4-byte length first
            runs_at, runs_end = length_prefixed(source, lo, hi)
            if runs_at < 0 or decode.decode_hybrid(source, runs_at, runs_end, 1, count, 1, out) < 0:
                return ELSEWHERE
        elif encoding == PLAIN:
            if count * width > hi - lo or not _plain_labels(source, lo, width, count, out):
                return ELSEWHERE
        elif encoding in (RLE_DICTIONARY, PLAIN_DICTIONARY):
            entries = state[ENTRIES]
            if not _dictionary_codes(source, lo, hi, entries, count, out):
                return ELSEWHERE
            # codes to labels, unless the dictionary is [0, 1] (a damaged one may be [0, 0])
            if entries != 2 or dictionary[0] != 0 or dictionary[1] != 1:
                for k in range(count):
                    out[k] = dictionary[out[k]]
        else:
            return ELSEWHERE
        state[ROWS] = row + count
        state[POS] = following
    return DONE if state[ROWS] == labels.shape[0] else ELSEWHERE  # a label for every row


@checked_jit
def take_codes(window, base, state, header, page, page_ro, codec, optional, dictionary, codes):
    """Decode a string key chunk's rows into ``codes`` (int32, one a row: the row's entry of the
    chunk's dictionary page), from ``state[POS]`` on, as far as the ``window`` goes.

    ``dictionary`` (uint8) takes the dictionary page's bytes (its PLAIN byte arrays, for Python
    to read as strings): ``state[ENTRIES]`` entries, ``state[HELD]`` bytes (:data:`NEED_ENTRIES`:
    room for ``state[NEED_SIZE]`` bytes first). Every data page must be dictionary-encoded and
    hold no null (the page opener checks the levels). Returns a status (:data:`DONE` once the
    chunk gave exactly ``codes.shape[0]`` rows); ``state[ROWS]`` counts the rows taken."""
    while state[POS] < state[END]:
        status, source, lo, hi, following = _open(window, base, state, header, page, page_ro, codec, optional)
        if status != DONE:
            return status
        count = header[H.NUM_VALUES]
        if header[H.TYPE] == H.DICTIONARY_PAGE:
            if state[ENTRIES] >= 0 or count < 0:  # a chunk has one dictionary page at most
                return ELSEWHERE
            if hi - lo > dictionary.shape[0]:
                state[NEED_SIZE] = hi - lo
                return NEED_ENTRIES
            snappy.copy_bytes(dictionary, 0, source, lo, hi - lo)
            state[ENTRIES], state[HELD] = count, hi - lo
            state[POS] = following
            continue
        row = state[ROWS]
        if count < 0 or row + count > codes.shape[0]:
            return ELSEWHERE
        if header[H.ENCODING] not in (RLE_DICTIONARY, PLAIN_DICTIONARY):  # PLAIN values: fallen back
            return ELSEWHERE
        if not _dictionary_codes(source, lo, hi, state[ENTRIES], count, codes[row : row + count]):
            return ELSEWHERE
        state[ROWS] = row + count
        state[POS] = following
    return DONE if state[ROWS] == codes.shape[0] else ELSEWHERE


@checked_jit
def _add_block(xs, labels, first, pos_weight, values, sums, block, counts, rows):
    """Score block number ``block`` (logits ``xs``, their labels from ``labels[first:]``) into
    ``sums[block]`` and ``counts``; with ``rows = (loss, den, marks)`` not empty, the block's row
    values too (:func:`~fastxent.kernels.binary.logit_row_values`: ``loss`` and ``marks`` a row
    group long, from row ``first``; ``den``, a block long, takes its ones and is not kept)."""
    n = xs.shape[0]
    ys = labels[first : first + n]
    found = logit_block_sums(xs, labels_like(ys, xs), pos_weight, values[:n], sums[block])
    for j in range(N_COUNTS):
        counts[j] += found[j]
    loss, den, marks = rows
    if loss.shape[0] > 0:  # no predicted classes, no confidences: the groups fold losses and marks
        none, no_classes = np.empty(0), np.empty(0, np.int32)
        logit_row_values(
            xs, ys, values[:n], loss[first : first + n], den[:n], marks[first : first + n], no_classes, none
        )


@checked_jit
def score_logits(
    window,
    base,
    state,
    header,
    page,
    page_ro,
    codec,
    optional,
    labels,
    pos_weight,
    dictionary,
    indices,
    held,
    values,
    sums,
    counts,
    rows,
):
    """Score the logits chunk's rows against ``labels`` (:func:`take_labels`), from
    ``state[POS]`` on, as far as the ``window`` goes: block ``k`` (rows ``[2048 k, 2048 (k+1))``
    of the row group) into ``sums[k]``, the counts added to ``counts``; and each row's values
    into ``rows = (loss, den, marks)`` unless they are empty (see :func:`_add_block`), for the
    groups to fold.

    ``held`` holds the open block's first ``state[HELD]`` logits (the input's dtype), ``values``
    room for a block's losses, ``dictionary`` and ``indices`` a dictionary page's values and a
    page's codes. At the chunk's end the last, partial block is scored, and the rows must be the
    labels'. Returns a status; ``state[ROWS]`` counts the rows read."""
    itemsize = held.itemsize
    raw = held.view(np.uint8)
    while state[POS] < state[END]:
        status, source, lo, hi, following = _open(window, base, state, header, page, page_ro, codec, optional)
        if status != DONE:
            return status
        count = header[H.NUM_VALUES]
        if count < 0:
            return ELSEWHERE
        if header[H.TYPE] == H.DICTIONARY_PAGE:
            if count * itemsize > hi - lo:
                return ELSEWHERE
            if count > dictionary.shape[0]:
                state[NEED_SIZE] = count
                return NEED_ENTRIES
            snappy.copy_bytes(dictionary.view(np.uint8), 0, source, lo, count * itemsize)
            state[ENTRIES] = count
            state[POS] = following
            continue
        row = state[ROWS]
        if row + count > labels.shape[0]:
            return ELSEWHERE
        encoding = header[H.ENCODING]
        coded = encoding in (RLE_DICTIONARY, PLAIN_DICTIONARY)
        if coded:
            if count > indices.shape[0]:
                state[NEED_SIZE] = count
                return NEED_INDICES
            if not _dictionary_codes(source, lo, hi, state[ENTRIES], count, indices):
                return ELSEWHERE
        elif encoding != PLAIN or count * itemsize > hi - lo:
            return ELSEWHERE
        i = 0
        while i < count:
            r = row + i
            first = r - state[HELD]  # the open block's first row
            take = min(BLOCK_ROWS - state[HELD], count - i)
            start = lo + i * itemsize
            aligned = (source.ctypes.data + start) % itemsize == 0
            if state[HELD] == 0 and take == BLOCK_ROWS and not coded and aligned:
                # a whole block where it lies in the page (the commonest case: no copy)
                xs = source[start : start + BLOCK_ROWS * itemsize].view(held.dtype)
                _add_block(xs, labels, r, pos_weight, values, sums, r // BLOCK_ROWS, counts, rows)
            else:
                at = state[HELD]
                if coded:
                    for k in range(take):
                        held[at + k] = dictionary[indices[i + k]]
                else:
                    snappy.copy_bytes(raw, at * itemsize, source, start, take * itemsize)
                state[HELD] = at + take
                if state[HELD] == BLOCK_ROWS:
                    _add_block(
                        held, labels, first, pos_weight, values, sums, first // BLOCK_ROWS, counts, rows
                    )
                    state[HELD] = 0
            i += take
        state[ROWS] = row + count
        state[POS] = following
    if state[ROWS] != labels.shape[0]:
        return ELSEWHERE
    if state[HELD] > 0:
        first = state[ROWS] - state[HELD]
        block = first // BLOCK_ROWS
        _add_block(held[: state[HELD]], labels, first, pos_weight, values, sums, block, counts, rows)
        state[HELD] = 0
    return DONE
