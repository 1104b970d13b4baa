"""Rows of a column chunk taken from its open pages, in Numba, as many pages per call as a batch
spans.

:func:`take_flat` fills ``n`` rows of a flat column (and their validity where it is nullable),
:func:`take_list` ``n`` rows of a list column (offsets and values; a row may span pages). Both
open pages as they go (:func:`~.pages.open_page`) and return its NEED_* statuses to Python with
their progress saved in the state array, so the same call continues once Python has answered.
With ``finish`` (the row group's last batch) they also check that the chunk holds no more rows.
"""

from __future__ import annotations

import numpy as np

from . import decode
from .jitting import checked_jit
from .pages import open_page, row_start_room
from .protocol import (
    AS_CODES,
    AS_FLOAT,
    AT_END,
    BAD_LIST,
    COUNT,
    DICTIONARY,
    DONE,
    ELEMENTS,
    EMPTY,
    EXTRA_ROWS,
    FULL,
    IN_BYTES,
    IN_INDICES,
    IN_PLACE,
    IN_WINDOW,
    LEVEL,
    NEED,
    NEED_CHILD,
    NEXT_START,
    NULL_IN_LIST,
    NULLS,
    OK,
    PRESENT,
    SHORT_ROWS,
    SHORT_VALUES,
    SOURCE,
    STARTS,
    TOP,
    VALUE,
    VALUES_AT,
    WIDTH,
)


@checked_jit
def _copy_values(window, page_buf, state, params, vals, idx, dictionary, m, out, to):
    """Copy the open page's next ``m`` present values to values ``to, ..., to + m - 1`` of
    ``out`` (bytes, like ``vals`` and ``dictionary``): straight from the page where they are
    still PLAIN bytes, the dictionary's values where they are indices (its float32 values for a
    column given as floats, ``out`` then holding 4 bytes a value), else from the scratch
    array."""
    value, width = state[VALUE], params[WIDTH]
    if params[AS_FLOAT] == 1:
        # integer labels as float32: indices only (pages.py refuses others), gathered from the
        # dictionary's float32 copy after its values
        floats = dictionary[state[DICTIONARY] * width :]
        decode.gather(floats, idx[value : value + m], m, out[to * 4 : (to + m) * 4], 4)
        state[VALUE] = value + m
        return
    if state[SOURCE] == IN_PLACE:  # decompressed where they belong (pages.open_page)
        state[VALUE] = value + m
        return
    target = out[to * width : (to + m) * width]
    if state[SOURCE] == IN_BYTES:
        src = window if state[IN_WINDOW] == 1 else page_buf
        start = state[VALUES_AT] + value * width
        decode.copy(src[start : start + m * width], target)
    elif state[SOURCE] == IN_INDICES and params[AS_CODES] == 1:  # a string's code: its index
        decode.copy(idx[value : value + m].view(np.uint8), target)
    elif state[SOURCE] == IN_INDICES:
        decode.gather(dictionary, idx[value : value + m], m, target, width)
    else:
        decode.copy(vals[value * width : (value + m) * width], target)
    state[VALUE] = value + m


@checked_jit
def _no_more_data(window, base, state, params, page_buf, defs, reps, idx, vals, dictionary):
    """:data:`~.protocol.OK` when no level is left in the chunk (pages of no values aside)."""
    while True:
        if state[LEVEL] < state[COUNT]:
            return EXTRA_ROWS
        status = open_page(window, base, state, params, page_buf, defs, reps, idx, vals, dictionary, vals, -1)
        if status == AT_END:
            return OK
        if status != OK:
            return status


