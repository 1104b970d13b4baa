"""The CPU backend: Numba kernels, one chunk of a batch at a time (:mod:`fastxent.engine`)."""

from __future__ import annotations

import numpy as np

from .. import engine, validate
from ..kernels.blocks import block_sums
from ..kernels.codes import BLOCK_ROWS


class CpuBackend:
    """:class:`~fastxent.backends.Backend` on the CPU: blocks summed by
    :func:`~fastxent.kernels.blocks.block_sums` in the kernel pass."""

    name = "cpu"

    def validated(self, spec, kind, input, target, sample_weight, weight, where, input_name):
        located = {"where": where} if where else {}
        return validate.batch(
            spec, kind, input, target, sample_weight, weight, **located, input_name=input_name
        )

    def partials(self, spec, batch, offset, row_values, moments):
        position = offset
        for chunk in engine.chunks(spec, *batch):
            at = position - offset
            rows = None if row_values is None else row_values.rows(at, at + chunk.rows)
            first = min((-position) % BLOCK_ROWS, chunk.rows)
            yield position, chunk.rows, first, engine.run_blocks(chunk, first, rows, moments=moments)
            position += chunk.rows

    def block_sums(self, loss: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:
        block_sums(loss, den, out)

    def row_losses(self, spec, batch, out):
        position = 0
        for chunk in engine.chunks(spec, *batch):
            engine.run_rowwise(chunk, out[position : position + chunk.rows])
            position += chunk.rows
