"""Rows of a few classes transposed into class-major slices (:mod:`fastxent.kernels.transpose`):
the same bits, for every class count, row count and layout."""

import numba
import numpy as np
import pytest

from fastxent.kernels.transpose import transpose_rows


@numba.njit(cache=False)
def _transposed(rows, columns):
    transpose_rows(rows, columns)


def _bit_patterns(rng, n, c):
    """Random float32 bit patterns (NaN payloads, infinities, -0.0, subnormals among them)."""
    bits = rng.integers(0, 2**32, (n, c), dtype=np.uint64).astype(np.uint32)
    bits.reshape(-1)[: min(4, n * c)] = [0x80000000, 0x7F800000, 0x7FC01234, 0x00000001][: min(4, n * c)]
    return bits.view(np.float32)


@pytest.mark.parametrize("num_classes", list(range(1, 18)))
def test_float32_rows_keep_their_bits_whatever_the_counts(num_classes):
    """16-row blocks by vectors, the last rows one by one, classes past 16 by the loop: each
    class row holds the rows' values bit for bit, and nothing past the rows is written."""
    rng = np.random.default_rng(num_classes)
    for n in (0, 1, 15, 16, 17, 33, 100, 512):
        rows = _bit_patterns(rng, n, num_classes)
        columns = np.full((num_classes, 530), -1.0, np.float32)
        _transposed(rows, columns)
        np.testing.assert_array_equal(columns[:, :n].view(np.uint32), rows.T.view(np.uint32))
        assert (columns[:, n:] == -1.0).all()


@pytest.mark.parametrize("dtype", [np.float64, np.uint16])
def test_other_types_and_strided_rows_take_the_loop(dtype):
    """float64 rows, float16 bits (uint16) and rows that are a strided view are copied value by
    value, to the same result."""
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 60000, (70, 7)).astype(dtype)
    columns = np.zeros((7, 80), dtype)
    _transposed(rows, columns)
    np.testing.assert_array_equal(columns[:, :70], rows.T)
    wide = _bit_patterns(rng, 70, 14)
    strided = wide[:, ::2]  # not C-contiguous
    columns = np.zeros((7, 80), np.float32)
    _transposed(strided, columns)
    np.testing.assert_array_equal(columns[:, :70].view(np.uint32), strided.T.view(np.uint32))