@checked_jit
def take_flat(
    window, base, state, params, page_buf, defs, reps, idx, vals, dictionary, out, valid, n, finish
):
    """Fill ``out`` (``n`` values of the column's stored type, or float32 for a column given as
    floats, as bytes) with the next ``n`` rows, and count their nulls in ``state[NULLS]`` (a
    null's value is 0). ``valid[:n]`` (empty for a column without nulls) gets 1 where a row holds
    a value, 0 for a null, once the batch has a null: a batch without one (most batches of most
    nullable columns) leaves it unwritten. Returns a status of :mod:`.protocol`."""
    top, width = params[TOP], params[WIDTH]
    done = state[DONE]
    while done < n:
        if state[LEVEL] >= state[COUNT]:
            state[DONE] = done
            status = open_page(
                window, base, state, params, page_buf, defs, reps, idx, vals, dictionary, out, done * width
            )
            if status == AT_END:
                return SHORT_ROWS
            if status != OK:
                return status
            continue
        level = state[LEVEL]
        m = min(n - done, state[COUNT] - level)
        if state[FULL] == 1:
            _copy_values(window, page_buf, state, params, vals, idx, dictionary, m, out, done)
            if state[NULLS] > 0:
                valid[done : done + m] = 1
        else:
            value = state[VALUE]
            present = vals[value * width : state[PRESENT] * width]
            used = decode.scatter(present, defs[level : level + m], m, top, out[done * width :], width)
            if used < 0:
                return SHORT_VALUES
            if used < m:
                if state[NULLS] == 0:  # the batch's first null: its rows so far hold values
                    valid[:done] = 1
                state[NULLS] += m - used
                for i in range(m):
                    valid[done + i] = defs[level + i] == top
            elif state[NULLS] > 0:
                valid[done : done + m] = 1
            state[VALUE] = value + used
        state[LEVEL] = level + m
        done += m
    state[DONE] = done
    if finish:
        return _no_more_data(window, base, state, params, page_buf, defs, reps, idx, vals, dictionary)
    return OK


@checked_jit
def take_list(
    window, base, state, params, page_buf, defs, reps, idx, vals, dictionary, offsets, child, n, finish
):
    """Fill ``offsets[:n + 1]`` and ``child`` (values as bytes) with the next ``n`` rows of a list
    column: pages are opened until the row after the ``n``-th begins or the chunk ends. Returns a
    status of :mod:`.protocol` (:data:`~.protocol.NEED_CHILD`: ``child`` must hold ``state[NEED]``
    values)."""
    top, empty, width = params[TOP], params[EMPTY], params[WIDTH]
    rows, elements = state[DONE], state[ELEMENTS]
    while True:
        if state[LEVEL] >= state[COUNT]:
            state[DONE], state[ELEMENTS] = rows, elements
            status = open_page(
                window, base, state, params, page_buf, defs, reps, idx, vals, dictionary, child, -1
            )
            if status == AT_END:
                break
            if status != OK:
                return status
            continue
        left = state[PRESENT] - state[VALUE]
        if child.shape[0] // width - elements < left:
            state[DONE], state[ELEMENTS] = rows, elements
            state[NEED] = elements + left
            return NEED_CHILD
        start = elements
        if state[FULL] == 1:  # no null, no empty list: the page's row starts
            level, k, rows, elements, status = decode.walk_starts(
                row_start_room(reps),
                state[NEXT_START],
                state[STARTS],
                state[LEVEL],
                state[COUNT],
                n,
                rows,
                offsets,
                elements,
            )
            state[NEXT_START] = k
        else:
            level, rows, elements, status = decode.walk_list(
                reps, defs, state[LEVEL], state[COUNT], n, rows, empty, top, offsets, elements
            )
        if status == decode.NULL_IN_LIST:
            return NULL_IN_LIST
        if status < 0:
            return BAD_LIST
        if elements - start > left:
            return SHORT_VALUES
        _copy_values(
            window,
            page_buf,
            state,
            params,
            vals,
            idx,
            dictionary,
            elements - start,
            child,
            start,
        )
        state[LEVEL] = level
        if level < state[COUNT]:  # stopped where the row after the n-th begins
            break
    state[DONE], state[ELEMENTS] = rows, elements
    if rows != n:
        return SHORT_ROWS
    offsets[n] = elements
    if finish and state[LEVEL] < state[COUNT]:
        return EXTRA_ROWS
    return OK
