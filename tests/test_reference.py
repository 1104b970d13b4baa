"""Every loss against the float64 NumPy oracle, and against torch where it is installed."""

import numpy as np
import pytest
from cases import multiclass_cases

import fastxent as fx
from fastxent.kernels import reference as ref

RNG = np.random.default_rng(1234)
CASES = multiclass_cases(RNG)


def rtol_for(x):
    return 1e-12 if x.dtype == np.float64 else 1e-6


@pytest.mark.parametrize("name,x,y,kwargs", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_oracle(name, x, y, kwargs, reduction):
    x_ref = x.astype(np.float32).astype(np.float64) if x.dtype == np.float16 else x
    got = fx.cross_entropy(x, y, reduction=reduction, **kwargs)
    want = ref.cross_entropy(x_ref, y, reduction=reduction, **kwargs)
    if reduction == "none":
        assert got.dtype == (np.float64 if x.dtype == np.float64 else np.float32)
        np.testing.assert_allclose(got, want, rtol=rtol_for(x), atol=1e-30)
    else:
        assert got == pytest.approx(want, rel=rtol_for(x))


def test_soft_targets_and_nll_match_oracle():
    x = RNG.standard_normal((500, 6))
    q = RNG.dirichlet(np.ones(6), 500)
    w = RNG.random(6)
    got = fx.cross_entropy(x, q, weight=w, label_smoothing=0.1)
    assert got == pytest.approx(ref.cross_entropy(x, q, weight=w, label_smoothing=0.1), rel=1e-12)
    logp = ref.log_softmax(x)
    y = RNG.integers(0, 6, 500)
    assert fx.nll_loss(logp, y, w) == pytest.approx(ref.nll_loss(logp, y, w), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_losses_match_oracle(dtype):
    x = (RNG.standard_normal((4000, 3)) * 8).astype(dtype)
    t = RNG.random((4000, 3)).astype(dtype)
    pw = np.array([2.0, 0.5, 1.0])
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    got = fx.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(
        got,
        ref.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none"),
        rtol=rtol,
        atol=1e-30,
    )
    for reduction in ("mean", "sum"):
        got = fx.binary_cross_entropy_with_logits(x[:, 0], t[:, 0], reduction=reduction)
        assert got == pytest.approx(
            ref.binary_cross_entropy_with_logits(x[:, 0], t[:, 0], reduction=reduction), rel=rtol
        )
    p = RNG.random((4000, 3)).astype(dtype)
    w = RNG.random(3)
    got = fx.binary_cross_entropy(p, t, weight=w)
    assert got == pytest.approx(ref.binary_cross_entropy(p, t, weight=w), rel=rtol)


def test_log_loss_matches_oracle():
    p = RNG.dirichlet(np.ones(5), 1000)
    y = RNG.integers(0, 5, 1000)
    sw = RNG.random(1000)
    got = fx.log_loss(y, p, sample_weight=sw)
    assert got == pytest.approx(ref.log_loss(y, p, np.finfo(np.float64).eps, sw), rel=1e-12)


def test_against_torch_and_sklearn_when_installed():
    torch = pytest.importorskip("torch")
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    F = torch.nn.functional
    for name, x, y, kwargs in CASES:
        if x.dtype == np.float16:
            continue
        tkw = {
            k: torch.tensor(v, dtype=torch.from_numpy(x).dtype) if k == "weight" else v
            for k, v in kwargs.items()
        }
        want = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(y), **tkw).item()
        assert fx.cross_entropy(x, y, **kwargs) == pytest.approx(want, rel=2e-6), name
    p = RNG.dirichlet(np.ones(4), 300)
    y = RNG.integers(0, 4, 300)
    assert fx.log_loss(y, p) == pytest.approx(sklearn_metrics.log_loss(y, p), rel=1e-12)
