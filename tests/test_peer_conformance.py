"""What the peers' own test suites expect of fastxent (issue 14), as literal values.

Every number here was computed with torch 2.13 or scikit-learn 1.9 and pasted in, so these tests
run without either library installed.
"""

import math

import numpy as np
import pytest

import fastxent as fx

F32, F64 = np.float32, np.float64


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize(
    "call, shape",
    [
        (lambda x, t, **kw: fx.nll_loss(x((0, 3, 5)), t((0, 5)), **kw), (0, 5)),
        (lambda x, t, **kw: fx.cross_entropy(x((0, 3, 5)), t((0, 5)), **kw), (0, 5)),
        (lambda x, t, **kw: fx.cross_entropy(x((0, 3, 2, 4)), t((0, 2, 4)), **kw), (0, 2, 4)),
        (lambda x, t, **kw: fx.cross_entropy(x((0, 3, 5)), x((0, 3, 5)), **kw), (0, 5)),
        (lambda x, t, **kw: fx.cross_entropy(x((2, 3, 0)), t((2, 0)), label_smoothing=0.1, **kw), (2, 0)),
        (lambda x, t, **kw: fx.binary_cross_entropy(x((0, 3, 5)), x((0, 3, 5)), **kw), (0, 3, 5)),
        (lambda x, t, **kw: fx.binary_cross_entropy_with_logits(x((2, 0, 4)), x((2, 0, 4)), **kw), (2, 0, 4)),
        (
            lambda x, t, **kw: fx.binary_cross_entropy_with_logits(
                x((0, 4)), x((0, 4)), pos_weight=np.ones(4), **kw
            ),
            (0, 4),
        ),
    ],
)
def test_empty_input_gives_torch_shapes_and_values(call, shape, dtype):
    def x(s):
        return np.zeros(s, dtype)

    def t(s):
        return np.zeros(s, np.int64)

    out = call(x, t, reduction="none")
    assert out.shape == shape and out.dtype == dtype
    assert math.isnan(call(x, t, reduction="mean"))  # torch: 0/0
    assert call(x, t, reduction="sum") == 0.0


def test_empty_kdim_reproducer():
    got = fx.nll_loss(np.zeros((0, 3, 5), np.float32), np.zeros((0, 5), np.int64), reduction="none")
    assert got.shape == (0, 5) and got.dtype == np.float32
