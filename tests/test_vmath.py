"""The vectorisable float32 exp/log/log1p against NumPy over the whole float32 range."""

import numpy as np
import pytest

from fastxent.kernels.jit import elementwise_jit
from fastxent.kernels.vmath import exp32, log1p32, log32


@elementwise_jit
def _apply(which, values, out):
    for i in range(values.shape[0]):
        v = values[i]
        out[i] = exp32(v) if which == 0 else (log32(v) if which == 1 else log1p32(v))


# every 251st float32 bit pattern: all exponents, both signs, subnormals, inf, NaN
BITS = np.arange(0, 2**32, 251, dtype=np.uint64).astype(np.uint32)
VALUES = np.concatenate(
    [BITS.view(np.float32), np.array([0, -0.0, np.inf, -np.inf, np.nan, 1e-45], np.float32)]
)


@pytest.mark.parametrize("which,numpy_fn", [(0, np.exp), (1, np.log), (2, np.log1p)])
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
