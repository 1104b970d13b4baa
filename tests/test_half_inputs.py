"""float16 input: every half is a float32, so scoring float16 must give the bits of scoring its
float32 copy, whichever way the halves are converted (by the CPU's F16C instructions or by
integer operations) and wherever (in the row kernels a row at a time, or a piece of narrow rows
at a time, or a chunk of the batch before them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent import engine
from fastxent.kernels import halves
from fastxent.spec import LossSpec

ALL_HALVES = np.arange(2**16, dtype=np.uint16)


@numba.njit
def _by_bits(bits, out):
    for i in range(bits.shape[0]):
        out[i] = halves._float_of_half_by_bits(bits[i])


@numba.njit
def _by_cpu(bits, out):
    for i in range(bits.shape[0]):
        out[i] = halves._float_of_half_by_cpu(bits[i])


def _assert_exact(got: np.ndarray, bits: np.ndarray) -> None:
    want = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(got.view(np.uint32)[~nan], want.view(np.uint32)[~nan])
    assert np.isnan(got[nan]).all()


@pytest.mark.parametrize("path", ["bits", "cpu"])
def test_each_conversion_is_exact_for_every_half(path):
    if path == "cpu" and not halves.target_has_f16c():
        pytest.skip("this CPU has no F16C")
    out = np.empty(ALL_HALVES.shape[0], dtype=np.float32)
    (_by_bits if path == "bits" else _by_cpu)(ALL_HALVES, out)
    _assert_exact(out, ALL_HALVES)


CHILD = """
import json, sys
import numpy as np
import fastxent as fx
from fastxent.kernels import halves
bits = np.arange(2**16, dtype=np.uint16)
got = halves.widened(bits.view(np.float16))
rows = (np.random.default_rng(0).standard_normal((40, 37)) * 4).astype(np.float16)
rows[0, 36], rows[1, 0] = np.inf, np.nan
targets = np.arange(40) % 37
scores = [fx.cross_entropy(x, targets, reduction="none") for x in (rows, rows.astype(np.float32))]
print(json.dumps({
    "f16c": halves.target_has_f16c(),
    "bits": got.view(np.uint32).tolist(),
    "rows_equal": bool(np.array_equal(scores[0], scores[1], equal_nan=True)),
}))
"""

#: x86-64's baseline features: no F16C, so the conversion must not be left to the CPU.
BASELINE_FEATURES = "+64bit,+cmov,+cx8,+fxsr,+mmx,+sse,+sse2"


def test_a_target_without_f16c_converts_with_integer_operations(tmp_path):
    env = {**os.environ, "NUMBA_CPU_FEATURES": BASELINE_FEATURES, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["f16c"] is False
    _assert_exact(np.array(out["bits"], dtype=np.uint32).view(np.float32), ALL_HALVES)
    assert out["rows_equal"]  # rows of halves converted one by one score as their float32 copy


def _halves(rng, n, c):
    x = (rng.standard_normal((n, c)) * 4).astype(np.float16)
    x[0, 0], x[1, -1], x[2, c // 2] = np.inf, -np.inf, np.nan
    x[3] = x[3, 0]  # a row of ties
    x[4, 1 % c] = 6e-8  # a subnormal
    return x


#: Classes on every path of the row kernels: narrow rows (transposed slices, converted a piece
#: at a time), rows of whole vectors and a masked last one (converted a row at a time), several
#: 128-class segments, and rows longer than a narrow piece.
CLASSES = [2, 16, 17, 100, 1100, halves.PIECE_ELEMENTS // 2 + 3]


@pytest.mark.parametrize("c", CLASSES)
def test_float16_scores_as_its_float32_copy(c):
    rng = np.random.default_rng(c)
    n = max(5, min(5000, (engine.PARALLEL_MIN_ELEMENTS - 1) // c))  # serial kernels: compiled once
    x = _halves(rng, n, c)
    y = rng.integers(0, c, n)
    y[5] = -100
    assert engine.halves_in_kernel(LossSpec("multiclass"), x)
    w = rng.random(c) + 0.5
    for kwargs in ({}, {"weight": w, "label_smoothing": 0.1}, {"reduction": "none"}, {"reduction": "sum"}):
        got = fx.cross_entropy(x, y, **kwargs)
        want = fx.cross_entropy(x.astype(np.float32), y, **kwargs)
        np.testing.assert_array_equal(got, want)
    with np.errstate(invalid="ignore"):  # the rows holding infinities or NaN give NaN
        logp = x - np.log(np.exp(x.astype(np.float32)).sum(1, keepdims=True)).astype(np.float16)
    np.testing.assert_array_equal(
        fx.nll_loss(logp, y, reduction="none"), fx.nll_loss(logp.astype(np.float32), y, reduction="none")
    )


def test_binary_float16_scores_as_its_float32_copy():
    rng = np.random.default_rng(8)
    n = 50_000
    x = (rng.standard_normal(n) * 6).astype(np.float16)
    x[:5] = [np.inf, -np.inf, np.nan, 6e-8, -65504]
    t = (rng.random(n) < 0.4).astype(np.float32)
    p = (1 / (1 + np.exp(-rng.standard_normal(n)))).astype(np.float16)
    assert engine.halves_in_kernel(LossSpec("binary"), x)
    w, pos = rng.random(n) + 0.5, np.array([2.5])
    for kwargs in ({}, {"reduction": "none"}, {"weight": w, "pos_weight": pos, "reduction": "sum"}):
        np.testing.assert_array_equal(
            fx.binary_cross_entropy_with_logits(x, t, **kwargs),
            fx.binary_cross_entropy_with_logits(x.astype(np.float32), t, **kwargs),
        )
    np.testing.assert_array_equal(
        fx.binary_cross_entropy(p, t, reduction="none"),
        fx.binary_cross_entropy(p.astype(np.float32), t, reduction="none"),
    )


@pytest.mark.parametrize("layout", ["strided", "fortran"])
def test_float16_not_in_row_order_is_converted_before_the_kernels(layout):
    rng = np.random.default_rng(3)
    wide = _halves(rng, 3000, 40)
    x = wide[:, ::2] if layout == "strided" else np.asfortranarray(wide[:, :20])
    y = rng.integers(0, 20, 3000)
    assert not engine.halves_in_kernel(LossSpec("multiclass"), x)
    np.testing.assert_array_equal(
        fx.cross_entropy(x, y, reduction="none"), fx.cross_entropy(x.astype(np.float32), y, reduction="none")
    )


def test_scoring_float16_rows_gives_the_float32_rows_result(tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((8000, 30)) * 4).astype(np.float16)
    y = rng.integers(0, 30, 8000)
    groups = np.where(np.arange(8000) % 3 == 0, "a", "b")
    results, losses = {}, {}
    for dtype in (np.float16, np.float32):
        logits = pa.FixedSizeListArray.from_arrays(pa.array(x.astype(dtype).reshape(-1)), 30)
        path = tmp_path / f"{np.dtype(dtype).name}.parquet"
        score = fx.score(
            pa.table({"logits": logits, "label": y, "g": groups}),
            target="label",
            logits="logits",
            group_by="g",
            losses_to=str(path),
        )
        results[dtype] = {k: v for k, v in score.to_dict().items() if k not in fx.Score.RUN}
        losses[dtype] = pq.read_table(path)
    assert results[np.float16] == results[np.float32]
    assert len(results[np.float16]["groups"]) == 2
    assert losses[np.float16].num_rows == 8000 and losses[np.float16].equals(losses[np.float32])
