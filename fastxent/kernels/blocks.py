"""Deterministic summation: fixed row blocks, a fixed-order block sum, an exact sum of blocks.

How a total is formed, whatever the thread count, batch size or split across workers:

1. Rows are grouped in blocks of :data:`BLOCK_ROWS` consecutive rows of the *stream*
   (block ``b`` holds global rows ``[b*B, (b+1)*B)``), never of a thread or batch.
2. Each block's row values are added by :func:`sum_block` in one fixed order (eight interleaved
   lanes, IEEE arithmetic, no reassociation), so a block sum is a pure function of its rows.
3. Block sums are added *exactly* (:func:`exact_add`, Shewchuk's non-overlapping expansion)
   and rounded once at the end, so their order does not matter either.

A batch that starts or ends inside a block hands back the row values of that partial block
("edges"); the :class:`fastxent.state.Accumulator` joins the pieces of a block before summing.

The kernel drivers below are templates: :func:`make_drivers` binds one family's row function
(``ROWS``) into copies compiled serial and ``parallel=True``.
"""

from __future__ import annotations

import types

import numpy as np
from numba import prange

from .codes import BLOCK_ROWS, N_COUNTS
from .jit import bound_copy, never_inlined, serial_and_parallel, strict_jit
from .lanes import LANES, ordered_sum
from .vmath import bits_of


@strict_jit
def sum_block(values):
    """Sum up to one block of values (float64, or float32 widened exactly) in a fixed order
    (:func:`sum_range` of them all)."""
    return sum_range(values, 0, values.shape[0])


@strict_jit(forceinline=True)
def sum_range(values, lo, hi):
    """Sum ``values[lo:hi]`` (up to one block) in a fixed order.

    :func:`~.lanes.ordered_sum`: ``s_j = sum_{i = j mod 8} v_{lo+i}`` for eight lanes ``j`` (one
    vector addition per eight values), then ``((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7))``, plus the
    ``(hi - lo) mod 8`` last values added in order. Strict IEEE flags guarantee this exact order.
    A range, not a slice: the group kernels sum 100,000 groups' ranges a batch, and a slice costs
    its reference counting.
    """
    return ordered_sum(values, None, lo, hi)


@strict_jit(forceinline=True)
def sum_range_products(a, b, lo, hi):
    """``sum a_i * b_i`` for ``i`` in ``[lo, hi)`` (up to one block) in :func:`sum_range`'s order
    (each product rounded, then added in the eight lanes: :func:`~.lanes.ordered_sum`)."""
    return ordered_sum(a, b, lo, hi)


@strict_jit
def block_sums(loss, den, out):
    """A block's :data:`~.codes.SUM_FIELDS` from its rows' losses and denominators into ``out``
    (:func:`range_sums` of all its rows)."""
    out[0], out[1], out[2], out[3], out[4] = range_sums(loss, den, 0, loss.shape[0])


@strict_jit(forceinline=True)
def range_sums(loss, den, lo, hi):
    """The :data:`~.codes.SUM_FIELDS` of rows ``[lo, hi)`` (up to one block), each in
    :func:`sum_range`'s order: ``(sum loss, sum den, sum loss^2, sum loss*den, sum den^2)``.

    Unweighted rows (every denominator 1, the common case) skip three of the five strict sums:
    ``loss * 1`` and ``1 * 1`` are exact, so ``sum loss*den`` is :func:`sum_range` of the losses
    bit for bit (NaN, infinities and ``-0.0`` included) and ``sum den`` and ``sum den^2`` are the
    row count (exact below ``2**53``). Rows of a range, as :func:`sum_range` sums them: the group
    kernels sum the blocks of 100,000 groups' rows a batch (:mod:`.groups`).

    Fewer rows than :data:`~.lanes.LANES` (100,000 groups' blocks hold one to six rows of a
    131,072-row batch) are summed in one loop: the lanes stay zero, so each sum is ``+0.0`` plus
    its terms added in order, as :func:`~.lanes.ordered_sum` adds them, bit for bit (73,000 such
    ranges in 0.9 ms rather than 1.6).
    """
    if hi - lo < LANES:
        total = weight = loss_sq = loss_den = den_sq = 0.0
        for i in range(lo, hi):
            x, d = np.float64(loss[i]), np.float64(den[i])
            total += x
            weight += d
            loss_sq += x * x
            loss_den += x * d
            den_sq += d * d
        return 0.0 + total, 0.0 + weight, 0.0 + loss_sq, 0.0 + loss_den, 0.0 + den_sq
    total = sum_range(loss, lo, hi)
    squares = sum_range_products(loss, loss, lo, hi)
    if all_equal(den[lo:hi], 1.0):  # a slice: indices from 0 vectorise the compare (a range: +10%)
        rows = float(hi - lo)
        return total, rows, squares, total, rows
    weight = sum_range(den, lo, hi)
    return total, weight, squares, sum_range_products(loss, den, lo, hi), sum_range_products(den, den, lo, hi)


