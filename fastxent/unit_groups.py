"""A whole unit's groups summed in the thread that scored it, for the run's group table to add.

The fused pass (:mod:`fastxent.run.fused`) scores each Parquet row group in a worker thread,
while the run's :class:`~fastxent.groups.GroupTable` belongs to the thread adding the units in
order. :func:`unit_sums` takes the unit's keys as codes into a dictionary of its own (the row
group's string dictionary page, :func:`~.io.pages.scoring.take_codes`), sums each group's
blocks and counts its rows (:func:`~.kernels.unit_groups.unit_group_sums`): everything the fold
of a whole unit does but the additions to the table, which
:meth:`~fastxent.groups.GroupTable.add_unit` makes from these sums (a few a group). The thread
adding units is left 15 us a unit of the binary 20M file by ``split`` (one thread), where the
fold of the unit took 0.2-0.3 ms while the other threads waited for it.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import pyarrow as pa

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


def unit_sums(
    name: str, codes: np.ndarray, values: pa.Array, loss: np.ndarray, marks: np.ndarray
) -> UnitGroups:
    """The groups of a whole unit whose rows have the keys ``values[codes]`` (of the
    ``group_by`` column ``name``; ``values`` distinct, ``codes`` int32, each in
    ``[0, len(values))``), losses ``loss`` (float64) and ``marks`` (int32), every denominator
    1."""
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
