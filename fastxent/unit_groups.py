"""A whole unit's groups summed in the thread that scored it, for the run's group table to add.

The fused pass (:mod:`fastxent.run.fused`) scores each Parquet row group in a worker thread,
while the run's :class:`~fastxent.groups.GroupTable` belongs to the thread adding the units in
order. :func:`unit_sums` numbers the unit's keys by a dictionary of its own (the codes of the
row group's dictionary page, or Arrow's ``dictionary_encode``), then sums each group's blocks
and counts its rows (:func:`~.kernels.unit_groups.unit_group_sums`): everything the fold of a
whole unit does but the additions to the table, which
:meth:`~fastxent.groups.GroupTable.add_unit` makes from these sums (a few a group). Binary 20M
rows by ``split``, two threads: the thread adding units had 0.3 ms a unit of folding left
where the others waited for it.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .kernels import unit_groups as kernels
from .kernels.codes import BLOCK_ROWS, N_COUNTS, N_SUMS
from .kernels.compress import SPARE_ROWS
from .kernels.groups import COUNTING_GROUPS_PER_ROW


class UnitGroups(NamedTuple):
    """The groups of a whole unit: ``keys`` (a batch of the key column, one row a group of the
    unit: its local code), then for each group with rows (a run) its code in ``runs`` and its
    :data:`~.kernels.codes.COUNT_FIELDS` in ``counts``; block ``b`` is of run ``block_run[b]``,
    its :data:`~.kernels.codes.SUM_FIELDS` ``block_sums[b]``, in each group's order."""

    keys: pa.RecordBatch
    runs: np.ndarray
    counts: np.ndarray
    block_run: np.ndarray
    block_sums: np.ndarray


def local_codes(column: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """``(codes, values)``: each row's code (int32) into ``values``, the column's distinct values
    (a null among them where the column has one); ``None`` where the codes cannot number its
    groups (a dictionary with a value twice, or codes outside it: the batch path says what)."""
    if pa.types.is_dictionary(column.type):
        values, indices = column.dictionary, column.indices
        if column.null_count:  # the null rows' entry: one past the dictionary
            indices = indices.fill_null(len(values))
            values = pa.concat_arrays([values, pa.nulls(1, values.type)])
        if pc.count_distinct(values, mode="all").as_py() != len(values):
            return None
    else:
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        values, indices = encoded.dictionary, encoded.indices
    codes = np.asarray(indices.cast(pa.int32()))
    if codes.size and (codes.min() < 0 or codes.max() >= len(values)):
        return None
    return codes, values


class _Scratch(threading.local):
    """A thread's arrays for :func:`~.kernels.unit_groups.unit_group_sums`, kept from unit to
    unit (fresh megabytes cost a page fault every 4 KB)."""

    def __init__(self):
        self.index = np.empty(0, np.int32)
        self.values = self.ones = np.empty(0)
        self.marks = np.empty(0, np.int32)

    def arrays(self, n: int, ngroups: int) -> tuple:
        room = n + SPARE_ROWS
        need = 2 * n + 2 + min(ngroups, COUNTING_GROUPS_PER_ROW * n)
        if self.index.shape[0] < need:
            self.index = np.empty(need, np.int32)
        if self.values.shape[0] < room:
            self.values, self.marks, self.ones = np.empty(room), np.empty(room, np.int32), np.ones(room)
        return self.ones, self.index, self.values, self.marks


_scratch = _Scratch()


def unit_sums(name: str, column: pa.Array, loss: np.ndarray, marks: np.ndarray) -> UnitGroups | None:
    """The groups of a whole unit whose rows have the keys ``column`` (of the ``group_by``
    column ``name``), losses ``loss`` (float64) and ``marks`` (int32), every denominator 1;
    ``None`` where :func:`local_codes` cannot number them."""
    found = local_codes(column)
    if found is None:
        return None
    codes, values = found
    n, ngroups = codes.shape[0], len(values)
    runs = np.empty(n + 1, np.int32)
    counts = np.zeros((min(n, ngroups), N_COUNTS), np.int64)
    block_run = np.empty(n // BLOCK_ROWS + min(n, ngroups), np.int32)
    block_sums = np.empty((block_run.shape[0], N_SUMS))
    nruns, nblocks = kernels.unit_group_sums(
        codes, ngroups, loss, marks, *_scratch.arrays(n, ngroups), runs, counts, block_sums, block_run
    )
    keys = pa.RecordBatch.from_arrays([values], names=[name])
    return UnitGroups(keys, runs[:nruns], counts[:nruns], block_run[:nblocks], block_sums[:nblocks])