@strict_jit
def all_equal(values, v):
    """Whether every value is ``v`` (a compare per value, which vectorises, where eight strict
    add chains do not; ``True`` if empty)."""
    differ = 0
    for i in range(values.shape[0]):
        differ += values[i] != v
    return differ == 0


@strict_jit
def exact_add(terms, count, specials, values):
    """Add ``values`` exactly into the expansion ``terms[:count]`` (:func:`exact_add_value`, one
    by one); return the new count. ``terms`` needs room for ``count + len(values)`` terms."""
    rows, row_specials = terms.reshape(1, terms.shape[0]), specials.reshape(1, 3)
    for x in values:
        count = exact_add_value(rows, 0, count, row_specials, x)
    return count


@strict_jit(forceinline=True)
def exact_add_value(terms, row, count, specials, x):
    """Add ``x`` exactly into the expansion ``terms[row, :count]``; return the new count (at most
    ``count + 1``: the row needs room for it).

    Shewchuk's algorithm (as in Python's ``math.fsum``): terms stay non-overlapping and their
    exact sum is the exact sum of everything added. Non-finite values are counted in
    ``specials[row] = [nan, +inf, -inf]`` instead (as is a finite overflow, by sign), so that
    :func:`expansion_value` can follow IEEE rules without ever adding infinities. Rows are
    indexed, not sliced: a slice in a loop of many groups costs its reference counting.
    """
    if x != x:
        specials[row, 0] += 1
        return count
    if x == np.inf:
        specials[row, 1] += 1
        return count
    if x == -np.inf:
        specials[row, 2] += 1
        return count
    i = 0
    for j in range(count):
        y = terms[row, j]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            terms[row, i] = lo
            i += 1
        x = hi
    if x == np.inf or x == -np.inf:  # finite terms overflowed: the total is that infinity
        specials[row, 1 if x > 0 else 2] += 1
        return 0
    terms[row, i] = x
    return i + 1


@strict_jit
def rounded_sum(terms, count, partials):
    """The correctly rounded (half-even) sum of ``terms[:count]``: CPython 3.11's ``math.fsum``
    (its exact partial sums, then the rounding of the top partials), compiled so that the
    100,000 group totals of a run cost microseconds, not a Python call each. ``partials``:
    scratch room for ``count + 1`` values (an array made for each of 100,000 groups cost 14 ms)."""
    n = 0
    for k in range(count):
        x = terms[k]
        i = 0
        for j in range(n):
            y = partials[j]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[i] = lo
                i += 1
            x = hi
        n = i
        if x != 0.0:
            partials[n] = x
            n += 1
    if n == 0:
        return 0.0
    n -= 1
    hi = partials[n]
    lo = 0.0
    while n > 0:
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            break
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        if y == x - hi:
            hi = x
    return hi


@strict_jit
def expansion_value(terms, count, specials):
    """The correctly rounded value of an expansion, with IEEE rules for NaN and infinities."""
    return _expansion_value(specials[0], specials[1], specials[2], terms, count, np.empty(count + 1))


