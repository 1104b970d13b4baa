"""The rows of one group copied to the front (kernels/compress.py): packed eight at a time where
the CPU has AVX-512, permuted eight at a time where it has AVX2, row by row elsewhere; the same
rows, bits and count either way."""

import numpy as np
import pytest
from numba import njit

from fastxent.kernels.compress import SPARE_ROWS, rows_of_group, target_compresses
from fastxent.kernels.jit import target_has

SENTINEL = -12345.0


@njit
def _copy(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den):
    return rows_of_group(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den)


def _awkward_values(rng, n):
    """Float64 values whose bits a copy must keep: NaN payloads, -0.0, subnormals, infinities."""
    values = rng.normal(size=n)
    special = np.array([np.nan, -0.0, 5e-324, np.inf, -np.inf], dtype=np.float64)
    values[rng.random(n) < 0.2] = special[rng.integers(0, special.size)]
    bits = values.view(np.uint64)
    bits[rng.random(n) < 0.05] = np.uint64(0x7FF0000000000001) | rng.integers(1, 2**20, dtype=np.uint64)
    return values


def _cases():
    for n in [*range(0, 40), 63, 64, 65, 1000, 4099]:
        for ngroups in (1, 3, 9):
            yield n, ngroups


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("copy_den", [True, False])
def test_each_groups_rows_in_order_with_their_bits(strided, copy_den):
    """Contiguous arrays take the packed path where the CPU has AVX-512, the permuted one where it
    has AVX2 (strided ones, and every array on other CPUs, the row-by-row loop): the group's
    rows in order, bit for bit, their count returned, the denominators written only when asked,
    nothing written past the count plus SPARE_ROWS."""
    rng = np.random.default_rng(4)
    for n, ngroups in _cases():
        gid = rng.integers(0, ngroups, n).astype(np.int32)
        loss, den = _awkward_values(rng, n), _awkward_values(rng, n)
        marks = rng.integers(-(2**31), 2**31, n).astype(np.int32)
        if strided:
            gid, loss, den, marks = (np.repeat(a, 2)[::2] for a in (gid, loss, den, marks))
        for g in range(ngroups):
            mine = np.flatnonzero(gid == g)
            room = mine.size + SPARE_ROWS
            to = (np.full(room + 5, SENTINEL), np.full(room + 5, SENTINEL), np.full(room + 5, -7, np.int32))
            count = _copy(gid, g, loss, den, marks, *to, copy_den)
            assert count == mine.size
            np.testing.assert_array_equal(to[0][:count].view(np.uint64), loss[mine].view(np.uint64))
            np.testing.assert_array_equal(to[2][:count], marks[mine])
            if copy_den:
                np.testing.assert_array_equal(to[1][:count].view(np.uint64), den[mine].view(np.uint64))
            else:
                assert (to[1] == SENTINEL).all()
            assert (to[0][room:] == SENTINEL).all() and (to[2][room:] == -7).all()
            assert (to[1][room:] == SENTINEL).all()


def test_the_packed_path_is_compiled_where_the_cpu_has_avx512_and_permutes_on_avx2():
    rng = np.random.default_rng(5)
    gid = rng.integers(0, 3, 100).astype(np.int32)
    loss, den, marks = rng.random(100), rng.random(100), np.zeros(100, np.int32)
    to = (np.empty(100 + SPARE_ROWS), np.empty(100 + SPARE_ROWS), np.empty(100 + SPARE_ROWS, np.int32))
    _copy(gid, 1, loss, den, marks, *to, True)
    asm = "".join(_copy.inspect_asm().values())
    assert ("vcompresspd" in asm and "vpcompressd" in asm) == target_compresses()
    assert ("vpermd" in asm or "vpermps" in asm) == (target_has("avx2") and not target_compresses())
