"""Whole units of many small groups folded where their rows stand, without sorting them first.

A unit of the source holding 100,000 users' rows holds one to a few rows of each: sorted by
group (:func:`~.groups.sort_by_group`), each group's rows are a run of their own, summed by
loops of one to six steps whose ends the branch predictor cannot foresee, ~37 ns a run (73,000
runs of a 131,072-row unit: 2.7 ms, one thread, AMD Zen 3). Here each row is added to its
group's sums in one pass over the rows (:func:`scatter_rows`), then each group's sums are added
to its state (:func:`ADD_SUMS`) by code without a data-dependent branch.

The same bits as the sorted fold: a group's block of fewer than :data:`~.lanes.LANES` rows is
its rows added in order to ``+0.0`` (:func:`~.blocks.range_sums`), which is what adding them to
a zeroed sum as they come does. Groups with more rows in the unit are left to the sorted fold:
their rows are handed back (``big_rows``), as are the rows with a rare mark (ignored,
non-finite, unnormalised: ``rare_rows``), whose counts :func:`add_rare_marks` adds.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .blocks import exact_add_value
from .codes import (
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
from .groups import compensated
from .jit import serial_and_parallel, strict_jit
from .lanes import LANES
from .prefetch import prefetch_row

#: The columns of the scattered sums a group: its rows' losses, their squares, its rows, and
#: its correct predictions (counts as float64: exact below ``2**53``).
TOTAL, SQUARES, ROWS, CORRECT_ROWS = range(4)
SUM_COLUMNS = 4
#: Rows ahead whose group's sums :func:`scatter_rows` asks for (:mod:`.prefetch`): 16 too few,
#: 32 and 64 alike (131,072 rows into 92,000 groups, caches flushed: 1.48, 0.94, 0.87 ms).
AHEAD = 32
#: Marks counted apart (:func:`add_rare_marks`): rows with one are few.
RARE_MARKS = MARK_IGNORED | MARK_NONFINITE | MARK_UNNORMALISED


@strict_jit
def scatter_rows(gid, loss, marks, sums, groups, big_rows, rare_rows):
    """Add each row to its group's ``sums`` (``(G, SUM_COLUMNS)``, zero on entry), in row order;
    return ``(ngroups, nbig, nrare)``.

    A pass counts each group's rows (``sums[g, ROWS]``), then rows of groups with fewer than
    :data:`~.lanes.LANES` go to their sums; the others' rows are listed in ``big_rows`` (the first
    ``nbig``) and their sums left at zero but for their count. ``groups[:ngroups]`` lists the
    groups summed, in order (room for ``G``); ``rare_rows[:nrare]`` the summed rows with a
    :data:`RARE_MARKS` mark. Two passes rather than one: adding to a group's sums only after its
    count is known keeps each row's work to one cache line, which the count shares (one pass that
    summed every row and the big groups' rows taken out after: 1.9 ms against 1.5). Each pass
    asks for the sums :data:`AHEAD` rows on (:func:`~.prefetch.prefetch_row`).
    """
    n = gid.shape[0]
    for i in range(n):
        prefetch_row(sums, gid[min(i + AHEAD, n - 1)])
        sums[gid[i], ROWS] += 1.0
    nbig = nrare = 0
    for i in range(n):
        prefetch_row(sums, gid[min(i + AHEAD, n - 1)])
        g = gid[i]
        if sums[g, ROWS] >= LANES:
            big_rows[nbig] = i
            nbig += 1
            continue
        x = np.float64(loss[i])
        mark = marks[i]
        sums[g, TOTAL] += x
        sums[g, SQUARES] += x * x
        sums[g, CORRECT_ROWS] += mark >> MARK_CORRECT_SHIFT
        rare_rows[nrare] = i
        nrare += (mark & RARE_MARKS) != 0
    ngroups = 0
    for g in range(sums.shape[0]):  # written each time, kept when summed: no branch
        rows = sums[g, ROWS]
        groups[ngroups] = g
        ngroups += (rows > 0.0) & (rows < LANES)
    return ngroups, nbig, nrare


def _add_sums(groups, ngroups, sums, judged_per_row, counts, moments, terms, nterms, specials, den_rows):
    """Add each group of ``groups[:ngroups]``'s scattered ``sums`` (:func:`scatter_rows`) to its
    state, as the sorted fold adds a block of unweighted rows
    (:func:`~.groups.FOLD_ROWS`): the losses' sum ``0.0 + s`` exactly to expansion row ``2g``, the
    rows to ``den_rows[g]``, ``sum loss**2``, ``sum loss * 1 = sum loss`` and ``sum 1 * 1 = rows``
    to the moments (:func:`~.groups.compensated`), the rows and correct predictions to the
    counts (scored as if unmarked: :func:`add_rare_marks` corrects them); then zero the sums.

    Returns how many groups were left because their losses' expansion is full (an addition can
    lengthen it by one term): their sums stay, for the caller to widen the expansions and call
    again, which adds those (the others' sums are zero: no rows, nothing to add)."""
    width = terms.shape[1]
    left = 0
    for k in prange(ngroups):
        g = groups[k]
        rows = sums[g, ROWS]
        row = 2 * g
        if rows == 0.0 or nterms[row] == width:  # added already, or no room
            left += rows != 0.0
            continue
        total = 0.0 + sums[g, TOTAL]
        nterms[row] = exact_add_value(terms, row, nterms[row], specials, total)
        n = np.int64(rows)
        den_rows[g] += n
        squares = 0.0 + sums[g, SQUARES]
        moments[g, 0, 0], moments[g, 0, 1] = compensated(moments[g, 0, 0], moments[g, 0, 1], squares)
        moments[g, 1, 0], moments[g, 1, 1] = compensated(moments[g, 1, 0], moments[g, 1, 1], total)
        moments[g, 2, 0], moments[g, 2, 1] = compensated(moments[g, 2, 0], moments[g, 2, 1], rows)
        counts[g, SCORED] += n
        counts[g, JUDGED] += n * judged_per_row
        counts[g, CORRECT] += np.int64(sums[g, CORRECT_ROWS])
        for q in range(SUM_COLUMNS):
            sums[g, q] = 0.0
    return left


#: :func:`_add_sums`, serial and parallel (:func:`~.jit.serial_and_parallel`).
ADD_SUMS = serial_and_parallel(_add_sums, strict_jit)


@strict_jit
def add_rare_marks(gid, marks, rare_rows, nrare, judged_per_row, counts):
    """Count the :data:`RARE_MARKS` of rows ``rare_rows[:nrare]`` in their groups' ``counts``
    (an ignored row is not scored, nor judged)."""
    for k in range(nrare):
        i = rare_rows[k]
        g, mark = gid[i], marks[i]
        ignored = (mark & MARK_IGNORED) != 0
        counts[g, IGNORED] += ignored
        counts[g, SCORED] -= ignored
        counts[g, JUDGED] -= ignored * judged_per_row
        counts[g, NONFINITE] += (mark & MARK_NONFINITE) != 0
        counts[g, UNNORMALISED] += (mark & MARK_UNNORMALISED) != 0


@strict_jit
def clear_big_groups(gid, big_rows, nbig, sums):
    """Zero the counts :func:`scatter_rows` left in the sums of the groups of ``big_rows``."""
    for k in range(nbig):
        sums[gid[big_rows[k]], ROWS] = 0.0
