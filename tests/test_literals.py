"""Literal values computed with torch 2.13 and scikit-learn 1.9 (no torch needed to run)."""

import math

import numpy as np
import pytest

import fastxent as fx

inf, nan = math.inf, math.nan

TORCH = {
    "ce_user_example": 0.4170299470424652,
    "bce_user_example": 0.10536054521799088,
    "nll_user_example": 0.3566749691963196,
    "bcel_user_example": 0.12692801654338837,
    "ce_mixed_mean_float32": 0.7221708297729492,
    "ce_mixed_sum_float32": 2.888683319091797,
    "ce_mixed_weighted_smooth_float32": inf,
    "ce_neg_inf_target_float32": inf,
    "ce_all_neg_inf_float32": nan,
    "ce_all_ignored_float32": nan,
    "ce_empty_float32": nan,
    "ce_zero_weight_float32": nan,
    "ce_soft_weighted_smooth_float32": 3.6341590881347656,
    "ce_soft_sum_float32": 6.281316757202148,
    "ce_ignore_valid_class_float32": 0.09567437320947647,
    "ce_kdim_float32": 4.427257061004639,
    "nll_weighted_float32": 1.4301517009735107,
    "bcel_pos_weight_float32": 27.130327224731445,
    "bcel_weight_sum_float32": 120.98271942138672,
    "bce_clamp_float32": 0.23489534854888916,
    "bcel_extreme_float32": 20000.0,
    "ce_mixed_mean_float64": 0.722170831698203,
    "ce_mixed_sum_float64": 2.888683326792812,
    "ce_mixed_weighted_smooth_float64": inf,
    "ce_neg_inf_target_float64": inf,
    "ce_all_neg_inf_float64": nan,
    "ce_all_ignored_float64": nan,
    "ce_empty_float64": nan,
    "ce_zero_weight_float64": nan,
    "ce_soft_weighted_smooth_float64": 3.6341593254419347,
    "ce_soft_sum_float64": 6.2813166343603255,
    "ce_ignore_valid_class_float64": 0.09567432941438228,
    "ce_kdim_float64": 4.427256261319611,
    "nll_weighted_float64": 1.4301516916150403,
    "bcel_pos_weight_float64": 27.13032763754278,
    "bcel_weight_sum_float64": 120.98271479656049,
    "bce_clamp_float64": 0.23489533304544416,
    "bcel_extreme_float64": 20000.0,
    "ce_float16_as_float32": 0.8703799247741699,
}
SKLEARN = {
    "log_loss_user": 0.35667494393873245,
    "log_loss_strings": 0.21616187468057912,
    "log_loss_binary_1d_weighted": 0.08486886435173023,
    "log_loss_unnormalised_sum": 1.7147984280919268,
    "log_loss_float32": 0.7512649893760681,
    "log_loss_labels": 0.5108256237659906,
}

X = [[1.0, 2.0, 0.1], [1e4, -1e4, 0.0], [-inf, 0.5, 1.0], [0.3, -inf, 2.0], [nan, 1.0, 2.0]]
X.append([0.2, 0.1, -0.4])
Y = [1, 0, 1, 1, -100, 2]
MIX = [0, 1, 2, 4, 5]
W = [0.5, 2.0, 1.5]
XS = [[1.0, 2.0, 0.1], [3.0, -1.0, 0.5], [0.2, 0.2, 0.2]]
Q = [[0.1, 0.6, 0.3], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]]
BL = [[2.0, -3.0, 0.5], [-40.0, 40.0, 0.0]]
BT = [[1.0, 0.0, 0.3], [1.0, 0.0, 1.0]]
BP = [[0.9, 0.0, 0.3], [1.0, 1e-30, 0.5]]
DTYPES = {"float32": (np.float32, 1e-6), "float64": (np.float64, 1e-12)}


def close(got, want, rtol):
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=rtol, abs_tol=1e-300)


def test_examples_users_know():
    logits = np.array([[1.0, 2.0, 0.1]], np.float32)
    assert close(fx.cross_entropy(logits, [1]), TORCH["ce_user_example"], 1e-6)
    assert round(fx.binary_cross_entropy(np.array([0.9]), np.array([1.0])), 4) == 0.1054
    assert close(
        fx.binary_cross_entropy(np.array([0.9], np.float32), np.array([1.0], np.float32)),
        TORCH["bce_user_example"],
        1e-6,
    )
    logp = np.log(np.array([[0.2, 0.7, 0.1]], np.float32))
    assert round(fx.nll_loss(logp, [1]), 4) == 0.3567
    assert close(fx.nll_loss(logp, [1]), TORCH["nll_user_example"], 1e-6)
    got = fx.binary_cross_entropy_with_logits(np.array([2.0], np.float32), np.array([1.0], np.float32))
    assert close(got, TORCH["bcel_user_example"], 1e-6)
    assert close(fx.log_loss([1], [[0.2, 0.7, 0.1]], labels=[0, 1, 2]), SKLEARN["log_loss_user"], 1e-12)


