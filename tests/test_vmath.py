"""The vectorisable float32 exp/log/log1p against NumPy over the whole float32 range, and the
float64 exp of non-positive numbers."""

import numpy as np
import pytest
from numba import types
from numba.extending import intrinsic

from fastxent.kernels.binary import softplus_finish, softplus_heads
from fastxent.kernels.blocks import sum_block
from fastxent.kernels.formulas import fsoftplus_tail
from fastxent.kernels.jit import elementwise_jit, vector_jit
from fastxent.kernels.row_excess import REDUCTION_SHARE
from fastxent.kernels.vmath import (
    emit_exp_reduced,
    exp_difference32,
    exp_nonpositive64,
    is_finite,
    log1p32,
    log1p_unit32,
    log32,
    softplus_tail32,
)


@elementwise_jit
def _apply(which, values, out):
    for i in range(values.shape[0]):
        v = values[i]
        if which == 0:
            out[i] = log1p_unit32(v)
        elif which == 1:
            out[i] = log32(v)
        elif which == 2:
            out[i] = log1p32(v)
        else:
            out[i] = exp_difference32(v, np.float32(0.0))


# every 251st float32 bit pattern: all exponents, both signs, subnormals, inf, NaN
BITS = np.arange(0, 2**32, 251, dtype=np.uint64).astype(np.uint32)
VALUES = np.concatenate(
    [BITS.view(np.float32), np.array([0, -0.0, np.inf, -np.inf, np.nan, 1e-45], np.float32)]
)


@pytest.mark.parametrize("which,numpy_fn", [(1, np.log), (2, np.log1p)])
def test_against_numpy(which, numpy_fn):
    out = np.empty_like(VALUES)
    _apply(which, VALUES, out)
    with np.errstate(all="ignore"):
        want = numpy_fn(VALUES.astype(np.float64))
        want32 = want.astype(np.float32)
    special = ~np.isfinite(want32) | (want32 == 0)
    np.testing.assert_array_equal(out[special], want32[special])
    normal = ~special & (np.abs(want32) >= np.finfo(np.float32).tiny)
    rel = np.abs(out[normal] - want[normal]) / np.abs(want[normal])
    assert rel.max() < 4e-7
    subnormal = ~special & ~normal
    assert np.abs(out[subnormal] - want[subnormal]).max(initial=0) <= 2**-149


def test_exp_difference_from_zero_on_the_non_positive_half():
    values = VALUES[~(VALUES > 0)]  # every pattern <= 0, -inf and NaN
    out = np.empty_like(values)
    _apply(3, values, out)
    with np.errstate(invalid="ignore"):
        want = np.exp(values.astype(np.float64))
    kept = values >= -87.0
    assert np.isnan(out[np.isnan(values)]).all()
    assert (out[values < -87.0] == 0).all()  # flushed: below float64 resolution next to exp(0) = 1
    rel = np.abs(out[kept] - want[kept]) / want[kept]
    assert rel.max() < 4e-7
    assert (out[values == 0] == 1.0).all()  # +0.0 and -0.0


def _exp_reduced_kernel(lean):
    @intrinsic
    def exp_reduced(typingctx, x):
        def codegen(context, builder, signature, args):
            return emit_exp_reduced(builder, args[0], lean=lean)

        return types.float32(x), codegen

    @elementwise_jit
    def run(values, out):
        for i in range(values.shape[0]):
            out[i] = exp_reduced(values[i])

    return run


@pytest.mark.parametrize("lean", [False, True])
def test_exp_reduced_on_its_range(lean):
    """Within 1.9e-7 of ``np.exp`` (1.86e-7 over every float32 in [-87, 0]); the lean form
    (one multiply-add for ``n ln2``): float32 ``ln2``'s error times ``n`` more, at most
    ``0.042 |x| 2**-24`` (:data:`~fastxent.kernels.row_excess.REDUCTION_SHARE` covers it)."""
    values = VALUES[(VALUES <= 0) & (VALUES >= -87.0)]
    out = np.empty_like(values)
    _exp_reduced_kernel(lean)(values, out)
    rel = np.abs(out / np.exp(values.astype(np.float64)) - 1)
    allowed = 1.9e-7 + (0.042 * np.abs(values.astype(np.float64)) * 2.0**-24 if lean else 0.0)
    assert (rel <= allowed).all()
    assert REDUCTION_SHARE >= 0.042
    if lean:  # the reduction's error shows where n is large
        assert rel.max() > 2.5e-7


def test_log1p_unit_on_zero_to_one():
    values = VALUES[(VALUES >= 0) & (VALUES <= 1)]
    out = np.empty_like(values)
    _apply(0, values, out)
    want = np.log1p(values.astype(np.float64))
    assert (out[values == 0] == 0).all()
    positive = values > 0
    rel = np.abs(out[positive] - want[positive]) / want[positive]
    assert rel.max() < 4e-7


def test_every_half_converts_exactly():
    from fastxent.kernels.halves import widened

    halves = np.arange(2**16, dtype=np.uint16).view(np.float16)
    got = widened(halves)
    want = halves.astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    assert np.isnan(got[np.isnan(want)]).all()
    strided = np.arange(600, dtype=np.float16).reshape(20, 30)[:, ::3]
    np.testing.assert_array_equal(widened(strided), strided.astype(np.float32))


@elementwise_jit
def _exp_differences(x, m, out):
    for i in range(x.shape[0]):
        out[i] = exp_difference32(x[i], m[i])


