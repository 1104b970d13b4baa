"""Arrays in Arrow's memory pool (fastxent/io/pool.py): the values NumPy would give, writable,
whatever the size and the thread."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastxent.io.pool import COUNTING_ROWS, pooled_copy, pooled_empty, pooled_range


@pytest.mark.parametrize(
    "count", [0, 1, 7, COUNTING_ROWS - 1, COUNTING_ROWS, COUNTING_ROWS + 1, 3 * COUNTING_ROWS + 5]
)
@pytest.mark.parametrize("first", [0, 12_345, 2**62])
def test_ranges_are_numpys_aranges(count, first):
    got = pooled_range(first, count)
    assert got.dtype == np.int64 and got.flags.writeable
    np.testing.assert_array_equal(got, np.arange(first, first + count, dtype=np.int64))


def test_ranges_made_by_many_threads_at_once_are_each_their_own():
    sizes = [(k * 7919, 1 + (k * 104_729) % (2 * COUNTING_ROWS)) for k in range(64)]
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda fc: pooled_range(*fc), sizes))
    for (first, count), got in zip(sizes, made, strict=True):
        np.testing.assert_array_equal(got, np.arange(first, first + count))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.float32, np.float64])
def test_copies_and_empty_arrays_have_the_type_and_the_values(dtype):
    values = np.array([0.0, 1.0, -2.5, 3e9, np.nan])
    expected = values.astype(dtype) if np.dtype(dtype).kind == "f" else values[:2].astype(dtype)
    got = pooled_copy(values if np.dtype(dtype).kind == "f" else values[:2], dtype)
    assert got.dtype == dtype and got.flags.writeable
    np.testing.assert_array_equal(got, expected)
    empty = pooled_empty(1000, dtype)
    assert empty.shape == (1000,) and empty.dtype == dtype and empty.flags.writeable
    empty[:] = 1
    assert empty.sum() == 1000
