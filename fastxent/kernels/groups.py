"""Per-group block sums, folded from the row values of one scoring pass.

Each group's rows form a stream of their own, in source order, summed in blocks of
:data:`~.codes.BLOCK_ROWS` rows of *that* stream exactly as :func:`~.blocks.sum_block` would sum
them: eight interleaved lanes, then ``((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`` plus the rest of a
partial block added in order. Lanes receive whole rounds of eight values (a round waits in
``pending`` until it is complete), so a block folded row by row across any number of batches
gives the same bits as :func:`~.blocks.sum_block` over its rows: group results do not depend on
batch sizes, and a group's state is 56 numbers however many rows it has. The products the
standard error needs (:data:`~.codes.SUM_FIELDS`) are folded the same way, block values then
added in compensated sums (:func:`add_compensated`).
"""

from __future__ import annotations

import numpy as np

from .blocks import exact_add
from .codes import (
    BLOCK_ROWS,
    CORRECT,
    IGNORED,
    JUDGED,
    MARK_CORRECT_SHIFT,
    MARK_IGNORED,
    MARK_NONFINITE,
    MARK_UNNORMALISED,
    N_SUMS,
    NONFINITE,
    SCORED,
    UNNORMALISED,
)
from .jit import strict_jit

#: Lanes of :func:`~.blocks.sum_block`.
LANES = 8


@strict_jit
def lane_total(lanes, rest):
    """``sum_block``'s value of a block whose full rounds are in ``lanes`` and whose last
    values (fewer than eight) add up to ``rest``."""
    return (
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    ) + rest


@strict_jit
def add_round(lanes, pending):
    """Add a complete round of eight rows (``pending[0]`` losses, ``pending[1]`` denominators)
    to a group's :data:`~.codes.SUM_FIELDS` lanes: the values and their products, as
    :func:`~.blocks.block_sums` forms them."""
    for lane in range(LANES):
        a = pending[0, lane]
        d = pending[1, lane]
        lanes[0, lane] += a
        lanes[1, lane] += d
        lanes[2, lane] += a * a
        lanes[3, lane] += a * d
        lanes[4, lane] += d * d


@strict_jit
def close_lanes(lanes, pending, npending, out):
    """A group's open block as :func:`~.blocks.block_sums` would sum its rows, into ``out``
    (its ``N_SUMS`` values); the lanes are emptied."""
    rests = np.zeros(N_SUMS)
    for i in range(npending):
        a = pending[0, i]
        d = pending[1, i]
        rests[0] += a
        rests[1] += d
        rests[2] += a * a
        rests[3] += a * d
        rests[4] += d * d
    for q in range(N_SUMS):
        out[q] = lane_total(lanes[q], rests[q])
        lanes[q, :] = 0.0


@strict_jit
def fold_rows(
    gid, row_loss, row_den, marks, judged_per_row, lanes, pending, filled, counts, done_group, done_sums
):
    """Fold one batch's rows (in order) into their groups' open blocks.

    ``gid[i]`` is row ``i``'s group; ``lanes`` ``(G, N_SUMS, 8)`` hold each group's open block
    (losses, denominators and their products, :func:`add_round`), ``pending`` ``(G, 2, 8)`` its
    incomplete round of rows, ``filled[g]`` its rows so far; ``counts[g]`` gets the
    :data:`~.codes.COUNT_FIELDS` from the rows' ``marks`` (a scored row is judged
    ``judged_per_row`` times: C for multilabel). Each block that fills up is summed into
    ``done_group``/``done_sums`` (room for one per ``BLOCK_ROWS`` rows plus one per group);
    returns how many.
    """
    ndone = 0
    for i in range(gid.shape[0]):
        g = gid[i]
        mark = marks[i]
        if mark & MARK_IGNORED:
            counts[g, IGNORED] += 1
        else:
            counts[g, SCORED] += 1
            counts[g, JUDGED] += judged_per_row
        counts[g, NONFINITE] += (mark & MARK_NONFINITE) != 0
        counts[g, CORRECT] += mark >> MARK_CORRECT_SHIFT
        counts[g, UNNORMALISED] += (mark & MARK_UNNORMALISED) != 0
        f = filled[g]
        j = f % LANES
        pending[g, 0, j] = row_loss[i]
        pending[g, 1, j] = row_den[i]
        f += 1
        if j == LANES - 1:
            add_round(lanes[g], pending[g])
        if f == BLOCK_ROWS:
            done_group[ndone] = g
            close_lanes(lanes[g], pending[g], 0, done_sums[ndone])
            ndone += 1
            f = 0
        filled[g] = f
    return ndone


@strict_jit
def close_blocks(lanes, pending, filled, done_group, done_sums):
    """Sum every open (partial) block, as at the end of a unit of the source; return how many."""
    ndone = 0
    for g in range(filled.shape[0]):
        f = filled[g]
        if f == 0:
            continue
        done_group[ndone] = g
        close_lanes(lanes[g], pending[g], f % LANES, done_sums[ndone])
        ndone += 1
        filled[g] = 0
    return ndone


@strict_jit
def add_compensated(sums, groups, values):
    """Add ``values[k]`` to group ``groups[k]``'s compensated sum ``sums[g] = (sum, error)``
    (Neumaier's: the rounding error of each addition is kept apart, so the total is accurate to
    a rounding of the exact sum whatever the order of the additions)."""
    for k in range(groups.shape[0]):
        g = groups[k]
        s = sums[g, 0]
        x = values[k]
        t = s + x
        if abs(s) >= abs(x):
            sums[g, 1] += (s - t) + x
        else:
            sums[g, 1] += (x - t) + s
        sums[g, 0] = t


@strict_jit
def add_exactly(terms, nterms, specials, groups, values):
    """Add ``values[k]`` exactly to group ``groups[k]``'s expansion (``terms[g]``, ``nterms[g]``,
    ``specials[g]``: see :func:`~.blocks.exact_add`)."""
    one = values[:1].copy()
    for k in range(groups.shape[0]):
        g = groups[k]
        one[0] = values[k]
        nterms[g] = exact_add(terms[g], nterms[g], specials[g], one)
