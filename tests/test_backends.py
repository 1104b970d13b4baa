"""The backend seam (fastxent/backends): what the accumulator asks of a device."""

from __future__ import annotations

import numpy as np
import pytest

from fastxent import backends, engine
from fastxent.kernels.blocks import block_sums
from fastxent.kernels.codes import BLOCK_ROWS, N_SUMS
from fastxent.spec import LossSpec
from fastxent.validate import batch as validated


@pytest.mark.parametrize("offset", [0, 3000, 2047])
def test_cpu_partials_tile_the_batch_on_the_stream_blocks(monkeypatch, offset):
    monkeypatch.setattr(engine, "CHUNK_ELEMENTS", 3 * 4096)  # float16 input: converted in chunks
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9000, 6)).astype(np.float16)[:, ::2]  # not in row order: converted first
    y = rng.integers(0, 3, 9000)
    spec = LossSpec("multiclass")
    batch = validated(spec, "multiclass", x, y, None, None)
    cpu = backends.select("cpu")
    values = engine.RowValues.empty(9000)
    ranges = list(cpu.partials(spec, batch, offset, values, True))
    assert len(ranges) > 1 and sum(rows for _, rows, _, _ in ranges) == 9000
    position = offset
    for start, rows, first, (sums, counts, edge_loss, _) in ranges:
        assert start == position and first == min((-start) % BLOCK_ROWS, rows)
        whole = (rows - first) // BLOCK_ROWS
        assert sums.shape[1] == N_SUMS and counts[:, 0].sum() == rows
        for k in range(whole):  # each whole block's sums are block_sums of its rows
            lo = start - offset + first + k * BLOCK_ROWS
            want = np.empty(N_SUMS)
            block_sums(values.loss[lo : lo + BLOCK_ROWS], values.den[lo : lo + BLOCK_ROWS], want)
            assert np.array_equal(sums[k + (1 if first else 0)], want)
        at = start - offset  # the rows of a block begun before this range come back as they are
        assert np.array_equal(edge_loss[:first], values.loss[at : at + first])
        position += rows


def test_losses_and_block_sums_of_the_cpu_backend():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(500, 4)), rng.integers(0, 4, 500)
    spec = LossSpec("multiclass")
    batch = validated(spec, "multiclass", x, y, None, None)
    cpu = backends.select("cpu")
    out = np.empty(500)
    cpu.row_losses(spec, batch, out)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    assert np.allclose(out, -logp[np.arange(500), y], rtol=1e-12)
    sums = np.empty(N_SUMS)
    cpu.block_sums(out, np.ones(500), sums)
    assert sums[0] == pytest.approx(out.sum(), rel=1e-14) and sums[1] == 500.0
    assert sums[2] == pytest.approx((out * out).sum(), rel=1e-14) and sums[4] == 500.0
