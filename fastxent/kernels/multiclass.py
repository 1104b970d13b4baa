"""CPU row functions for multiclass input: class-index targets and soft (probability) targets.

One row at a time, two passes over the row while it sits in L1 (max, then the sum of
exponentials): on the CPU this beats the single-pass online softmax, whose loop-carried
dependency does not vectorise. Row reductions accumulate in float64; no N x C temporary.
"""

from __future__ import annotations

import math

import numpy as np

from .blocks import make_drivers
from .formulas import clipped_log_loss, fexp_shifted, flog_of_sum, multiclass_loss, soft_target_term
from .jit import vector_jit
from .vmath import float_of_key, ordered_key

#: What the values in a multiclass row are.
LOGITS, LOG_PROBS, PROBS = 0, 1, 2


@vector_jit
def row_max(row):
    """``max_c x_c`` in the row's dtype; a (positive) NaN is the maximum, so it propagates.

    Floats are compared as order-preserving integers (:func:`~.vmath.ordered_key`): LLVM
    vectorises an integer max reduction, but not a float one without the ``nnan`` flag.
    """
    k = ordered_key(row[0])
    for c in range(1, row.shape[0]):  # indexed loops vectorise; ``for v in row`` does not
        kc = ordered_key(row[c])
        k = kc if kc > k else k
    return float_of_key(k, row[0])


@vector_jit
def sum_exp_shifted(row, m):
    """``Z = sum_c exp(x_c - m)`` with the exponentials in the row's precision, summed in float64."""
    s = 0.0
    for c in range(row.shape[0]):
        s += fexp_shifted(row[c] - m)
    return s


@vector_jit
def weighted_gaps(row, shift, weights):
    """``sum_c w_c (shift - x_c)`` in float64 (the label-smoothing term); ``w = 1`` if empty."""
    s = 0.0
    if weights.shape[0] == 0:
        for c in range(row.shape[0]):
            s += shift - np.float64(row[c])
    else:
        for c in range(row.shape[0]):
            s += weights[c] * (shift - np.float64(row[c]))
    return s


@vector_jit
def row_sum(row):
    """``sum_c p_c`` in float64 (for the "probabilities do not sum to one" check)."""
    s = 0.0
    for c in range(row.shape[0]):
        s += row[c]
    return s


@vector_jit
def is_first_max(row, index, m):
    """Whether ``argmax(row) == index`` (first maximum wins, as ``np.argmax``/``torch.argmax``)."""
    if row[index] != m:
        return False
    for c in range(index):
        if row[c] == m:
            return False
    return True


@vector_jit
def normaliser(row, m, kind):
    """``(shift, log Z)`` with ``-log p_c = (shift - x_c) + log Z`` for the input kind.

    Logits: ``shift = m = max_c x_c``, ``Z = sum_c exp(x_c - m)``; log-probabilities: ``(0, 0)``.
    """
    if kind == LOGITS:
        return np.float64(m), math.log(sum_exp_shifted(row, m))
    return 0.0, 0.0


@vector_jit
def row_log_norms(rows, targets, ignore_index, maxima, log_norms):
    """``maxima[r] = max_c x_rc`` and ``log_norms[r] = log Z_r`` for a block of logit rows.

    Two passes: the per-row sums first, then all the logs in one loop that vectorises across
    rows (:func:`~.formulas.flog_of_sum`): with few classes, a libm ``log`` per row cost as much
    as the row's exponentials. Ignored rows get ``log Z = 0`` without summing.
    """
    n = rows.shape[0]
    sums = np.empty(n)
    for r in range(n):
        row = rows[r]
        m = row_max(row)
        maxima[r] = m
        sums[r] = sum_exp_shifted(row, m) if targets[r] != ignore_index else 1.0
    if n:
        like = rows[0, 0]
        for r in range(n):
            log_norms[r] = flog_of_sum(sums[r], like)


