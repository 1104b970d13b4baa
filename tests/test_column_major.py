"""Multiclass input stored class by class (Fortran-order arrays, one Parquet column per class).

It runs on kernels that sweep one class over many rows (``index_target_columns``); they must give
the row kernels' losses, counts and determinism.
"""

import subprocess
import sys

import numpy as np
import pytest
from cases import multiclass_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent import engine
from fastxent.kernels import multiclass
from fastxent.kernels import reference as ref
from fastxent.kernels.codes import BLOCK_ROWS
from fastxent.spec import LossSpec


def _tol(x):
    # float64: log Z of a confident row (Z = 1 + tiny) is off by an ulp of 1 in every
    # implementation (torch's too), so tiny losses get an absolute tolerance of a few ulp
    return dict(rtol=1e-12, atol=1e-15) if x.dtype == np.float64 else dict(rtol=1e-6, atol=0)


def test_fortran_order_takes_the_column_kernels_and_c_order_does_not():
    x = np.zeros((10, 3), dtype=np.float32)
    spec = LossSpec("multiclass")
    y = np.zeros(10, dtype=np.int64)
    assert next(engine.chunks(spec, np.asfortranarray(x), y)).drivers is multiclass.INDEX_TARGET_COLUMNS
    assert next(engine.chunks(spec, x, y)).drivers is multiclass.INDEX_TARGET
    # one class is both C- and Fortran-contiguous: the row kernels
    one = np.asfortranarray(x[:, :1])
    assert next(engine.chunks(spec, one, y)).drivers is multiclass.INDEX_TARGET


@pytest.mark.parametrize(
    "name, x, y, kwargs", multiclass_cases(np.random.default_rng(11), n=2 * BLOCK_ROWS + 77, c=7)
)
def test_fortran_order_gives_the_row_kernels_losses(name, x, y, kwargs):
    xf = np.asfortranarray(x)
    rows = fx.cross_entropy(x, y, reduction="none", **kwargs)
    columns = fx.cross_entropy(xf, y, reduction="none", **kwargs)
    np.testing.assert_allclose(columns, rows, **_tol(x))
    expected = ref.cross_entropy(x.astype(np.float64), y, **kwargs)
    assert fx.cross_entropy(xf, y, **kwargs) == pytest.approx(expected, rel=_tol(x)["rtol"])


@pytest.mark.parametrize("c", [2, 3, 4, 5, 8, 13, 130])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_remainder_of_four_classes(c, dtype):
    rng = np.random.default_rng(c)
    x = (rng.standard_normal((3000, c)) * 5).astype(dtype)
    y = rng.integers(0, c, 3000)
    xf = np.asfortranarray(x)
    np.testing.assert_allclose(
        fx.cross_entropy(xf, y, reduction="none"), ref.cross_entropy(x, y, reduction="none"), **_tol(x)
    )
    a, b = fx.Accumulator(), fx.Accumulator()
    a.update(x, y)
    b.update(xf, y)
    assert a.result().accuracy == b.result().accuracy


def test_ties_and_special_values_count_as_the_row_kernels_do():
    nan, inf = np.nan, np.inf
    rows = [
        ([0.0, -0.0, 0.0, 1.0, 1.0], [3, 4, 0]),  # first maximum wins
        ([-0.0, 0.0, -1.0, -2.0, -3.0], [0, 1]),  # -0.0 == 0.0 ties
        ([-inf] * 5, [0, 2]),
        ([nan, 1.0, 2.0, 3.0, 3.0], [3, 0]),
        ([1.0, 2.0, inf, 2.0, 1.0], [2, 1]),
        ([1.0, 2.0, 3.0, 4.0, 5.0], [4, 3]),  # the maximum in the class left over after sweeps of 4
        ([5.0, 4.0, 3.0, 2.0, 1.0], [0, 4]),
    ]
    x = np.array([r for r, targets in rows for _ in targets], dtype=np.float32)
    y = np.array([t for _, targets in rows for t in targets])
    xf = np.asfortranarray(x)
    np.testing.assert_allclose(
        fx.cross_entropy(xf, y, reduction="none"), fx.cross_entropy(x, y, reduction="none"), rtol=1e-6
    )
    a, b = fx.Accumulator(), fx.Accumulator()
    a.update(x, y)
    b.update(xf, y)
    ra, rb = a.result(), b.result()
    assert (rb.accuracy, rb.nonfinite, rb.scored) == (ra.accuracy, ra.nonfinite, ra.scored)
    # correct: row 0 target 3, row 1 target 0 (-0.0 ties 0.0), the -inf row's target 0, then
    # targets 2, 4 and 0 of the last three rows; a NaN row is never correct
    assert ra.accuracy == pytest.approx(6 / 15)
    assert ra.nonfinite == 6  # the -inf, NaN and +inf rows


