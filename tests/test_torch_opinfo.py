"""torch's own OpInfo samples for the four losses, scored by fastxent and by torch.

``torch.testing._internal.common_methods_invocations.op_db`` lists, for each operator, the
inputs torch tests it with (shapes, weights, ``ignore_index``, label smoothing, reductions,
K-dim and unbatched inputs). Each float32/float64 CPU sample is scored by fastxent, tensors
passed as they are (with ``requires_grad``), and compared with torch's float64 result on the same
values: fastxent computes float32 input in float32, so it must be within 1e-6 of it (float64:
1e-12). Skipped when torch is not installed.
"""

import sys
import types
import unittest

import numpy as np
import pytest

import fastxent as fx

torch = pytest.importorskip("torch")

if "expecttest" not in sys.modules:
    try:
        import expecttest  # noqa: F401
    except ImportError:
        # torch's test helpers import expecttest only for the TestCase base class of their suites;
        # sample inputs do not use it, so a stand-in lets them load without torch's dev extras
        sys.modules["expecttest"] = types.SimpleNamespace(TestCase=unittest.TestCase)

op_db = pytest.importorskip("torch.testing._internal.common_methods_invocations").op_db

FASTXENT = {
    "nn.functional.cross_entropy": fx.cross_entropy,
    "nn.functional.nll_loss": fx.nll_loss,
    "nn.functional.binary_cross_entropy": fx.binary_cross_entropy,
    "nn.functional.binary_cross_entropy_with_logits": fx.binary_cross_entropy_with_logits,
}
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}


def _samples():
    for op in op_db:
        if op.name in FASTXENT:
            for dtype in TOLERANCE:
                for i, sample in enumerate(op.sample_inputs("cpu", dtype, requires_grad=True)):
                    yield pytest.param(op, dtype, sample, id=f"{op.name.split('.')[-1]}-{dtype}-{i}")


def _double(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().double()
    return value


@pytest.mark.parametrize("op, dtype, sample", list(_samples()))
def test_opinfo_sample(op, dtype, sample):
    got = FASTXENT[op.name](sample.input, *sample.args, **sample.kwargs)
    want = op.op(
        _double(sample.input),
        *(_double(a) for a in sample.args),
        **{k: _double(v) for k, v in sample.kwargs.items()},
    ).numpy()
    if sample.kwargs.get("reduction", "mean") == "none":
        assert isinstance(got, np.ndarray) and got.shape == want.shape
        assert got.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=0)


def test_every_loss_has_samples():
    names = {p.values[0].name for p in _samples()}
    assert names == set(FASTXENT)
