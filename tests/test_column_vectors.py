"""The class-by-class kernel's vectors (fastxent.kernels.column_vectors) against its sweeps.

Float32 columns run 16 rows a vector with their state in registers; the sweeps of
kernels.class_passes keep it in arrays. Both must give the same maxima, ``Z - 1`` and first
argmax, bit for bit: every class count around the flush of partial sums, every row count around
the vector width, any first row, and special values anywhere.
"""

import numpy as np
import pytest
from numba import njit

from fastxent.kernels.column_vectors import _column_sums_by_passes, column_sums

_by_passes = njit(cache=False)(_column_sums_by_passes)


@njit(cache=False)
def _by_vectors(columns, lo, hi, maxima, excess, first_max):
    column_sums(columns, lo, hi, maxima, excess, first_max)


def _columns(rng, c, n):
    x = (rng.standard_normal((c, n)) * 5).astype(np.float32)
    spots = rng.integers(0, n, 6)
    x[rng.integers(0, c), spots[0]] = np.inf
    x[:, spots[1]] = -np.inf  # a row of -inf: a maximum that is not finite
    x[rng.integers(0, c), spots[2]] = np.nan
    x[:, spots[3]] = x[0, spots[3]]  # a row of ties
    x[rng.integers(0, c), spots[4]] = -0.0
    x[: c // 2, spots[5]] = 0.0
    x[c // 2 :, spots[5]] = -0.0  # +0.0 and -0.0 at the maximum
    x[rng.integers(0, c), rng.integers(0, n)] = 1e-40  # a subnormal
    return x


def _results(function, x, lo, hi):
    n = hi - lo
    maxima = np.full(n, 7.0, dtype=np.float32)
    excess = np.full(n, 7.0)
    first_max = np.full(n, -1, dtype=np.int32)
    function(x, lo, hi, maxima, excess, first_max)
    return maxima, excess, first_max


@pytest.mark.parametrize("c", [1, 2, 7, 8, 9, 10, 16, 17, 24, 33])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 40, 100])
def test_vectors_give_the_sweeps_bits(c, n):
    rng = np.random.default_rng(100 * c + n)
    x = _columns(rng, c, n + 9)
    for lo, hi in ((0, n), (9, n + 9), (3, 3 + n // 2)):
        want = _results(_by_passes, x, lo, hi)
        got = _results(_by_vectors, x, lo, hi)
        np.testing.assert_array_equal(got[0].view(np.uint32), want[0].view(np.uint32))
        np.testing.assert_array_equal(got[1].view(np.uint64), want[1].view(np.uint64))
        np.testing.assert_array_equal(got[2], want[2])


def test_nothing_outside_the_rows_is_written_or_read():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((10, 64)) * 3).astype(np.float32)
    x[:, :20] = np.nan  # before the rows asked for
    x[:, 37:] = np.inf  # after them
    maxima = np.full(30, 7.0, dtype=np.float32)
    excess = np.full(30, 7.0)
    first_max = np.full(30, -1, dtype=np.int32)
    _by_vectors(x, 20, 37, maxima[:17], excess[:17], first_max[:17])
    assert (maxima[17:] == 7.0).all() and (excess[17:] == 7.0).all() and (first_max[17:] == -1).all()
    assert np.isfinite(maxima[:17]).all() and np.isfinite(excess[:17]).all()
    np.testing.assert_array_equal(maxima[:17], x[:, 20:37].max(axis=0))
    np.testing.assert_array_equal(first_max[:17], x[:, 20:37].argmax(axis=0))
    wide = x[:, 20:37].astype(np.float64)
    want = np.exp(wide - wide.max(axis=0)).sum(axis=0) - 1
    np.testing.assert_allclose(excess[:17], want, rtol=1e-6)
