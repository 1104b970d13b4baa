"""A row's predicted class (kernels/argmax.py): np.argmax's first maximum, the first NaN when a
NaN is the maximum; contiguous float32 rows compared 16 values a step, other rows one by one."""

import numpy as np
import pytest
from numba import njit

from fastxent.kernels.argmax import first_argmax
from fastxent.kernels.multiclass import row_max


@njit
def _predicted(rows):
    out = np.empty(rows.shape[0], dtype=np.int64)
    for r in range(rows.shape[0]):
        out[r] = first_argmax(rows[r], row_max(rows[r]))
    return out


def _rows(rng, n, c, dtype):
    rows = rng.integers(-3, 4, (n, c)).astype(dtype)  # few values: ties everywhere
    specials = np.array([np.inf, -np.inf, -0.0, 0.0, np.nan], dtype=dtype)
    mask = rng.random((n, c)) < 0.05
    rows[mask] = specials[rng.integers(0, specials.size, mask.sum())]
    rows[0] = dtype(1)  # every class the maximum
    if c > 1:
        rows[1, :] = -0.0
        rows[1, -1] = 0.0  # -0.0 == 0.0: the first
        rows[2, :] = -np.inf
    return rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
def test_the_first_maximum_of_every_row_width(dtype, strided):
    rng = np.random.default_rng(3)
    for c in [*range(1, 40), 47, 48, 49, 100, 1000]:
        rows = _rows(rng, 200, c, dtype)
        if strided:
            rows = np.repeat(rows, 2, axis=1)[:, ::2]
        want = np.argmax(rows, axis=1)  # NaN first, then the first maximum
        np.testing.assert_array_equal(_predicted(rows), want, err_msg=f"{c} classes")


def test_a_positive_nan_is_the_maximum_at_its_first_place():
    rows = np.array([[1.0, np.nan, 5.0, np.nan], [np.inf] * 17 + [np.nan]], dtype=object)
    for row in rows:
        x = np.array(row, dtype=np.float32)[None, :]
        assert _predicted(x)[0] == np.argmax(x[0])