@vector_jit
def index_target_rows(args, lo, hi, loss, den):
    """Row losses for class-index targets (torch ``cross_entropy``/``nll_loss``, sklearn ``log_loss``).

    ``args = (x, y, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps,
    sum_tolerance)``. Logits: :func:`~.formulas.multiclass_loss`; log-probabilities: the same
    with ``log Z = 0`` and no shift; probabilities: ``-log(clip(p_y))`` (sklearn), and rows whose
    sum is off 1 by more than ``sum_tolerance`` are counted. ``den`` gets the row's share of the
    mean's denominator: ``w_y`` times the sample weight (0 for ignored rows).
    """
    x, y, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps, sum_tol = args
    rows = x[lo:hi]
    targets = y[lo:hi]
    num_classes = rows.shape[1]
    weighted = class_weight.shape[0] > 0
    sampled = sample_weight.shape[0] > 0
    w_total = class_weight.sum() if weighted else np.float64(num_classes)
    maxima = np.empty(hi - lo, dtype=rows.dtype)
    log_norms = np.zeros(hi - lo)
    if kind == LOGITS:
        row_log_norms(rows, targets, ignore_index, maxima, log_norms)
    scored = ignored = nonfinite = correct = unnormalised = 0
    for r in range(hi - lo):
        t = targets[r]
        if t == ignore_index:
            loss[r] = 0.0
            den[r] = 0.0
            ignored += 1
            continue
        row = rows[r]
        m = maxima[r] if kind == LOGITS else row_max(row)
        w_t = class_weight[t] if weighted else 1.0
        if kind == PROBS:
            value = clipped_log_loss(np.float64(row[t]), clip_eps)
            if abs(row_sum(row) - 1.0) > sum_tol:
                unnormalised += 1
        else:
            shift = np.float64(m) if kind == LOGITS else 0.0
            log_norm = log_norms[r]
            smooth = weighted_gaps(row, shift, class_weight) if smoothing > 0.0 else 0.0
            d_t = shift - np.float64(row[t])
            value = multiclass_loss(d_t, log_norm, w_t, smooth, w_total, smoothing, num_classes)
        sw = sample_weight[lo + r] if sampled else 1.0
        loss[r] = value * sw
        den[r] = w_t * sw
        scored += 1
        if not math.isfinite(value):
            nonfinite += 1
        if is_first_max(row, t, m):
            correct += 1
    return scored, ignored, nonfinite, correct, scored, unnormalised


@vector_jit
def first_argmax(row):
    """Index of the first maximum of ``row`` (``np.argmax``)."""
    m = row_max(row)
    for c in range(row.shape[0]):
        if row[c] == m:
            return c
    return 0


@vector_jit
def soft_target_rows(args, lo, hi, loss, den):
    """Row losses for probability targets (torch ``cross_entropy`` with ``target.shape == input.shape``).

    ``args = (x, t, class_weight, sample_weight, smoothing, kind)``;
    ``l = sum_c w_c q_c (d_c + log Z)`` (:func:`~.formulas.soft_target_term`). The mean divides
    by the number of rows (``den`` = sample weight, 1 by default), not by the weights.
    A row counts as correct when the argmax of the logits is the argmax of the target.
    """
    x, t, class_weight, sample_weight, smoothing, kind = args
    rows = x[lo:hi]
    targets = t[lo:hi]
    num_classes = rows.shape[1]
    weighted = class_weight.shape[0] > 0
    sampled = sample_weight.shape[0] > 0
    nonfinite = correct = 0
    for r in range(hi - lo):
        row = rows[r]
        target = targets[r]
        shift, log_norm = normaliser(row, row_max(row), kind)
        value = 0.0
        for c in range(num_classes):
            w_c = class_weight[c] if weighted else 1.0
            d_c = shift - np.float64(row[c])
            value += soft_target_term(np.float64(target[c]), w_c, d_c, log_norm, smoothing, num_classes)
        sw = sample_weight[lo + r] if sampled else 1.0
        loss[r] = value * sw
        den[r] = sw
        if not math.isfinite(value):
            nonfinite += 1
        if first_argmax(row) == first_argmax(target):
            correct += 1
    n = hi - lo
    return n, 0, nonfinite, correct, n, 0


INDEX_TARGET = make_drivers(index_target_rows, "index_target")
SOFT_TARGET = make_drivers(soft_target_rows, "soft_target")
