"""A float64 NumPy oracle for every loss: straightforward formulas, no tricks, for the tests.

Memory: N x C temporaries (it is an oracle, not a scorer). Semantics as DESIGN.md §3.
"""

from __future__ import annotations

import numpy as np


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise ``x - max - log(sum(exp(x - max)))`` in float64."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.max(x, axis=1, keepdims=True)
        return x - m - np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))


def cross_entropy(x, y, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch ``cross_entropy`` for ``(N, C)`` logits and class-index or probability targets."""
    x = np.asarray(x, dtype=np.float64)
    num_classes = x.shape[1]
    w = np.ones(num_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    lsm = log_softmax(x)
    eps = label_smoothing
    with np.errstate(invalid="ignore"):
        if np.asarray(y).shape == x.shape:  # probability targets
            q = np.asarray(y, dtype=np.float64) * (1 - eps) + eps / num_classes
            losses = -np.sum(w * q * lsm, axis=1)
            return _reduce(losses, np.ones(len(losses)), reduction)
        y = np.asarray(y)
        keep = y != ignore_index
        safe = np.where(keep, y, 0)
        w_y = np.where(keep, w[safe], 0.0)
        nll = np.where(keep, -w_y * lsm[np.arange(len(y)), safe], 0.0)
        losses = nll
        if eps > 0:
            smooth = np.where(keep, -np.sum(w * lsm, axis=1), 0.0)
            losses = (1 - eps) * nll + eps / num_classes * smooth
    return _reduce(losses, w_y, reduction)


def nll_loss(x, y, weight=None, ignore_index=-100, reduction="mean"):
    """torch ``nll_loss`` for ``(N, C)`` log-probabilities."""
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(x.shape[1]) if weight is None else np.asarray(weight, dtype=np.float64)
    y = np.asarray(y)
    keep = y != ignore_index
    safe = np.where(keep, y, 0)
    w_y = np.where(keep, w[safe], 0.0)
    losses = np.where(keep, -w_y * x[np.arange(len(y)), safe], 0.0)
    return _reduce(losses, w_y, reduction)


def binary_cross_entropy_with_logits(x, y, weight=None, reduction="mean", pos_weight=None):
    """torch ``binary_cross_entropy_with_logits`` (softplus via ``logaddexp``)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        softplus = np.logaddexp(0.0, -x)
        losses = np.where(
            x >= 0,
            (1 - y) * x + (1 + (pw - 1) * y) * softplus,
            -pw * y * x + (1 + (pw - 1) * y) * np.log1p(np.exp(x)),
        )
    if weight is not None:
        losses = losses * np.asarray(weight, dtype=np.float64)
    return _reduce(losses.reshape(-1), np.ones(losses.size), reduction, shape=losses.shape)


def binary_cross_entropy(p, y, weight=None, reduction="mean"):
    """torch ``binary_cross_entropy`` (each log clamped at -100)."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore"):
        losses = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))
    if weight is not None:
        losses = losses * np.asarray(weight, dtype=np.float64)
    return _reduce(losses.reshape(-1), np.ones(losses.size), reduction, shape=losses.shape)


def log_loss(y_index, proba, eps, sample_weight=None, normalize=True):
    """scikit-learn ``log_loss`` for class indices into the columns of ``proba`` (N, C)."""
    proba = np.clip(np.asarray(proba, dtype=np.float64), eps, 1 - eps)
    losses = -np.log(proba[np.arange(len(y_index)), y_index])
    sw = np.ones(len(losses)) if sample_weight is None else np.asarray(sample_weight, float)
    total = np.sum(losses * sw)
    return total / np.sum(sw) if normalize else total


def _reduce(losses, denominators, reduction, shape=None):
    if reduction == "none":
        return losses if shape is None else losses.reshape(shape)
    total = np.sum(losses)
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / np.sum(denominators)