@strict_jit
def _expansion_value(nan, pos_inf, neg_inf, terms, count, partials):
    if nan or (pos_inf and neg_inf):
        return np.nan
    if pos_inf:
        return np.inf
    if neg_inf:
        return -np.inf
    return rounded_sum(terms, count, partials)


@strict_jit
def expansion_values(terms, counts, specials, out):
    """:func:`expansion_value` of many expansions: ``out[g]`` of ``terms[g, :counts[g]]``. Each
    row is copied into one scratch row rather than sliced (a slice's reference counting, and an
    array for the partial sums, cost 14 ms over 100,000 groups; 4 ms with scratch arrays)."""
    row, partials = np.empty(terms.shape[1]), np.empty(terms.shape[1] + 1)
    for g in range(out.shape[0]):
        count = counts[g]
        for k in range(count):
            row[k] = terms[g, k]
        out[g] = _expansion_value(specials[g, 0], specials[g, 1], specials[g, 2], row, count, partials)


def segment_count(n: int, first: int) -> int:
    """Number of segments of a batch of ``n`` rows whose first block boundary is at ``first``."""
    rest = n - first
    return (1 if first else 0) + -(-rest // BLOCK_ROWS)


#: A batch of fewer segments than this may be scored in pieces of equal rows, across segment
#: bounds, so that every thread has the same work to the end: 12,500 rows of 32,000 classes are
#: 7 blocks, and on two threads one scored 4 while the other scored 3 (pieces of segments
#: instead: 11 against 7 pieces of the same size). A constant, not the thread count: a kernel
#: reading the thread count could not be cached, and the bits do not depend on the pieces anyway.
PIECES = 16

#: ... pieces of at least this many elements (a row function call has fixed costs).
MIN_PIECE_ELEMENTS = 1 << 18


@strict_jit
def piece_count(segments, elements):
    """Pieces of a batch of ``segments`` segments of ``elements`` values in all: the most of
    :data:`PIECES`, 8, 4 or 2 (a power of two: as many for each of 2, 4, 8 threads) whose pieces
    hold :data:`MIN_PIECE_ELEMENTS` each, when that is more than the segments; else 1, the
    segments scored as they are (with their fused block sums: a batch of 10 blocks of 100
    classes scored in 7 pieces on two threads took 0.16 s a run where its blocks took 0.09)."""
    if segments == 0 or segments >= PIECES:
        return 1
    pieces = PIECES
    while pieces > 1 and elements // pieces < MIN_PIECE_ELEMENTS:
        pieces //= 2
    return pieces if pieces > segments else 1


@strict_jit
def segment_rows(k, first, n):
    """Rows ``(lo, hi)`` of segment ``k`` of a batch of ``n`` rows whose first block boundary is
    at ``first``: ``[0, first)`` when ``first > 0``, then blocks of :data:`BLOCK_ROWS`."""
    if first > 0:
        if k == 0:
            return 0, first
        k -= 1
    lo = first + k * BLOCK_ROWS
    return lo, min(lo + BLOCK_ROWS, n)


@strict_jit
def denominator_sum(den):
    """:func:`sum_block` of a full block of denominators, bit for bit, without its adds when every
    row has the same denominator ``v`` (1, C, a class weight: no sample weights, no ignored rows).

    :func:`sum_block` adds ``BLOCK_ROWS / 8 = 256`` terms per lane; when ``v``'s significand ends
    in 8 zero bits, every partial sum ``j v`` (``j <= 256``) is exact, so each lane holds ``256 v``
    and their sums ``512 v, 1024 v, 2048 v``, exactly: the result is ``BLOCK_ROWS * v``. ``v = 0``
    is left to :func:`sum_block` (its lanes start from ``+0.0``, ``2048 * -0.0`` is ``-0.0``), as
    are values within a factor 2**24 of overflow. The check is :func:`all_equal`.
    """
    v = den[0]
    exact = den.shape[0] == BLOCK_ROWS and v != 0.0 and abs(v) < 2.0**1000 and (bits_of(v) & 0xFF) == 0
    return v * BLOCK_ROWS if exact and all_equal(den, v) else sum_block(den)


@strict_jit(forceinline=False)
def close_segment(k, lo, hi, first, loss, den, sums, edge_loss, edge_den):
    """A full block's sums (:func:`block_sums`, or :func:`sum_block` of the losses and
    denominators when ``sums`` has only their 2 columns) into ``sums[k]``; a partial segment's row values to
    ``edge_*`` (the head ``[0, first)`` at 0, the tail after it)."""
    never_inlined()
    if hi - lo == BLOCK_ROWS:
        if sums.shape[1] > 2:
            block_sums(loss, den, sums[k])
        else:  # no standard error asked for: its products cost 0.6 ns a row
            sums[k, 0] = sum_block(loss)
            sums[k, 1] = denominator_sum(den)
    else:
        at = 0 if lo == 0 else first
        edge_loss[at : at + hi - lo] = loss
        edge_den[at : at + hi - lo] = den


def _blocks_template(
    args, n, first, sums, counts, edge_loss, edge_den, row_loss, row_den, marks, predicted, confidence
):
    """Per-segment sums and counts of one batch (template: ``ROWS`` is bound per loss family).

    Segments: ``[0, first)`` (the end of a block begun by an earlier batch), then blocks of
    ``BLOCK_ROWS`` rows, the last possibly partial. A full block's row losses and denominators
    are summed by :func:`block_sums` (with their products, when ``sums`` has room for them:
    ``N_SUMS`` columns rather than 2); a partial segment's row values go
    to ``edge_*`` (head rows at ``[0, first)``, tail rows after them) for the accumulator to join
    with their block.

    A full block goes to the family's fused ``BLOCK_SUMS`` first (:func:`make_drivers`), when it
    has one, with the row values' slices (empty when not asked for).

    In the same pass, when they are not empty, ``row_loss``/``row_den`` (float64), ``marks``
    (``MARK_*`` values), ``predicted`` (int32) and ``confidence`` (float64, the predicted
    class's probability) receive each of the ``n`` rows' values: groups, per-row outputs and
    reports need no second scoring. Empty, the row values stay in per-block
    scratch arrays that never leave the cache.

    A batch of few, large segments (:func:`piece_count`) is scored in pieces of equal rows in
    parallel, into rows of the whole batch, and its segments are closed after: a row's values do
    not depend on the rows scored with it, so the sums are the same bits either way.
    """
    nseg = counts.shape[0]
    pieces = piece_count(nseg, args[0].size)
    split = pieces > 1
    asked = row_loss.shape[0] > 0  # the rows' values go to the whole batch's arrays
    whole = asked or split  # pieces' row values wait in the batch's arrays for their segment
    loss_rows = row_loss if asked or not split else np.empty(n)
    den_rows = row_den if asked or not split else np.empty(n)
    # split: the counts of part (k, q), segment k's rows in piece q, at [k * P + q]
    task_counts = np.zeros((nseg * pieces, N_COUNTS), dtype=np.int64) if split else counts
    # One loop, so one call of ROWS and of BLOCK_SUMS: each loop is a gufunc that links the
    # row function's code, to optimise and emit again (float32 class-index driver, cold: 18.9 s
    # to compile with a loop for pieces and one for blocks, 12.9 s with one). Tasks run
    # piece-major, so the threads' equal shares of the tasks are whole pieces.
    for task in prange(nseg * pieces):
        t = np.int64(task)  # a prange index can be unsigned: int64 * uint64 is a float
        piece, k = t // nseg, t % nseg
        lo, hi = segment_rows(k, first, n)
        a, b = lo, hi
        if split:  # rows [n q / P, n (q + 1) / P) of piece q, cut at the segment's bounds
            a, b = max(lo, n * piece // pieces), min(hi, n * (piece + 1) // pieces)
        if a >= b:
            continue
        fused = False
        if not split and hi - lo == BLOCK_ROWS:
            # row values too where asked (``row_loss`` not empty): the slices are empty otherwise
            fused, c = BLOCK_SUMS(  # noqa: F821 (bound by make_drivers)
                args,
                lo,
                hi,
                sums[k],
                row_loss[lo:hi],
                row_den[lo:hi],
                marks[lo:hi],
                predicted[lo:hi],
                confidence[lo:hi],
            )
        if not fused:
            loss = loss_rows[a:b] if whole else np.empty(b - a)
            den = den_rows[a:b] if whole else np.empty(b - a)
            c = ROWS(args, a, b, loss, den, marks[a:b], predicted[a:b], confidence[a:b])  # noqa: F821
        for j in range(N_COUNTS):
            task_counts[k * pieces + piece, j] = c[j]
        if not (split or fused):
            close_segment(k, lo, hi, first, loss, den, sums, edge_loss, edge_den)
    if split:  # the segments closed once all their pieces are scored
        for k in range(nseg):
            lo, hi = segment_rows(k, first, n)
            for j in range(N_COUNTS):
                counts[k, j] = task_counts[k * pieces : (k + 1) * pieces, j].sum()
            close_segment(k, lo, hi, first, loss_rows[lo:hi], den_rows[lo:hi], sums, edge_loss, edge_den)


def _rowwise_template(args, n, out):
    """Per-row losses into ``out`` (``reduction="none"``), block by block in parallel."""
    nblocks = -(-n // BLOCK_ROWS)
    for k in prange(nblocks):
        lo = k * BLOCK_ROWS
        hi = min(lo + BLOCK_ROWS, n)
        den = np.empty(hi - lo)
        none = np.empty(0, dtype=np.int32)  # no marks, no predictions, no confidences
        ROWS(args, lo, hi, out[lo:hi], den, none, none, np.empty(0))  # noqa: F821 (bound by make_drivers)


@strict_jit
def no_block_sums(args, lo, hi, out, loss, den, marks, predicted, confidence):
    """The fused block sums of a family that has none (:func:`make_drivers`): no block is done."""
    return False, (0, 0, 0, 0, 0, 0)


def _bind(template, rows, block_sums, family):
    name = f"{family}{template.__name__.removeprefix('_').removesuffix('_template')}"
    return bound_copy(template, name, ROWS=rows, BLOCK_SUMS=block_sums)


class Drivers(types.SimpleNamespace):
    """The compiled drivers of one loss family: ``blocks``/``rowwise``, each serial or parallel."""


def make_drivers(rows, family: str, block_sums=no_block_sums) -> Drivers:
    """Compile the block and row-wise drivers for a family's row function ``rows``.

    ``rows(args, lo, hi, loss, den, marks, predicted, confidence)`` fills ``loss[:hi-lo]`` and
    ``den[:hi-lo]`` (and ``marks``/``predicted``/``confidence`` unless they are empty) for rows
    ``[lo, hi)`` of the arrays packed in the tuple ``args`` and returns the
    :data:`COUNT_FIELDS` counts. ``block_sums(args, lo, hi, out, loss, den, marks, predicted,
    confidence)`` may sum a full block straight
    into ``out`` (its 2 or :data:`~.codes.N_SUMS` sums) with the bits the row function and
    :func:`close_segment` would give, filling the row values the row function would where they
    are not empty, returning ``(True, counts)``, or decline with ``(False, ...)``. Each driver
    gets its own qualified name so Numba caches them separately.

    Both are called once a block, so they are compiled not to be inlined (``forceinline=False``):
    Numba links a callee's code into every function that calls it and optimises it there again,
    once per call site when it is inlined; a parallel driver has a copy in its gufunc and in
    itself (AMD Zen 4, float32 class-index drivers cold: serial 7.3 -> 4.1 s, parallel 26 ->
    13 s with :func:`_blocks_template`'s one loop).
    """
    blocks_serial, blocks_parallel = serial_and_parallel(
        _bind(_blocks_template, rows, block_sums, f"{family}_")
    )
    rowwise_serial, rowwise_parallel = serial_and_parallel(
        _bind(_rowwise_template, rows, block_sums, f"{family}_")
    )
    return Drivers(blocks=(blocks_serial, blocks_parallel), rowwise=(rowwise_serial, rowwise_parallel))