def test_exp_difference_corrects_the_rounding_of_the_subtraction():
    rng = np.random.default_rng(0)
    m = (rng.standard_normal(200_000) * 10).astype(np.float32)
    x = (m - np.abs(rng.standard_normal(200_000) * 12)).astype(np.float32)
    x = np.minimum(x, m)
    # the case that motivated it: fl(x - m) = -17.497362 is 8e-7 off the exact -17.49736118
    x[0], m[0] = np.float32(-8.62711), np.float32(8.870252)
    out = np.empty_like(x)
    _exp_differences(x, m, out)
    want = np.exp(x.astype(np.float64) - m.astype(np.float64))
    kept = want > 1e-37
    assert (np.abs(out[kept] - want[kept]) / want[kept]).max() < 4e-7
    plain = np.exp((x - m).astype(np.float64))
    assert abs(plain[0] - want[0]) / want[0] > 5e-7  # what the uncorrected subtraction gives


def test_exp_difference_special_values():
    inf, nan = np.inf, np.nan
    x = np.array([-inf, -inf, nan, 1.0, 2.0, 0.0], np.float32)
    m = np.array([3.0, -inf, 1.0, nan, 2.0, -0.0], np.float32)
    out = np.empty_like(x)
    _exp_differences(x, m, out)
    assert out[0] == 0.0
    assert np.isnan(out[1:4]).all()  # -inf - -inf, NaN logit, NaN maximum
    assert out[4] == 1.0 and out[5] == 1.0


@elementwise_jit
def _tails(values, out):
    for i in range(values.shape[0]):
        out[i] = softplus_tail32(values[i])


def test_softplus_tail_over_every_pattern():
    values = VALUES[~np.isnan(VALUES)]
    out = np.empty_like(values)
    _tails(values, out)
    want = np.log1p(np.exp(-np.abs(values.astype(np.float64))))
    kept = np.abs(values) <= 87.0
    assert (out[~kept] == 0).all()  # below 1.6e-38: flushed
    rel = np.abs(out[kept] - want[kept]) / want[kept]
    assert rel.max() < 4e-7


@elementwise_jit
def _exp64(values, out):
    for i in range(values.shape[0]):
        out[i] = exp_nonpositive64(values[i])


def test_float64_exp_of_non_positive_numbers():
    """Within 2 ulp of ``np.exp`` down to ``exp(-708)`` (every binade of the argument, random
    and at the reduction's interval ends ``(k + 1/2) ln 2``), flushed to 0 below, IEEE at the ends."""
    rng = np.random.default_rng(3)
    halves = -(np.arange(0, 1021) + 0.5) * np.log(2.0)
    values = np.concatenate(
        [
            -(2.0 ** rng.uniform(-1074, 9.46, 200_000)),
            -rng.uniform(0, 708, 200_000),
            halves,
            np.nextafter(halves, 0),
            np.nextafter(halves, -np.inf),
            [-708.0, -5e-324, -1e-300],
        ]
    )
    out = np.empty_like(values)
    _exp64(values, out)
    want = np.exp(values)
    kept = values >= -708.0
    assert (np.abs(out[kept] - want[kept]) <= 2 * np.spacing(want[kept])).all()
    specials = np.array([0.0, -0.0, -708.5, -745.2, -1e300, -np.inf, np.nan])
    out = np.empty_like(specials)
    _exp64(specials, out)
    np.testing.assert_array_equal(out, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, np.nan])


@vector_jit
def _finite_flags(values, out):
    for i in range(values.shape[0]):
        out[i] = is_finite(values[i])


@vector_jit
def _sum_is_finite(values):
    total = sum_block(values)  # LLVM folded math.isfinite of such a sum to True under these flags
    return is_finite(total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_is_finite_under_the_vector_flags(dtype):
    """is_finite: np.isfinite of every float32 pattern class (and the same values in float64,
    the float64 extremes added), element by element and of a block sum, in a function compiled
    with vector_jit's fast-math flags."""
    values = VALUES.astype(dtype)
    if dtype == np.float64:
        values = np.concatenate([values, [np.finfo(np.float64).max, 5e-324, -1e308]])
    flags = np.empty(values.shape[0], dtype=np.bool_)
    _finite_flags(values, flags)
    assert np.array_equal(flags, np.isfinite(values))
    block = np.ones(2048, dtype=dtype)
    for special in (np.nan, np.inf, -np.inf, 0.0, -1.0):
        block[1000] = special
        assert _sum_is_finite(block) == np.isfinite(special)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_tails_in_two_stages_are_the_scalar_bits(dtype):
    """binary.softplus_heads then softplus_finish (float32: the exp of every element by quarters,
    then the log1p of each) give the bits of the scalar softplus tail of each element, over
    every float32 pattern class and for lengths that leave each remainder of the quarters."""
    for n in (0, 1, 3, 4, 5, 6, 7, 2047, 2048, VALUES.shape[0]):
        values = VALUES[-n:].astype(dtype) if n else VALUES[:0].astype(dtype)
        got = np.empty_like(values)
        _softplus_tails_of(values, got)
        want = np.empty_like(values)
        _scalar_tails(values, want)
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), n


@vector_jit
def _softplus_tails_of(values, out):
    softplus_heads(values, out)
    for i in range(values.shape[0]):
        out[i] = softplus_finish(out[i])


@elementwise_jit
def _scalar_tails(values, out):
    for i in range(values.shape[0]):
        out[i] = fsoftplus_tail(values[i])
