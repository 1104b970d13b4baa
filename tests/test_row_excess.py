"""The sums of exponentials of the row-major kernel (fastxent.kernels.row_excess).

Float32 rows contiguous in memory run 16-lane vectors in segments of 128 classes with a masked
last vector; any other row runs the loops. Plain terms come with a bound on their subtractions'
rounding, and a row whose loss that bound could move is summed again with each subtraction
corrected; rows of many classes find the next row's maximum in the same loop. Rows of every
length around the vector and segment widths, specials anywhere, every scale of logits.
"""

import numpy as np
import pytest
from cases import float32_rows, strided
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import fastxent as fx
from fastxent.kernels.row_excess import (
    PLAIN_CLASSES,
    REDUCTION_SHARE,
    ROUNDING_ULPS,
    SEGMENT_CLASSES,
    bounded_terms,
    bounded_terms_ahead,
    excess_sum,
    excess_terms,
    excess_terms_ahead,
    partial_excess,
)
from fastxent.kernels.row_vectors import LANES, max_key

LENGTHS = [*range(1, 3 * LANES + 3), 127, 128, 129, 255, 256, 257, 1000, 4099]
ULP = 2.0**-24


@njit(cache=False)
def _corrected(row, m):
    return excess_terms(row, m)


@njit(cache=False)
def _bounded(row, m):
    return bounded_terms(row, m)


@njit(cache=False)
def _ahead(row, m, following):
    return bounded_terms_ahead(row, m, following)


@njit(cache=False)
def _corrected_ahead(row, m, following):
    return excess_terms_ahead(row, m, following)


@njit(cache=False)
def _partial(row, m, gap=0.0):
    return partial_excess(row, m, gap)


@njit(cache=False)
def _excess(row, m):
    return excess_sum(row, m)


@njit(cache=False)
def _max_key_of(row):
    return max_key(row)


def _exact(row, m):
    """``sum exp(x - m)`` over the values below ``m``, in float64 from the exact differences."""
    wide = row.astype(np.float64)
    return np.exp(wide[wide < m] - np.float64(m)).sum()


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_sums_within_the_promise_and_counts_ties(n):
    rng = np.random.default_rng(1000 + n)
    for row in float32_rows(rng, n):
        m = row.max()
        want = _exact(row, m)
        ties = np.count_nonzero(row == m)
        for values in (row, strided(row)):
            for s, count in (_corrected(values, m), _bounded(values, m)[:2], _partial(values, m)):
                assert count == ties
                assert abs(s - want) <= 1e-6 * want + 1e-300


@pytest.mark.parametrize("n", [1, 7, 15, 16, 17, 40, 128, 129, 257])
def test_nothing_past_the_row_is_read(n):
    """The masked last vector reads only the row's own values: values after it in memory
    (larger than the maximum, NaN) do not change the sums, nor the next row's maximum."""
    rng = np.random.default_rng(n)
    values = (rng.standard_normal(n) * 3).astype(np.float32)
    m = values.max()
    for after in (np.float32(np.inf), np.float32(np.nan), np.float32(1e30)):
        memory = np.full(n + 2 * LANES, after, dtype=np.float32)
        memory[:n] = values
        row = memory[:n]
        assert _corrected(row, m) == _corrected(values.copy(), m)
        assert _bounded(row, m) == _bounded(values.copy(), m)
        assert _ahead(values.copy(), m, row)[3] == _max_key_of(values.copy())
        assert _corrected_ahead(row, m, row) == (*_corrected(values.copy(), m), _max_key_of(values.copy()))


