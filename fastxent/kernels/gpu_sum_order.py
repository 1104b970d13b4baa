"""The GPU's summation order, on the host: how a block's rows are summed when a GPU scores them.

A CUDA thread block sums one block of :data:`~.codes.BLOCK_ROWS` rows with :data:`~.codes.TPB`
threads: thread ``t`` adds rows ``t, t + TPB, t + 2 TPB, ...`` in that order, starting from 0.0,
and the threads' sums are then added in shared memory by halving strides
(``s[i] += s[i + stride]`` for ``stride = TPB/2, ..., 1``). A block of the stream has one GPU
value whatever batches its rows came in: when a batch holds a whole block, the GPU sums it; when
the block's rows arrive in pieces, the host joins them and sums them here in the very same order.
GPU results therefore do not depend on ``batch_rows`` either (they agree with the CPU's
:func:`~.blocks.sum_block` within rounding, not to the bit).
"""

from __future__ import annotations

import numpy as np

from .codes import ROWS_PER_THREAD, TPB
from .jit import strict_jit


@strict_jit
def halving_sum(values):
    """``values`` (a power-of-two length, summed in place) by halving strides; returns ``values[0]``."""
    stride = values.shape[0] // 2
    while stride > 0:
        for i in range(stride):
            values[i] += values[i + stride]
        stride //= 2
    return values[0]


@strict_jit
def block_sum(values):
    """A block's sum (up to ``BLOCK_ROWS`` row values) in the GPU's order: each thread's rows in
    turn, then the threads by :func:`halving_sum`."""
    threads = np.zeros(TPB)
    for step in range(ROWS_PER_THREAD):
        for t in range(TPB):
            i = step * TPB + t
            if i < values.shape[0]:
                threads[t] += values[i]
    return halving_sum(threads)
