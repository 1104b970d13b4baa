"""Per-group block sums, folded from the row values of one scoring pass.

Each group's rows form a stream of their own, in source order, summed in blocks of
:data:`~.codes.BLOCK_ROWS` rows of *that* stream exactly as :func:`~.blocks.sum_block` would sum
them: eight interleaved lanes, then ``((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`` plus the rest of a
partial block added in order, each unit of the source on its own. A batch that is a whole unit
sums each group's blocks straight from its rows (:func:`~.blocks.sum_range`); otherwise a
group's open block is carried from batch to batch in lanes that receive whole rounds of eight
values (a round waits in ``pending`` until it is complete), which gives the same bits: group
results do not depend on batch sizes, and a group's state is a few dozen numbers however many
rows it has. Block sums of the losses and denominators go into exact expansions
(:func:`~.blocks.exact_add_value`); the blocks' sums of the products the standard error needs
(:data:`~.codes.SUM_FIELDS`, in :func:`~.blocks.range_sums`' order, as plain scoring sums
them) into compensated sums (:func:`compensated`).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .blocks import exact_add_value, range_sums
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
from .compress import SPARE_ROWS, rows_of_group, target_packs
from .jit import serial_and_parallel, strict_jit

#: Lanes of :func:`~.blocks.sum_block`.
LANES = 8

#: The two factors (0: loss, 1: denominator) of each of the sums :data:`~.codes.SUM_FIELDS`
#: names: the loss, the denominator, then the products ``loss**2``, ``loss * den``, ``den**2``.
FACTORS = ((0, 0), (1, 1), (0, 0), (0, 1), (1, 1))


@strict_jit(forceinline=True)
def add_round(lanes, pending, g):
    """Add a full round of eight pending rows of group ``g`` to its lanes: each of the
    :data:`FACTORS` sums (a product rounded, then added, as :func:`~.blocks.sum_range_products`
    does)."""
    for lane in range(LANES):
        loss, den = pending[g, 0, lane], pending[g, 1, lane]
        lanes[g, 0, lane] += loss
        lanes[g, 1, lane] += den
        lanes[g, 2, lane] += loss * loss
        lanes[g, 3, lane] += loss * den
        lanes[g, 4, lane] += den * den


@strict_jit(forceinline=True)
def lane_total(lanes, pending, g, q, npending):
    """``sum_block``'s value of group ``g``'s open block of sum ``q`` (:data:`FACTORS`), whose
    full rounds are in ``lanes[g, q]`` and whose last ``npending`` (< 8) rows are in ``pending[g]``."""
    a, b = FACTORS[q]
    rest = 0.0
    for i in range(npending):
        rest += pending[g, a, i] if q < 2 else pending[g, a, i] * pending[g, b, i]
    low = (lanes[g, q, 0] + lanes[g, q, 1]) + (lanes[g, q, 2] + lanes[g, q, 3])
    high = (lanes[g, q, 4] + lanes[g, q, 5]) + (lanes[g, q, 6] + lanes[g, q, 7])
    return (low + high) + rest


@strict_jit(forceinline=True)
def close_block(lanes, pending, g, npending, terms, nterms, specials, moments):
    """Add group ``g``'s open block (:func:`lane_total` of its lanes and ``npending`` pending
    rows) to its two expansions, rows ``2g`` and ``2g + 1`` (:func:`~.blocks.exact_add_value`),
    and its products to its ``moments`` (:func:`compensated`); empty its lanes. The caller has
    made sure the expansions have room (:func:`is_full`)."""
    for q in range(N_SUMS):
        total = lane_total(lanes, pending, g, q, npending)
        for lane in range(LANES):
            lanes[g, q, lane] = 0.0
        if q < 2:
            row = 2 * g + q
            nterms[row] = exact_add_value(terms, row, nterms[row], specials, total)
        else:
            moments[g, q - 2, 0], moments[g, q - 2, 1] = compensated(
                moments[g, q - 2, 0], moments[g, q - 2, 1], total
            )


@strict_jit(forceinline=True)
def is_full(nterms, g, width):
    """Whether one of group ``g``'s two expansions fills its ``width`` (the next addition could
    need one more term)."""
    return max(nterms[2 * g], nterms[2 * g + 1]) == width


@strict_jit(forceinline=True)
def compensated(s, error, x):
    """``(s + x, error')``: Neumaier's compensated addition of ``x`` to the sum ``s`` whose
    rounding errors so far add up to ``error`` (kept apart, so ``sum + error`` is the exact sum to
    about a rounding, whatever the order of the additions). The larger operand chosen by a
    select, not a branch: which one it is follows the data (100,000 groups' moments: a branch
    mispredicted at every other group)."""
    t = s + x
    larger = abs(s) >= abs(x)
    big, small = (s, x) if larger else (x, s)
    return t, error + ((big - t) + small)


@strict_jit
def add_compensated(sums, x):
    """Add ``x`` to the compensated sum ``sums = (sum, error)`` (:func:`compensated`)."""
    sums[0], sums[1] = compensated(sums[0], sums[1], x)


#: Up to this many groups, :func:`sort_by_group` partitions the rows group by group: a pass a
#: group, 0.032 ms a 131,072-row batch packed by AVX-512, 0.08 row by row, against 0.39-0.41 for
#: the counting sort (one thread, AMD Zen 4); on AVX2 (Zen 3), 0.055 ms a group permuted eight
#: rows a step against 0.75 ms for the counting sort of 5 to 12 groups.
PARTITION_GROUPS = 10 if target_packs() else 4
#: Up to this many groups a row of the batch, :func:`sort_by_group` sorts by counting: a pass
#: over the groups costs a few ns a group, a merge sort ~50 ns a row (20,480 rows into 100,000
#: groups, the default batch of 100 classes in a list: 1.8-2.9 ms with four a row, 0.6-1.0 ms).
COUNTING_GROUPS_PER_ROW = 16


@strict_jit
def sort_by_group(gid, ngroups, values, sorted_values, order, run_group, run_start, starts, copy_den):
    """Copy the rows of a batch in order of group, each group's rows in their own order; return
    how many groups have rows. Without ``copy_den`` the denominators are not copied: every row's
    is the same, and the sorted array holds it already (unweighted rows: a third less to copy:
    row by row, a split's three groups in 0.25 ms rather than 0.37).

    ``values = (loss, den, marks)`` of the rows go to ``sorted_values`` (arrays of the same
    types, with room for :data:`~.compress.SPARE_ROWS` more rows); run ``k`` (a group with rows)
    is group ``run_group[k]``, its rows ``[run_start[k], run_start[k + 1])`` of the sorted arrays. Up to
    :data:`PARTITION_GROUPS` groups, one pass per group copies its rows to the group's place
    (:func:`~.compress.rows_of_group`: no branch, no counter in memory; AVX-512 packs eight rows a
    step: a split's three groups of a 131,072-row batch in 0.10 ms, 0.25 row by row); a counting sort
    up to :data:`COUNTING_GROUPS_PER_ROW` groups a row (a pass counting the rows of each group into
    ``starts``, room for ``ngroups + 1``, then each row copied to its place); a stable merge sort
    of the ids into ``order`` otherwise (100,000 groups met in batches of a few rows): each batch
    costs its rows, not the groups known. The integer arrays are int32 (half the cache lines of
    int64: the counting sort of 131,072 rows into 100,000 groups in 0.89 ms rather than 1.09).
    """
    row_loss, row_den, marks = values
    loss, den, sorted_marks = sorted_values
    n = gid.shape[0]
    nruns = 0
    if ngroups <= PARTITION_GROUPS:
        at = 0
        for g in range(ngroups):
            k = at + rows_of_group(
                gid, g, row_loss, row_den, marks, loss[at:], den[at:], sorted_marks[at:], copy_den
            )
            if k > at:
                run_group[nruns] = g
                run_start[nruns] = at
                nruns += 1
            at = k
    elif ngroups <= COUNTING_GROUPS_PER_ROW * n:
        starts[: ngroups + 1] = 0
        for i in range(n):
            starts[gid[i] + 1] += 1
        # every group's run written, the next one over it unless the group has rows: no branch
        # (100,000 groups, 73% of them with rows a batch, mispredicted a quarter of the time)
        at = 0
        for g in range(ngroups):
            rows = starts[g + 1]
            run_group[nruns] = g
            run_start[nruns] = at
            nruns += rows > 0
            starts[g] = at
            at += rows
        for i in range(n):
            g = gid[i]
            at = starts[g]
            loss[at], sorted_marks[at] = row_loss[i], marks[i]
            if copy_den:
                den[at] = row_den[i]
            starts[g] = at + 1
    else:
        order[:] = np.argsort(gid, kind="mergesort")
        for k in range(n):
            i = order[k]
            loss[k], sorted_marks[k] = row_loss[i], marks[i]
            if copy_den:
                den[k] = row_den[i]
            if nruns == 0 or run_group[nruns - 1] != gid[i]:
                run_group[nruns] = gid[i]
                run_start[nruns] = k
                nruns += 1
    run_start[nruns] = n
    return nruns


@strict_jit(forceinline=True)
def add_run_counts(sorted_marks, lo, hi, judged_per_row, counts, g):
    """Add the :data:`~.codes.COUNT_FIELDS` of the rows ``[lo, hi)`` (their ``sorted_marks``, a
    scored row judged ``judged_per_row`` times) to ``counts[g]``."""
    ignored = nonfinite = correct = unnormalised = 0
    # no branch, and an unsigned index, which cannot wrap around as a negative one would:
    # the loop vectorises (131,072 marks 0.094 -> 0.027 ms; from ``lo`` up, 0.72 ns a row)
    first = np.uint64(lo)
    for i in range(hi - lo):
        mark = sorted_marks[first + np.uint64(i)]
        ignored += (mark & MARK_IGNORED) != 0
        nonfinite += (mark & MARK_NONFINITE) != 0
        correct += mark >> MARK_CORRECT_SHIFT
        unnormalised += (mark & MARK_UNNORMALISED) != 0
    scored = hi - lo - ignored
    counts[g, IGNORED] += ignored
    counts[g, SCORED] += scored
    counts[g, JUDGED] += scored * judged_per_row
    counts[g, NONFINITE] += nonfinite
    counts[g, CORRECT] += correct
    counts[g, UNNORMALISED] += unnormalised


def _fold_rows(
    gid,
    row_loss,
    row_den,
    marks,
    judged_per_row,
    whole_unit,
    lanes,
    pending,
    filled,
    counts,
    moments,
    terms,
    nterms,
    specials,
    den_rows,
    index_scratch,
    value_scratch,
    marks_scratch,
    ones,
):
    """Fold one batch's rows into their groups, the groups in parallel; returns the groups
    stopped because an expansion was full, and how many of their rows were folded (see below).

    ``row_loss``, ``row_den`` and ``marks`` are the rows' values, ``gid`` their groups. Of the
    groups' state (:meth:`fastxent.groups.GroupTable.state`), ``counts[g]`` gets the
    :data:`~.codes.COUNT_FIELDS` from the rows' ``marks`` (a scored row is judged
    ``judged_per_row`` times: C for multilabel). Block sums of the losses and denominators are
    added to the group's expansions: rows ``2g`` and ``2g + 1`` of ``terms (2G, width)``,
    ``nterms (2G,)`` and ``specials (2G, 3)`` (:func:`~.blocks.exact_add_value`). An addition can
    lengthen an expansion by one term: a group stops before a block whose sum would find its
    expansion full, for the caller to widen the expansions and fold the group's other rows. The
    blocks' sums of ``loss**2``, ``loss * den`` and ``den**2`` go to ``moments[g]`` (``(3, 2)``:
    compensated sums, :func:`compensated`).

    ``whole_unit``: the batch holds every row of a unit of the source (a Parquet row group read
    in one batch, the common case), so each group's blocks begin and end here: they are summed
    straight from the group's rows (:func:`~.blocks.sum_range`) and no open block is kept.
    Otherwise ``lanes`` ``(G, 5, 8)`` (the :data:`FACTORS` sums) and ``pending`` ``(G, 2, 8)``
    (loss, denominator of the last rows) carry each group's open block from batch to batch,
    ``filled[g]`` its rows so far, and a block is summed when
    it fills up (:func:`lane_total`) or its unit ends (:func:`_close_groups`): the same bits.

    The rows are sorted by group first (:func:`sort_by_group`) and their values gathered in that
    order, so a thread reads one group's rows in sequence and writes its state once, instead of
    every row's group at random (100,000 groups: 8 cache lines a row). The sort and the gathered
    values live in scratch arrays reused from batch to batch (``4n + 3 + min(G, 4n) + 1``
    integers, ``2 (n + SPARE_ROWS)`` floats, ``n + SPARE_ROWS`` marks: the partition's stores
    write past the rows, :data:`~.compress.SPARE_ROWS`): fresh megabytes cost a page fault every
    4 KB, 1.3 ms of a 131,072-row batch's 1.9. ``ones``: when every row's denominator is 1
    (unweighted rows), at least ``n + SPARE_ROWS`` ones, the sorted denominators as they are,
    and the rows' are not copied; else empty. With ``ones``, a whole unit's blocks add their row
    counts to ``den_rows[g]`` (int64) rather than their sums to the denominators' expansion: the
    same exact total once the table adds them in (100,000 groups: 73,000 exact additions a
    batch, 0.37 ms, spared). The loop's branches (room, block ends) are written here, its
    helpers branch-free, and it takes its arrays as arguments rather than in tuples: a helper
    taking arrays with a branch inside cost its calls' reference counting (8 ms a batch of
    100,000 groups against 0.6 ms), and Numba 0.68's parallel loops lost writes to arrays
    unpacked from a tuple.
    """
    n = gid.shape[0]
    ngroups = filled.shape[0]
    order, run_group = index_scratch[:n], index_scratch[n : 2 * n + 1]
    run_start, done = index_scratch[2 * n + 1 : 3 * n + 2], index_scratch[3 * n + 2 : 4 * n + 3]
    starts = index_scratch[4 * n + 3 :]
    copy_den = ones.shape[0] == 0
    room = n + SPARE_ROWS
    loss = value_scratch[:room]
    den = value_scratch[room : 2 * room] if copy_den else ones[:room]
    sorted_marks = marks_scratch[:room]
    nruns = sort_by_group(
        gid,
        ngroups,
        (row_loss, row_den, marks),
        (loss, den, sorted_marks),
        order,
        run_group,
        run_start,
        starts,
        copy_den,
    )
    done[:nruns] = -1  # rows folded of a run stopped for room
    width = terms.shape[1]
    for k in prange(nruns):
        g = run_group[k]
        lo, hi = run_start[k], run_start[k + 1]
        stop = hi  # the rows [lo, stop) are folded
        if whole_unit:
            s0, e0 = moments[g, 0, 0], moments[g, 0, 1]
            s1, e1 = moments[g, 1, 0], moments[g, 1, 1]
            s2, e2 = moments[g, 2, 0], moments[g, 2, 1]
            for start in range(lo, hi, BLOCK_ROWS):
                if is_full(nterms, g, width):
                    stop = start
                    break
                end = min(start + BLOCK_ROWS, hi)
                total, weight, loss_sq, loss_den, den_sq = range_sums(loss, den, start, end)
                row = 2 * g
                nterms[row] = exact_add_value(terms, row, nterms[row], specials, total)
                if copy_den:
                    nterms[row + 1] = exact_add_value(terms, row + 1, nterms[row + 1], specials, weight)
                else:  # unweighted: the block's denominators sum to its row count, exactly
                    den_rows[g] += end - start
                s0, e0 = compensated(s0, e0, loss_sq)
                s1, e1 = compensated(s1, e1, loss_den)
                s2, e2 = compensated(s2, e2, den_sq)
            moments[g, 0, 0], moments[g, 0, 1] = s0, e0
            moments[g, 1, 0], moments[g, 1, 1] = s1, e1
            moments[g, 2, 0], moments[g, 2, 1] = s2, e2
        else:
            f = filled[g]
            for i in range(lo, hi):
                if f == BLOCK_ROWS - 1 and is_full(nterms, g, width):
                    stop = i
                    break
                j = f % LANES
                pending[g, 0, j] = loss[i]
                pending[g, 1, j] = den[i]
                f += 1
                if j == LANES - 1:
                    add_round(lanes, pending, g)
                if f == BLOCK_ROWS:
                    close_block(lanes, pending, g, 0, terms, nterms, specials, moments)
                    f = 0
            filled[g] = f
        add_run_counts(sorted_marks, lo, stop, judged_per_row, counts, g)
        if stop < hi:
            done[k] = stop - lo
    stopped = done[:nruns] >= 0
    return run_group[:nruns][stopped], done[:nruns][stopped]


def _close_groups(lanes, pending, filled, terms, nterms, specials, moments):
    """Sum every group's open (partial) block into its expansions and moments, as at the end of a unit of
    the source, the groups in parallel. Returns how many groups stay open because an expansion
    is full (see :func:`_fold_rows`), for the caller to widen them and close again."""
    ngroups = filled.shape[0]
    left = 0
    for g in prange(ngroups):
        f = filled[g]
        if f > 0:
            if is_full(nterms, g, terms.shape[1]):
                left += 1
                continue
            close_block(lanes, pending, g, f % LANES, terms, nterms, specials, moments)
            filled[g] = 0
    return left


#: :func:`_fold_rows` and :func:`_close_groups`, serial and parallel (:func:`~.jit.serial_and_parallel`).
FOLD_ROWS = serial_and_parallel(_fold_rows, strict_jit)
CLOSE_GROUPS = serial_and_parallel(_close_groups, strict_jit)


@strict_jit
def add_exactly(terms, nterms, specials, rows, values):
    """Add ``values[k]`` exactly to expansion ``rows[k]`` (of ``terms``, ``nterms``,
    ``specials``: see :func:`~.blocks.exact_add_value`); returns how many values were added.

    An addition can lengthen an expansion by one term: the loop stops before a value whose
    expansion already fills its row of ``terms``, for the caller to widen the rows and add the
    rest.
    """
    width = terms.shape[1]
    for k in range(rows.shape[0]):
        row = rows[k]
        if nterms[row] == width:
            return k
        nterms[row] = exact_add_value(terms, row, nterms[row], specials, values[k])
    return rows.shape[0]


@strict_jit
def add_moments(moments, groups, other):
    """Add each of ``other[k]``'s compensated sums (``(N_SUMS - 2, 2)``: a sum, then its rounding
    errors) to group ``groups[k]``'s in ``moments`` (:func:`add_compensated`, in that order)."""
    for k in range(groups.shape[0]):
        g = groups[k]
        for q in range(other.shape[1]):
            for part in range(other.shape[2]):
                add_compensated(moments[g, q], other[k, q, part])
