"""The row-major kernel's explicit vectors (fastxent.kernels.row_vectors) against its loops.

Float32 rows contiguous in memory run 16-lane vectors with a masked last vector; any other row
runs the loops. Rows of every length around the vector width, specials anywhere (the masked tail
included), and values just past the end of the row that must not be read.
"""

import numpy as np
import pytest
from numba import njit

from fastxent.kernels.row_vectors import LANES, excess_terms, max_key

LENGTHS = [*range(1, 3 * LANES + 3), 255, 256, 257, 1000]


@njit(cache=False)
def _max_key_of(row):
    return max_key(row)


@njit(cache=False)
def _excess_of(segment, m):
    return excess_terms(segment, m)


def _float_of_key(key):
    """The float32 whose ordered key is ``key`` (the inverse of vmath.ordered_key)."""
    return np.int32(key ^ ((key >> 31) & 0x7FFFFFFF)).view(np.float32)


def _strided(row):
    """The same values as a strided view (layout 'A'): the loops' path."""
    spread = np.repeat(row, 2)[::2]
    assert not spread.flags.c_contiguous or row.shape[0] <= 1
    return spread


def _rows(rng, n):
    """Rows of ``n`` float32 values: spread, with ties at the maximum, and with specials."""
    spread = (rng.standard_normal(n) * 4).astype(np.float32)
    tied = spread.copy()
    tied[rng.integers(0, n, 3)] = spread.max()
    special = spread.copy()
    special[rng.integers(0, n, 2)] = -np.inf
    special[rng.integers(0, n)] = -0.0
    return [spread, tied, special]


@pytest.mark.parametrize("n", LENGTHS)
def test_max_key_of_every_length_equals_the_loop(n):
    rng = np.random.default_rng(n)
    for row in _rows(rng, n):
        key = _max_key_of(row)
        assert key == _max_key_of(_strided(row))
        assert _float_of_key(key) == row.max()


@pytest.mark.parametrize("n", [1, 5, 16, 17, 31, 100])
def test_a_nan_anywhere_is_the_maximum(n):
    for at in {0, n // 2, n - 1}:
        row = np.linspace(-3, 3, n).astype(np.float32)
        row[at] = np.nan
        key = _max_key_of(row)
        assert np.isnan(_float_of_key(key))
        assert key == _max_key_of(_strided(row))


@pytest.mark.parametrize("n", LENGTHS)
def test_excess_terms_of_every_length(n):
    rng = np.random.default_rng(1000 + n)
    for row in _rows(rng, n):
        m = row.max()
        s, ties = _excess_of(row, m)
        s_loop, ties_loop = _excess_of(_strided(row), m)
        assert ties == ties_loop == np.count_nonzero(row == m)
        wide = row.astype(np.float64)
        others = wide[wide != m]
        want = np.exp(others - np.float64(m)).sum()
        assert abs(float(s) - want) <= 2e-6 * want + 1e-30
        assert abs(float(s_loop) - want) <= 2e-6 * want + 1e-30


@pytest.mark.parametrize("n", [1, 7, 15, 16, 17, 40, 257])
def test_nothing_past_the_row_is_read(n):
    """The masked last vector reads only the row's own values: values after it in memory
    (larger than the maximum, NaN) change neither the maximum nor the sums."""
    rng = np.random.default_rng(n)
    values = (rng.standard_normal(n) * 3).astype(np.float32)
    for after in (np.float32(np.inf), np.float32(np.nan), np.float32(1e30)):
        memory = np.full(n + 2 * LANES, after, dtype=np.float32)
        memory[:n] = values
        row = memory[:n]
        assert _max_key_of(row) == _max_key_of(values.copy())
        m = values.max()
        assert _excess_of(row, m) == _excess_of(values.copy(), m)


def test_confident_rows_keep_the_relative_precision_of_small_terms():
    """A confident row's terms are all tiny: the sum holds them to float32 precision, without
    the maximum's exp(0) = 1 rounding them away (the ties are counted apart)."""
    for n in (17, 100, 1000):
        row = np.full(n, -20.0, dtype=np.float32)
        row[n // 3] = 0.0
        s, ties = _excess_of(row, np.float32(0.0))
        want = (n - 1) * np.exp(np.float64(np.float32(-20.0)))
        assert ties == 1
        assert abs(float(s) - want) <= 1e-6 * want


def test_a_tie_in_the_masked_vector_is_counted():
    row = np.zeros(21, dtype=np.float32)
    row[:20] = -1.0
    row[20] = 2.0  # the maximum, in the last (masked) vector
    s, ties = _excess_of(row, np.float32(2.0))
    assert ties == 1
    assert abs(float(s) - 20 * np.exp(-3.0)) <= 1e-6 * 20 * np.exp(-3.0)


@pytest.mark.parametrize("n", [2, 17, 100])
def test_each_subtraction_is_corrected(n):
    """``fl(x - m)`` is off by up to half its ulp; the TwoSum error term corrects each term, in
    the vectors as in the loops (a kernel's fast-math flags on this IR would fold it to 0)."""
    x, m = np.float32(-8.62711), np.float32(8.870252)  # fl(x - m) 8e-7 off the exact difference
    row = np.full(n, -np.inf, dtype=np.float32)
    row[0], row[n - 1] = m, x
    want = np.exp(np.float64(x) - np.float64(m))
    uncorrected = np.exp(np.float64(np.float32(x - m)))
    assert abs(uncorrected - want) / want > 5e-7
    for values in (row, _strided(row)):
        s, ties = _excess_of(values, m)
        assert ties == 1
        assert abs(float(s) - want) / want < 2e-7