@pytest.mark.parametrize("name", DTYPES)
def test_torch_literals(name):
    dt, rtol = DTYPES[name]
    x, y, w = np.array(X, dt), np.array(Y), np.array(W, dt)
    xs, q = np.array(XS, dt), np.array(Q, dt)
    cases = {
        "ce_mixed_mean": fx.cross_entropy(x[MIX], y[MIX]),
        "ce_mixed_sum": fx.cross_entropy(x[MIX], y[MIX], reduction="sum"),
        "ce_mixed_weighted_smooth": fx.cross_entropy(x[MIX], y[MIX], w, label_smoothing=0.2),
        "ce_neg_inf_target": fx.cross_entropy(x[[3]], [1]),
        "ce_all_neg_inf": fx.cross_entropy(np.full((1, 3), -inf, dt), [0]),
        "ce_all_ignored": fx.cross_entropy(x[:2], [-100, -100]),
        "ce_empty": fx.cross_entropy(np.zeros((0, 3), dt), np.zeros(0, np.int64)),
        "ce_zero_weight": fx.cross_entropy(x[:2], [0, 0], weight=np.array([0.0, 1, 1], dt)),
        "ce_soft_weighted_smooth": fx.cross_entropy(xs, q, weight=w, label_smoothing=0.1),
        "ce_soft_sum": fx.cross_entropy(xs, q, reduction="sum"),
        "ce_ignore_valid_class": fx.cross_entropy(xs, [1, 0, 1], ignore_index=1),
        "ce_kdim": fx.cross_entropy(
            np.sin(np.arange(24, dtype=dt).reshape(2, 3, 2, 2)) * 3,
            np.array([[[0, 1], [2, -100]], [[1, 1], [0, 2]]]),
            w,
            label_smoothing=0.05,
        ),
        "nll_weighted": fx.nll_loss(np.log(np.exp(xs) / np.exp(xs).sum(1, keepdims=True)), [2, 0, 1], w),
        "bcel_pos_weight": fx.binary_cross_entropy_with_logits(
            np.array(BL, dt), np.array(BT, dt), pos_weight=np.array([3.0, 0.5, 2.0], dt)
        ),
        "bcel_weight_sum": fx.binary_cross_entropy_with_logits(
            np.array(BL, dt),
            np.array(BT, dt),
            weight=np.array([1.0, 2.0, 0.5], dt),
            reduction="sum",
        ),
        "bce_clamp": fx.binary_cross_entropy(np.array(BP, dt), np.array(BT, dt)),
        "bcel_extreme": fx.binary_cross_entropy_with_logits(
            np.array([1e4, -1e4, -1e4], dt), np.array([0.0, 1.0, 0.0], dt), reduction="sum"
        ),
    }
    for key, got in cases.items():
        assert close(got, TORCH[f"{key}_{name}"], rtol), (key, got, TORCH[f"{key}_{name}"])


def test_float16_is_computed_in_float32():
    xh = np.array(X[:2] + [[0.5, 0.25, -1.0]], np.float16)
    assert close(fx.cross_entropy(xh, [1, 0, 2]), TORCH["ce_float16_as_float32"], 1e-6)
    assert fx.cross_entropy(xh, [1, 0, 2], reduction="none").dtype == np.float32


def test_sklearn_literals():
    assert close(
        fx.log_loss(["spam", "ham", "ham", "spam"], [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]]),
        SKLEARN["log_loss_strings"],
        1e-12,
    )
    got = fx.log_loss([0, 1, 1, 0], [0.1, 0.8, 1.0, 0.0], sample_weight=[1.0, 2.0, 0.5, 3.0])
    assert close(got, SKLEARN["log_loss_binary_1d_weighted"], 1e-12)
    with pytest.warns(UserWarning, match="do not sum to one"):
        got = fx.log_loss([0, 1, 2], [[0.2, 0.5, 0.2], [0.1, 0.9, 0.3], [0.0, 0.0, 1.0]], normalize=False)
    assert close(got, SKLEARN["log_loss_unnormalised_sum"], 1e-12)
    p32 = np.array([[0.7, 0.2, 0.1], [1e-9, 0.5, 0.5 - 1e-9], [0.3, 0.3, 0.4]], np.float32)
    assert close(fx.log_loss([0, 2, 1], p32), SKLEARN["log_loss_float32"], 1e-6)
    got = fx.log_loss([3, 7], [[0.1, 0.9, 0.0], [0.5, 0.1, 0.4]], labels=[1, 3, 7])
    assert close(got, SKLEARN["log_loss_labels"], 1e-12)
