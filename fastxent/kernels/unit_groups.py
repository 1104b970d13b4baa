"""Every group's block sums of one whole unit, made apart from the group table, then added to it.

The fused pass (:mod:`fastxent.run.fused`) scores a Parquet row group in a worker thread; the
run's :class:`~fastxent.groups.GroupTable` is the consumer's alone. :func:`unit_group_sums`
does in the worker what :func:`~.groups.FOLD_ROWS` does for a whole unit up to the table: the
rows sorted by their group (codes of the unit's own key dictionary,
:func:`~.groups.sort_by_group`), each group's blocks summed (:func:`~.blocks.range_sums`) and
its counts made (:func:`~.groups.add_run_counts`). :func:`add_unit_blocks` then adds those
block sums to the table's groups in the consumer, as the fold adds them: a block's loss to its
group's exact expansion, its rows to the group's denominator count, its products to the
group's compensated moments, block after block in the group's order. The same bits as the
batch path's fold, which is left a few exact additions a unit (binary 20M rows by ``split``:
153 units of three groups).

Rows of single-column binary logits only: every denominator is 1 (``ones``).
"""

from __future__ import annotations

import numpy as np

from .blocks import exact_add_value, range_sums
from .codes import BLOCK_ROWS
from .compress import SPARE_ROWS
from .groups import add_run_counts, compensated, is_full, sort_by_group
from .jit import strict_jit


@strict_jit
def unit_group_sums(
    codes, ngroups, row_loss, marks, ones, index_scratch, value_scratch, marks_scratch, run_group, run_counts,
    block_sums, block_run,
):  # fmt: skip
    """The block sums and counts of each group of a whole unit's rows; returns ``(runs,
    blocks)``: how many groups have rows and how many blocks they have.

    ``codes`` (int32, each in ``[0, ngroups)``) are the rows' groups, ``row_loss`` (float64) and
    ``marks`` (int32) their values; every denominator is 1 (``ones``: at least ``n +``
    :data:`~.compress.SPARE_ROWS` of them). Run ``k`` is group ``run_group[k]`` (room: ``n + 1``),
    with counts ``run_counts[k]`` (:data:`~.codes.COUNT_FIELDS`, added to: zeros first); block
    ``b`` (room: ``n // BLOCK_ROWS`` plus the groups with rows) is of run ``block_run[b]``, with
    sums ``block_sums[b]`` (:data:`~.codes.SUM_FIELDS`, :func:`~.blocks.range_sums` of
    the group's rows ``[2048 j, 2048 (j + 1))`` in the unit). Scratch as
    :func:`~.groups.FOLD_ROWS` takes it: ``index_scratch`` ``2n + 2 + min(ngroups, 16n)`` int32,
    ``value_scratch`` and ``marks_scratch`` ``n + SPARE_ROWS`` float64 and int32."""
    n = codes.shape[0]
    order, run_start, starts = index_scratch[:n], index_scratch[n : 2 * n + 1], index_scratch[2 * n + 1 :]
    room = n + SPARE_ROWS
    loss, den, sorted_marks = value_scratch[:room], ones[:room], marks_scratch[:room]
    nruns = sort_by_group(
        codes, ngroups, (row_loss, ones[:n], marks), (loss, den, sorted_marks), order, run_group, run_start,
        starts, False,
    )  # fmt: skip
    nblocks = 0
    for k in range(nruns):
        lo, hi = run_start[k], run_start[k + 1]
        for start in range(lo, hi, BLOCK_ROWS):
            total, weight, loss_sq, loss_den, den_sq = range_sums(
                loss, den, start, min(start + BLOCK_ROWS, hi)
            )
            block_sums[nblocks, 0], block_sums[nblocks, 1], block_sums[nblocks, 2] = total, weight, loss_sq
            block_sums[nblocks, 3], block_sums[nblocks, 4] = loss_den, den_sq
            block_run[nblocks] = k
            nblocks += 1
        add_run_counts(sorted_marks, lo, hi, 1, run_counts, k)
    return nruns, nblocks


@strict_jit
def add_unit_blocks(groups, block_run, block_sums, first, terms, nterms, specials, moments, den_rows):
    """Add blocks ``first`` on (of :func:`unit_group_sums`; run ``k`` is the table's group
    ``groups[k]``) to the table's state (:meth:`~fastxent.groups.GroupTable.state`), as the
    fold adds a whole unit's unweighted blocks: the loss exactly to row ``2g`` of the
    expansions, the rows to ``den_rows[g]``, the products to ``moments[g]``; returns the
    blocks added up to. It stops before a block whose group's expansion is full, for the caller
    to widen the expansions and add the rest."""
    width = terms.shape[1]
    for b in range(first, block_run.shape[0]):
        g = groups[block_run[b]]
        if is_full(nterms, g, width):
            return b
        row = 2 * g
        nterms[row] = exact_add_value(terms, row, nterms[row], specials, block_sums[b, 0])
        den_rows[g] += np.int64(block_sums[b, 1])  # the block's rows (its denominators are 1)
        for q in range(3):
            moments[g, q, 0], moments[g, q, 1] = compensated(
                moments[g, q, 0], moments[g, q, 1], block_sums[b, 2 + q]
            )
    return block_run.shape[0]
