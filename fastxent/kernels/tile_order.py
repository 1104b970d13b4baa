"""The GPU's summation order, on the host: how a block's rows are summed when a GPU scores them.

A CUDA tile kernel sums its :data:`~.codes.TPB` rows in shared memory by halving strides
(``s[i] += s[i + stride]`` for ``stride = TPB/2, ..., 1``; rows past the end count 0.0), and the
host adds a block's ``BLOCK_ROWS / TPB`` tile sums by the same halving tree. A block of the
stream has one GPU value whatever batches its rows came in: when a batch holds a whole block,
the GPU sums it; when the block's rows arrive in pieces, the host joins them and sums them here
in the very same order. GPU results therefore do not depend on ``batch_rows`` either (they agree
with the CPU's :func:`~.blocks.sum_block` within rounding, not to the bit).
"""

from __future__ import annotations

import numpy as np

from .codes import BLOCK_ROWS, TPB
from .jit import strict_jit

#: Tiles per block.
TILES_PER_BLOCK = BLOCK_ROWS // TPB


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
def tiles_to_blocks(tile_sums, out):
    """``out[b, q]``: the halving-tree sum of tiles ``[b*16, (b+1)*16)`` of ``tile_sums[:, q]``,
    for every column ``q``."""
    scratch = np.empty(TILES_PER_BLOCK)
    for b in range(out.shape[0]):
        for q in range(out.shape[1]):
            for k in range(TILES_PER_BLOCK):
                scratch[k] = tile_sums[b * TILES_PER_BLOCK + k, q]
            out[b, q] = halving_sum(scratch)


@strict_jit
def block_sum(values):
    """A block's sum (up to ``BLOCK_ROWS`` row values, the rest 0.0) in the GPU's order: each tile
    by :func:`halving_sum`, then the tiles by :func:`halving_sum`."""
    tiles = np.zeros(TILES_PER_BLOCK)
    tile = np.empty(TPB)
    for k in range(TILES_PER_BLOCK):
        lo = k * TPB
        if lo >= values.shape[0]:
            break
        tile[:] = 0.0
        hi = min(lo + TPB, values.shape[0])
        tile[: hi - lo] = values[lo:hi]
        tiles[k] = halving_sum(tile)
    return halving_sum(tiles)
