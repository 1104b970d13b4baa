"""The row maximum's explicit vectors (fastxent.kernels.row_vectors) against its loop.

Float32 rows contiguous in memory run 16-lane vectors with a masked last vector; any other row
runs the loop. Rows of every length around the vector width, specials anywhere (the masked tail
included), and values just past the end of the row that must not be read. The sums of
exponentials: tests/test_row_excess.py.
"""

import numpy as np
import pytest
from cases import float32_rows, strided
from numba import njit

from fastxent.kernels.row_vectors import LANES, max_key

LENGTHS = [*range(1, 3 * LANES + 3), 255, 256, 257, 1000]


@njit(cache=False)
def _max_key_of(row):
    return max_key(row)


def _float_of_key(key):
    """The float32 whose ordered key is ``key`` (the inverse of vmath.ordered_key)."""
    return np.int32(key ^ ((key >> 31) & 0x7FFFFFFF)).view(np.float32)


@pytest.mark.parametrize("n", LENGTHS)
def test_max_key_of_every_length_equals_the_loop(n):
    rng = np.random.default_rng(n)
    for row in float32_rows(rng, n):
        key = _max_key_of(row)
        assert key == _max_key_of(strided(row))
        assert _float_of_key(key) == row.max()


@pytest.mark.parametrize("n", [1, 5, 16, 17, 31, 100])
def test_a_nan_anywhere_is_the_maximum(n):
    for at in {0, n // 2, n - 1}:
        row = np.linspace(-3, 3, n).astype(np.float32)
        row[at] = np.nan
        key = _max_key_of(row)
        assert np.isnan(_float_of_key(key))
        assert key == _max_key_of(strided(row))


@pytest.mark.parametrize("n", [1, 7, 15, 16, 17, 40, 257])
def test_nothing_past_the_row_is_read(n):
    """The masked last vector reads only the row's own values: values after it in memory
    (larger than the maximum, NaN) do not change the maximum."""
    rng = np.random.default_rng(n)
    values = (rng.standard_normal(n) * 3).astype(np.float32)
    for after in (np.float32(np.inf), np.float32(np.nan), np.float32(1e30)):
        memory = np.full(n + 2 * LANES, after, dtype=np.float32)
        memory[:n] = values
        row = memory[:n]
        assert _max_key_of(row) == _max_key_of(values.copy())