@pytest.mark.parametrize("n", LENGTHS)
def test_the_next_rows_maximum_comes_with_the_same_sums(n):
    rng = np.random.default_rng(n)
    rows = float32_rows(rng, n)
    nan_row = rows[0].copy()
    nan_row[n // 2] = np.nan
    rows.append(nan_row)
    for row, following in zip(rows, rows[1:] + rows[:1], strict=True):
        m = row.max()
        s, ties, bound, key = _ahead(row, m, following)
        np.testing.assert_array_equal([s, ties, bound], _bounded(row, m))  # NaN where m is NaN
        assert key == _max_key_of(following)
        # corrected straight away (rows of fewer than PLAIN_CLASSES classes): the same bits as
        # the last row of a batch, whose sums read no next row
        s, ties, key = _corrected_ahead(row, m, following)
        np.testing.assert_array_equal([s, ties], _corrected(row, m))
        assert key == _max_key_of(following)


def test_the_bound_bounds_the_plain_terms_error():
    """``2**-24 bound`` covers the plain terms' error from the rounding of ``x - m``: the row of
    one term whose subtraction is 8e-7 off is summed plain to within it, corrected to 2e-7."""
    x, m = np.float32(-8.62711), np.float32(8.870252)
    want = np.exp(np.float64(x) - np.float64(m))
    for n in (2, 17, 100, 300):
        row = np.full(n, -np.inf, dtype=np.float32)
        row[0], row[n - 1] = m, x
        s, ties, bound = _bounded(row, m)
        d = np.float64(np.float32(x - m))
        assert ties == 1
        assert bound == pytest.approx(np.exp(d) * -d, rel=1e-6)
        assert abs(s - want) / want > 5e-7  # the plain term is off...
        assert abs(s - want) <= ULP * bound + 2e-7 * want  # ...within its bound
        corrected, _ = _corrected(row, m)
        assert abs(corrected - want) / want < 2e-7
        assert _partial(row, m)[0] == corrected  # a confident row: summed again


def test_spread_rows_are_summed_once_and_confident_rows_again():
    rng = np.random.default_rng(7)
    spread = rng.standard_normal(1000).astype(np.float32)
    m = spread.max()
    s, ties, bound = _bounded(spread, m)
    assert bound <= ROUNDING_ULPS * (s + ties)  # negligible rounding...
    assert _partial(spread, m) == (s, ties)  # ...the plain sum stands
    confident = spread - np.float32(30.0)
    confident[10] = m
    s, ties, bound = _bounded(confident, m)
    assert bound > ROUNDING_ULPS * s
    assert _partial(confident, m) == _corrected(confident, m)
    short = spread[: PLAIN_CLASSES - 1]  # few classes: corrected straight away
    assert _partial(short, short.max()) == _corrected(short, short.max())


def test_a_spread_rows_plain_sum_stands_when_its_target_is_far_below_the_maximum():
    """The precision needed is relative to the whole loss, ``log Z + (m - x_t)``: a spread row of
    32,000 classes whose ``log Z`` alone the bound could move by more than 4 ulp is summed again
    without the target's gap, once with it; either way its loss is within the promise of the
    loss from the exact sum."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        row = rng.standard_normal(32000).astype(np.float32) * np.float32(3.0)
        m = row.max()
        s, ties, bound = _bounded(row, m)
        if bound * (1.0 + REDUCTION_SHARE) > ROUNDING_ULPS * (s + ties):  # log Z alone: not negligible
            break
    else:
        raise AssertionError("no row whose log Z needs the corrected sum")
    assert _partial(row, m) == _corrected(row, m)  # no gap: summed again
    target = int(np.argmin(row))
    gap = np.float64(m) - np.float64(row[target])
    assert _partial(row, m, gap) == (s, ties)  # the target far below: the plain sum stands
    exact = np.log(_exact(row, m) + ties) + gap
    plain = np.log(s + ties) + gap
    assert abs(plain - exact) <= 4 * ULP * exact


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 3 * SEGMENT_CLASSES + 5),
    scale=st.sampled_from([1e-3, 0.1, 1.0, 3.0, 8.0, 20.0, 60.0]),
    shift=st.floats(-1e3, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_row_at_any_scale_is_within_the_promise(n, scale, shift, seed):
    """Whatever the spread of the logits (so whichever tier sums them) and wherever they sit,
    ``Z - 1`` and so the loss are within 1e-6 of the exact values (terms below ``exp(-87)``
    flushed, as documented: float32 losses cannot hold them)."""
    rng = np.random.default_rng(seed)
    row = (rng.standard_normal(n) * scale + shift).astype(np.float32)
    m = row.max()
    terms = np.exp(row.astype(np.float64) - np.float64(m))
    terms[np.argmax(row)] = 0.0  # Z - 1 without cancellation (other ties stay in)
    terms[row - m < -87] = 0.0
    want = terms.sum()
    got = _excess(row, m)
    assert abs(got - want) <= 1e-6 * want + 1e-300
    assert _excess(strided(row), m) == pytest.approx(want, rel=1e-6, abs=1e-300)


@pytest.mark.parametrize("n", [1, 17, 129])
def test_a_nan_makes_the_sum_nan_and_a_non_finite_maximum_too(n):
    row = np.linspace(-3, 3, n).astype(np.float32)
    m = row.max()
    nan = row.copy()
    nan[0] = -np.float32(np.nan)  # a negative NaN is not the row's maximum key
    assert np.isnan(_partial(nan, m)[0]) and np.isnan(_excess(nan, m))
    assert np.isnan(_bounded(nan, m)[2])  # the bound says so, so the row is summed again
    for maximum in (np.float32(np.inf), np.float32(np.nan), np.float32(-np.inf)):
        assert np.isnan(_excess(row, maximum))


def test_flushed_and_minus_infinite_terms_add_nothing_to_the_bound():
    row = np.full(300, -np.inf, dtype=np.float32)
    row[5] = 1.0
    row[7] = -100.0  # exp(-101) is flushed: below exp(-87)
    s, ties, bound = _bounded(row, np.float32(1.0))
    assert (s, ties, bound) == (0.0, 1.0, 0.0)
    assert _partial(row, np.float32(1.0)) == (0.0, 1.0)


@pytest.mark.parametrize("num_classes", [PLAIN_CLASSES, 1000, 4099])
def test_row_losses_keep_the_promise_wherever_the_target_stands(num_classes):
    """Row losses of many classes (the plain sums judged against the whole loss, the target's
    gap included) against float64 from the exact differences: targets at the maximum, next to
    it and far below, logits of every spread, within 1e-6 of each row's loss."""
    rng = np.random.default_rng(num_classes)
    rows = []
    for scale in (0.01, 1.0, 3.0, 12.0, 40.0):
        rows.append(rng.standard_normal((6, num_classes)).astype(np.float32) * np.float32(scale))
    x = np.concatenate(rows)
    order = np.argsort(x, axis=1)
    picks = (order[:, -1], order[:, -2], order[:, num_classes // 2], order[:, 0])
    targets = np.concatenate([pick[i :: len(picks)] for i, pick in enumerate(picks)])
    x = np.concatenate([x[i :: len(picks)] for i in range(len(picks))])
    top = x.max(axis=1)
    # log Z as log1p(Z - 1): the maximum's exp(0) = 1 kept out of the sum, as confident rows need
    ties = np.count_nonzero(x == top[:, None], axis=1)
    excess = np.array([_exact(row, m) for row, m in zip(x, top, strict=True)]) + (ties - 1)
    gaps = np.float64(top) - x[np.arange(len(x)), targets].astype(np.float64)
    want = np.log1p(excess) + gaps
    got = fx.cross_entropy(x, targets, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_a_confident_row_with_its_target_at_the_maximum_is_summed_corrected():
    """The row of :func:`test_the_bound_bounds_the_plain_terms_error` (one term whose subtraction
    is 8e-7 off) as a row loss: its target at the maximum, the loss is that term, to within
    2e-7 (corrected); its target the other class, the term is a 1e-8 part of it."""
    x, m = np.float32(-8.62711), np.float32(8.870252)
    row = np.full((1, 300), -np.inf, dtype=np.float32)
    row[0, 0], row[0, 299] = m, x
    term = np.exp(np.float64(x) - np.float64(m))
    at_max = fx.cross_entropy(row, np.array([0]), reduction="none")[0]
    assert abs(at_max - np.log1p(term)) <= 2e-7 * np.log1p(term)
    below = fx.cross_entropy(row, np.array([299]), reduction="none")[0]
    want = np.log1p(term) + (np.float64(m) - np.float64(x))
    assert abs(below - want) <= 1e-7 * want
