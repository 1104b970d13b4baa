"""Where a batch is scored: one protocol, a CPU and a CUDA implementation.

A :class:`Backend` turns a validated batch into *partials* aligned to the stream's fixed blocks
of :data:`~fastxent.kernels.codes.BLOCK_ROWS` rows (:mod:`fastxent.kernels.blocks`): each whole
block's :data:`~fastxent.kernels.codes.SUM_FIELDS`, the counts, and the rows of blocks the batch
holds only part of, all from one kernel pass, with each row's loss, denominator, marks and
predicted class when asked. It sums a block joined from pieces in its own order
(:meth:`Backend.block_sums`), so that a block has one value whatever batches its rows came in,
and gives per-row losses (``reduction="none"``). The :class:`~fastxent.state.Accumulator` holds
the state and adds the partials; it never asks which device it runs on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from ..spec import LossSpec


class Backend(Protocol):
    """What the accumulator needs of a device (see the module)."""

    name: str

    def validated(self, spec: LossSpec, kind: str, input, target, sample_weight, weight, where, input_name):
        """The batch checked and converted for this device: ``(x, target, sample_weight,
        element_weight, weight_mode)``."""

    def partials(
        self, spec: LossSpec, batch: tuple, offset: int, row_values, moments: bool
    ) -> Iterator[tuple[int, int, int, tuple]]:
        """``(position, rows, first, (sums, counts, edge_loss, edge_den))`` for consecutive row
        ranges of ``batch``, whose first row is row ``offset`` of the stream; ``first`` is the
        range's first block boundary. ``row_values`` (a
        :class:`~fastxent.engine.RowValues` of the batch's rows), when given, receives each row's
        values; ``moments``: the sums include the products of the standard error."""

    def block_sums(self, loss: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:
        """A block's :data:`~fastxent.kernels.codes.SUM_FIELDS` from its rows, in this device's
        order, into ``out``."""

    def row_losses(self, spec: LossSpec, batch: tuple, out: np.ndarray) -> None:
        """Each row's loss into ``out`` (``reduction="none"``)."""


def select(device: str) -> Backend:
    """The backend of ``device`` (``"cpu"`` or ``"cuda"``; ``"auto"`` is resolved before, by
    :func:`fastxent.gpu.choose`). The CUDA one imports numba-cuda only when it first scores."""
    if device == "cuda":
        from .cuda import CudaBackend

        return CudaBackend()
    from .cpu import CpuBackend

    return CpuBackend()
