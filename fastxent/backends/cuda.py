"""The CUDA backend: the block kernels of :mod:`fastxent.kernels.cuda` (:mod:`fastxent.gpu_engine`).

numba-cuda is imported when a batch is first scored, never at import. Per-row marks and
predictions come from the CPU kernels (a second pass), as the GPU kernels return losses and
denominators only.
"""

from __future__ import annotations

import numpy as np

from .. import engine, gpu, validate
from ..kernels import gpu_sum_order
from ..kernels.codes import BLOCK_ROWS


class CudaBackend:
    """:class:`~fastxent.backends.Backend` on an NVIDIA GPU: one thread block per 2048-row block of
    the stream; rows of blocks a batch holds in part are added on the host in the GPU's order
    (:mod:`~fastxent.kernels.gpu_sum_order`). The sums always include the standard error's
    products (the GPU has the arithmetic to spare)."""

    name = "cuda"

    def validated(self, spec, kind, input, target, sample_weight, weight, where, input_name):
        if gpu.is_device_array(input):
            from .. import gpu_validate

            return gpu_validate.batch(spec, kind, input, target, sample_weight, weight, input_name)
        located = {"where": where} if where else {}
        return validate.batch(
            spec, kind, input, target, sample_weight, weight, **located, input_name=input_name
        )

    def partials(self, spec, batch, offset, row_values, moments):
        from .. import gpu_engine

        n = batch[0].shape[0]
        first = min((-offset) % BLOCK_ROWS, n)
        yield offset, n, first, gpu_engine.run_blocks(spec, *batch, first)
        if row_values is not None:  # marks and predictions come from the CPU kernels
            position = 0
            for chunk in engine.chunks(spec, *batch):
                engine.run_blocks(chunk, 0, row_values.rows(position, position + chunk.rows))
                position += chunk.rows

    def block_sums(self, loss: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:
        for q, rows in enumerate((loss, den, loss * loss, loss * den, den * den)):
            out[q] = gpu_sum_order.block_sum(rows)

    def row_losses(self, spec, batch, out):
        from .. import gpu_engine

        out[:] = gpu_engine.row_values(spec, *batch)[:, 0]