def test_log_probabilities_and_probabilities():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5000, 6)).astype(np.float64)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    y = rng.integers(0, 6, 5000)
    y[::9] = -100
    for kwargs in ({}, {"weight": rng.random(6)}):
        assert fx.nll_loss(np.asfortranarray(logp), y, **kwargs) == pytest.approx(
            fx.nll_loss(logp, y, **kwargs), rel=1e-12
        )
    proba = np.exp(logp)
    labels = np.where(y < 0, 0, y)
    weights = rng.random(5000)
    assert fx.log_loss(labels, np.asfortranarray(proba), sample_weight=weights) == pytest.approx(
        fx.log_loss(labels, proba, sample_weight=weights), rel=1e-12
    )
    off = proba.copy()
    off[3] *= 1.5
    with pytest.warns(UserWarning, match="do not sum to one"):
        fx.log_loss(labels, np.asfortranarray(off))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3 * BLOCK_ROWS + 50),
    c=st.integers(2, 11),
    cuts=st.lists(st.integers(0, 3 * BLOCK_ROWS + 50), max_size=4),
)
def test_fortran_batches_split_anywhere_give_the_same_bits(seed, n, c, cuts):
    rng = np.random.default_rng(seed)
    x = np.asfortranarray((rng.standard_normal((n, c)) * 4).astype(np.float32))
    y = rng.integers(-1, c, n)
    whole = fx.Accumulator(ignore_index=-1, label_smoothing=0.1)
    whole.update(x, y)
    streamed = fx.Accumulator(ignore_index=-1, label_smoothing=0.1)
    bounds = sorted({0, n, *(k for k in cuts if k < n)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        streamed.update(x[lo:hi], y[lo:hi])
    a, b = whole.result(), streamed.result()
    assert a.total == b.total
    assert (a.scored, a.ignored, a.accuracy) == (b.scored, b.ignored, b.accuracy) or n == 0


def test_warmup_compiles_the_column_kernels():
    # in a fresh process: here, other tests have compiled them already
    probe = (
        "from fastxent.warmup import warmup\n"
        "from fastxent.kernels import multiclass\n"
        "assert warmup(parallel=False) > 0\n"
        "print(' '.join(str(s[0]) for s in multiclass.INDEX_TARGET_COLUMNS.blocks[0].signatures))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert "float32" in done.stdout and "float64" in done.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pad", [0, 1, 512, 700])
def test_classes_padded_apart_are_read_in_place_with_the_same_bits(dtype, pad):
    """The first N rows of a Fortran-order (N + pad, C) array, or of classes padded apart in a
    (C, N + pad) array, reach the column kernels as that array (no copy) and give the bits of
    the same values contiguous, sums and per-row losses; a slice that does not begin at the
    array's first row, or another type, is copied as before."""
    rng = np.random.default_rng(pad)
    n, c = 3 * BLOCK_ROWS + 77, 23
    whole = np.asfortranarray(rng.standard_normal((n + pad, c)).astype(dtype) * 4)
    y = rng.integers(0, c, n)
    spec = LossSpec("multiclass")
    padded_rows = np.ascontiguousarray(whole.T)

    def is_view_of(a, rows) -> bool:  # the same memory, shape and strides
        return (a.ctypes.data, a.shape, a.strides) == (rows.ctypes.data, rows.shape, rows.strides)

    for x, rows in ((whole[:n], whole.T), (padded_rows[:, :n].T, padded_rows)):
        assert is_view_of(engine.class_rows(x), rows) if pad else x.flags.f_contiguous
        chunk = next(engine.chunks(spec, x, y))
        assert is_view_of(chunk.args[0], rows if pad else x.T)
        same = np.asfortranarray(x)
        assert fx.cross_entropy(x, y, reduction="sum") == fx.cross_entropy(same, y, reduction="sum")
        np.testing.assert_array_equal(
            fx.cross_entropy(x, y, reduction="none"), fx.cross_entropy(same, y, reduction="none")
        )
    later = whole[1:]
    y = rng.integers(0, c, later.shape[0])
    assert engine.class_rows(later) is None
    assert not np.shares_memory(next(engine.chunks(spec, later, y)).args[0], whole)
    copied = np.asfortranarray(later)
    assert fx.cross_entropy(later, y, reduction="sum") == fx.cross_entropy(copied, y, reduction="sum")
    assert engine.class_rows(whole[:n].astype(np.float16)) is None
