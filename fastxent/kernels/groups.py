"""Per-group block sums, folded from the row values of one scoring pass.

Each group's rows form a stream of their own, in source order, summed in blocks of
:data:`~.codes.BLOCK_ROWS` rows of *that* stream exactly as :func:`~.blocks.sum_block` would sum
them: eight interleaved lanes, then ``((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`` plus the rest of a
partial block added in order. Lanes receive whole rounds of eight values (a round waits in
``pending`` until it is complete), so a block folded row by row across any number of batches
gives the same bits as :func:`~.blocks.sum_block` over its rows: group results do not depend on
batch sizes, and a group's state is 38 numbers however many rows it has. The products the
standard error needs are added row by row in compensated sums (:func:`add_compensated`).
"""

from __future__ import annotations

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
    NONFINITE,
    SCORED,
    UNNORMALISED,
)
from .jit import strict_jit

#: Lanes of :func:`~.blocks.sum_block`.
LANES = 8


@strict_jit
def lane_total(lanes, pending, npending):
    """``sum_block``'s value of a block whose full rounds are in ``lanes`` and whose last
    ``npending`` (< 8) values are in ``pending``."""
    rest = 0.0
    for i in range(npending):
        rest += pending[i]
    return (
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    ) + rest


@strict_jit
def add_compensated(sums, x):
    """Add ``x`` to the compensated sum ``sums = (sum, error)`` (Neumaier's: the rounding error
    of each addition is kept apart, so ``sum + error`` is the exact sum to about a rounding,
    whatever the order of the additions)."""
    s = sums[0]
    t = s + x
    if abs(s) >= abs(x):
        sums[1] += (s - t) + x
    else:
        sums[1] += (x - t) + s
    sums[0] = t


@strict_jit
def fold_rows(
    gid,
    row_loss,
    row_den,
    marks,
    judged_per_row,
    lanes,
    pending,
    filled,
    counts,
    moments,
    done_group,
    done_sums,
):
    """Fold one batch's rows (in order) into their groups' open blocks.

    ``gid[i]`` is row ``i``'s group; ``lanes``/``pending`` ``(G, 2, 8)`` hold each group's open
    block (loss, denominator), ``filled[g]`` its rows so far; ``counts[g]`` gets the
    :data:`~.codes.COUNT_FIELDS` from the rows' ``marks`` (a scored row is judged
    ``judged_per_row`` times: C for multilabel); ``moments[g]`` (``(3, 2)``) the row's
    ``loss**2``, ``loss * den`` and ``den**2`` in compensated sums (:func:`add_compensated`),
    for the standard error: row by row, since blocks of products would cost every group's
    open block three more lanes, read at the end of every unit. Each block that fills up is
    summed into ``done_group``/``done_sums`` (room for one per ``BLOCK_ROWS`` rows plus one per
    group); returns how many.
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
        a = row_loss[i]
        d = row_den[i]
        add_compensated(moments[g, 0], a * a)
        add_compensated(moments[g, 1], a * d)
        add_compensated(moments[g, 2], d * d)
        f = filled[g]
        j = f % LANES
        pending[g, 0, j] = a
        pending[g, 1, j] = d
        f += 1
        if j == LANES - 1:
            for q in range(2):
                for lane in range(LANES):
                    lanes[g, q, lane] += pending[g, q, lane]
        if f == BLOCK_ROWS:
            done_group[ndone] = g
            for q in range(2):
                done_sums[ndone, q] = lane_total(lanes[g, q], pending[g, q], 0)
                lanes[g, q, :] = 0.0
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
        for q in range(2):
            done_sums[ndone, q] = lane_total(lanes[g, q], pending[g, q], f % LANES)
            lanes[g, q, :] = 0.0
        ndone += 1
        filled[g] = 0
    return ndone


@strict_jit
def add_exactly(terms, nterms, specials, groups, values):
    """Add ``values[k]`` exactly to group ``groups[k]``'s expansion (``terms[g]``, ``nterms[g]``,
    ``specials[g]``: see :func:`~.blocks.exact_add`); returns how many values were added.

    An addition can lengthen an expansion by one term: the loop stops before a value whose
    group's expansion already fills its row of ``terms``, for the caller to widen the rows and
    add the rest.
    """
    width = terms.shape[1]
    one = values[:1].copy()
    for k in range(groups.shape[0]):
        g = groups[k]
        if nterms[g] == width:
            return k
        one[0] = values[k]
        nterms[g] = exact_add(terms[g], nterms[g], specials[g], one)
    return groups.shape[0]


@strict_jit
def add_moments(moments, groups, other):
    """Add each of ``other[k]``'s compensated sums (``(N_SUMS - 2, 2)``: a sum, then its rounding
    errors) to group ``groups[k]``'s in ``moments`` (:func:`add_compensated`, in that order)."""
    for k in range(groups.shape[0]):
        g = groups[k]
        for q in range(other.shape[1]):
            for part in range(other.shape[2]):
                add_compensated(moments[g, q], other[k, q, part])
