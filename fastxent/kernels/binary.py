"""CPU row functions for binary and multilabel input (one probability or logit per element).

Arrays arrive flattened: ``x`` and ``t`` hold ``n * C`` elements, row ``r`` being
``[r*C, (r+1)*C)`` (``C = 1`` for plain binary input). With ``C = 1`` the element loop *is* the
row loop and vectorises across rows; with ``C > 1`` the per-class loop inside a row vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .blocks import make_drivers, sum_block, sum_range_products
from .codes import (
    BINARY_LOGITS,
    BINARY_PROBS_SKLEARN,
    BINARY_PROBS_TORCH,
    MARK_CORRECT_SHIFT,
    MARK_NONFINITE,
    NO_WEIGHT,
    PER_CLASS,
    PER_ELEMENT,
)
from .formulas import (
    as_type_of,
    bce_logits_loss,
    bce_prob_loss,
    clipped_log_loss,
    flog,
    flog1p,
    fsoftplus_tail,
)
from .halves import values_computed
from .jit import ELEMENTWISE_OVERLOAD_OPTIONS, VECTOR_OVERLOAD_OPTIONS, vector_jit, wide_vectors
from .vmath import exp_flushed32, exp_nonpositive64, is_finite, log1p_unit32


@vector_jit
def logit_element_loss(x, y, pos_weight):
    """torch ``binary_cross_entropy_with_logits`` of one element, in the input's precision.

    ``log1p(exp(-|x|))`` then :func:`~.formulas.bce_logits_loss`.
    """
    one = as_type_of(1.0, x)
    return bce_logits_loss(x, as_type_of(y, x), as_type_of(pos_weight, x), fsoftplus_tail(x), one)


@vector_jit
def torch_prob_element_loss(p, y):
    """torch ``binary_cross_entropy`` of one element (:func:`~.formulas.bce_prob_loss`)."""
    return bce_prob_loss(np.float64(y), np.float64(flog(p)), np.float64(flog1p(-p)))


@vector_jit
def sklearn_prob_element_loss(p, y, clip_eps):
    """scikit-learn ``log_loss`` of one binary element: ``-log(clip(p if y else 1 - p))``."""
    pd = np.float64(p)
    return clipped_log_loss(pd if y > 0.5 else 1.0 - pd, clip_eps)


def labels_like(labels, like):
    """``labels`` as an array of ``like``'s dtype: themselves, or a converted copy (a Numba
    overload; a block's worth, in L1)."""


@overload(labels_like, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _labels_like(labels, like):
    if labels.dtype == like.dtype:
        return lambda labels, like: labels
    dtype = as_dtype(like.dtype)

    def converted(labels, like):
        wide_vectors()
        out = np.empty(labels.shape[0], dtype=dtype)
        for i in range(labels.shape[0]):
            out[i] = labels[i]
        return out

    return converted


def softplus_heads(xs, heads):
    """``heads[i]`` = the first stage of ``log1p(exp(-|xs[i]|))`` (:func:`~.formulas.fsoftplus_tail`)
    for every ``i``, which :func:`softplus_finish` completes (a Numba overload).

    float32: :func:`~.vmath.exp_flushed32` of every element, and :func:`softplus_finish` its
    :func:`~.vmath.log1p_unit32`: the bits of :func:`~.vmath.softplus_tail32`. In one loop each
    vector's exp and log1p make one chain of dependent operations that the core cannot overlap
    with the next vectors' (on a Zen 3 the loop ran at 45 cycles an iteration where its
    operations need under 20); here the exps have a loop of their own, which takes a vector
    from each quarter of the block an iteration (four independent chains side by side), and
    the short log1p goes with the loss (:func:`logit_values`): 1.8 -> 0.9 ns an element in cache.
    float64: the whole tail (libm), which :func:`softplus_finish` leaves as it is.
    """


@overload(softplus_heads, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _softplus_heads(xs, heads):
    if xs.dtype == types.float32:

        def by_quarters(xs, heads):
            wide_vectors()
            n = xs.shape[0]
            q = n // 4
            for i in range(q):
                heads[i] = exp_flushed32(-abs(xs[i]))
                heads[q + i] = exp_flushed32(-abs(xs[q + i]))
                heads[2 * q + i] = exp_flushed32(-abs(xs[2 * q + i]))
                heads[3 * q + i] = exp_flushed32(-abs(xs[3 * q + i]))
            for i in range(4 * q, n):
                heads[i] = exp_flushed32(-abs(xs[i]))

        return by_quarters

    def by_element(xs, heads):
        for i in range(xs.shape[0]):
            heads[i] = fsoftplus_tail(xs[i])

    return by_element


def softplus_finish(head):
    """The softplus tail from :func:`softplus_heads`' value (a Numba overload): float32
    :func:`~.vmath.log1p_unit32` of the exponential, float64 the tail itself."""


@overload(softplus_finish, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _softplus_finish(head):
    if head == types.float32:
        return lambda head: log1p_unit32(head)
    return lambda head: head


@vector_jit
def logit_values(xs, labels, pos_weight, values):
    """``values[i]`` = :func:`logit_element_loss` of element ``i`` in the input's precision (its
    softplus tail in two stages, :func:`softplus_heads` then :func:`softplus_finish`, then the
    loss from it); returns how many predictions are correct (:func:`is_correct`). ``labels``
    must have ``xs``'s dtype (:func:`labels_like`).

    The loop keeps every value in the input's precision, the count included (exact: a block
    holds far fewer than ``2**24`` rows): a float64 store or counter would make LLVM size its
    vectors for float64 and halve the float32 lanes. Non-finite losses are not counted here:
    a block's sum is finite exactly when every value is (:func:`binary_block_sums`).
    """
    wide_vectors()
    zero = as_type_of(0.0, values[0])
    one = as_type_of(1.0, values[0])
    weight = as_type_of(pos_weight, values[0])
    correct = zero
    softplus_heads(xs, values)
    for i in range(xs.shape[0]):
        x = xs[i]
        values[i] = bce_logits_loss(x, labels[i], weight, softplus_finish(values[i]), one)
        correct += one if is_correct(x, labels[i], BINARY_LOGITS) else zero  # a masked add
    return np.int64(correct)


@vector_jit
def nonfinite_count(values):
    """How many of ``values`` are NaN or infinite (:func:`~.vmath.is_finite`)."""
    count = 0
    for i in range(values.shape[0]):
        count += not is_finite(values[i])
    return count


@vector_jit
def logit_losses(xs, ts, pos_weight, loss):
    """``loss[i]`` = :func:`logit_element_loss` of element ``i`` (single-column logits), in
    float64; returns how many predictions are correct and how many losses are not finite.

    The element loop writes to a scratch array of the input's precision (:func:`logit_values`;
    labels of another type, int64 as files store them, are converted first,
    :func:`labels_like`); a second, cheap loop widens the losses into ``loss``.
    """
    n = xs.shape[0]
    if n == 0:
        return 0, 0
    values = np.empty(n, dtype=xs.dtype)
    correct = logit_values(xs, labels_like(ts, xs), pos_weight, values)
    nonfinite = 0
    for i in range(n):
        loss[i] = values[i]
        nonfinite += not is_finite(values[i])
    return correct, nonfinite


@vector_jit(forceinline=False)  # called once a block by the drivers (blocks.make_drivers)
def binary_block_sums(args, lo, hi, out, loss, den, marks, predicted, confidence):
    """The sums of the full block ``[lo, hi)`` into ``out`` (the loss and the denominator, and
    the standard error's products when ``out`` has room for them), fused, for the commonest
    input: one column of logits, no weights of any kind; and, where they are not empty, the row
    values :func:`binary_rows` gives (``loss``, ``den``, ``marks``, ``predicted``,
    ``confidence``). Returns
    ``(done, counts)``; ``done`` is False (nothing written) for any other input, which
    :func:`binary_rows` scores.

    The row values stay in the input's precision (:func:`logit_values`) and are summed from
    there by :func:`~.blocks.sum_block` (and :func:`~.blocks.sum_range_products`): widening each
    to float64 first is exact, so these are the bits of the general path, which widens them into
    a float64 array, fills a denominator array with ones and checks it before summing (a quarter
    of the time of a block; with row values asked for, groups or per-row outputs, the block
    took 2.7 times plain scoring's time that way).
    """
    x, t, num_classes, weight, weight_mode, pos_weight, sample_weight, kind, clip_eps = args
    if num_classes != 1 or kind != BINARY_LOGITS or weight_mode != NO_WEIGHT or sample_weight.shape[0] > 0:
        return False, (0, 0, 0, 0, 0, 0)
    n = hi - lo
    xs = values_computed(x[lo:hi])  # float16 bits: float32 here
    values = np.empty(n, dtype=xs.dtype)
    counts = logit_block_sums(
        xs, labels_like(t[lo:hi], xs), pos_weight[0] if pos_weight.shape[0] > 0 else 1.0, values, out
    )
    if loss.shape[0] > 0:
        logit_row_values(xs, t[lo:hi], values, loss, den, marks, predicted, confidence)
    return True, counts


@vector_jit(forceinline=False)  # called once a block (binary_block_sums, the page scorer)
def logit_block_sums(xs, labels, pos_weight, values, out):
    """The sums of one block of unweighted single-column logits ``xs`` (the input's precision,
    ``labels`` of its dtype) into ``out`` (the loss and the denominator, and the standard
    error's products when ``out`` has room for them), each row's loss into ``values``; returns
    the block's counts (:data:`~.codes.COUNT_FIELDS`).

    ``out = (sum l_i, n, sum l_i^2, sum l_i, n)`` with ``l_i`` = :func:`logit_element_loss`
    (:func:`logit_values`), each sum :func:`~.blocks.sum_block`'s order: the rows' denominators
    are 1, so these are :func:`~.blocks.range_sums`' unweighted shortcut, bit for bit.
    """
    n = xs.shape[0]
    correct = logit_values(xs, labels, pos_weight, values)
    total = sum_block(values)
    # the values of one block cannot overflow a float64 sum, and a NaN or an infinity makes any
    # sum NaN or infinite: the sum is finite exactly when every value is
    nonfinite = 0 if is_finite(total) else nonfinite_count(values)
    out[0], out[1] = total, np.float64(n)  # n denominators of 1: denominator_sum's exact shortcut
    if out.shape[0] > 2:  # the standard error's products, as range_sums' unweighted shortcut
        out[2], out[3], out[4] = sum_range_products(values, values, 0, n), total, np.float64(n)
    return n, 0, nonfinite, correct, n, 0


@vector_jit
def logit_row_values(xs, ts, values, loss, den, marks, predicted, confidence):
    """:func:`binary_rows`' row values of single-column logits from their losses ``values`` (the
    input's precision): ``loss`` widened, ``den`` 1, ``marks`` (``MARK_NONFINITE``, correct
    predictions from ``MARK_CORRECT_SHIFT``), ``predicted`` (``x > 0``) and ``confidence``
    (:func:`predicted_probability`), each unless empty.
    The labels ``ts`` are the batch's own: a label converted to float32 could cross 0.5."""
    for i in range(xs.shape[0]):
        loss[i] = values[i]
        den[i] = 1.0
    if marks.shape[0] > 0:
        for i in range(xs.shape[0]):
            hit = np.int32(is_correct(xs[i], ts[i], BINARY_LOGITS))
            flag = np.int32(0) if is_finite(values[i]) else np.int32(MARK_NONFINITE)
            marks[i] = flag | (hit << MARK_CORRECT_SHIFT)
    if predicted.shape[0] > 0:
        for i in range(xs.shape[0]):
            predicted[i] = xs[i] > 0.0
    if confidence.shape[0] > 0:
        for i in range(xs.shape[0]):
            confidence[i] = predicted_probability(xs[i], BINARY_LOGITS)


@vector_jit
def predicted_probability(x, kind):
    """The probability of a single-column prediction's predicted label, in float64:
    ``max(p, 1 - p)``, and for a logit (``x > 0`` predicts 1) ``sigmoid(|x|) = 1 / (1 +
    exp(-|x|))`` (:func:`~.vmath.exp_nonpositive64`: libm's ``exp`` kept the loop scalar)."""
    if kind == BINARY_LOGITS:
        return 1.0 / (1.0 + exp_nonpositive64(-abs(np.float64(x))))
    p = np.float64(x)
    return max(p, 1.0 - p)


@vector_jit
def probability_losses(xs, ts, kind, clip_eps, loss):
    """``loss[i]`` = loss of probability ``i`` by torch's or scikit-learn's rules (``kind``), in
    float64; returns how many predictions are correct. One branch-free loop per kind."""
    correct = 0
    if kind == BINARY_PROBS_TORCH:
        for i in range(xs.shape[0]):
            loss[i] = torch_prob_element_loss(xs[i], ts[i])
            correct += is_correct(xs[i], ts[i], BINARY_PROBS_TORCH)
    else:
        for i in range(xs.shape[0]):
            loss[i] = sklearn_prob_element_loss(xs[i], ts[i], clip_eps)
            correct += is_correct(xs[i], ts[i], BINARY_PROBS_SKLEARN)
    return correct


@vector_jit
def kind_element_loss(x, y, pos_weight, kind, clip_eps):
    """Loss of one element of the given kind (for multilabel rows; not inlined, not vectorised)."""
    if kind == BINARY_LOGITS:
        return logit_element_loss(x, y, pos_weight)
    if kind == BINARY_PROBS_TORCH:
        return torch_prob_element_loss(x, y)
    return sklearn_prob_element_loss(x, y, clip_eps)


@vector_jit
def is_correct(x, y, kind):
    """Whether the element's prediction (``x > 0`` for logits, ``p > 0.5``) matches ``y > 0.5``."""
    threshold = 0.0 if kind == BINARY_LOGITS else 0.5
    return (x > threshold) == (y > 0.5)


@vector_jit(forceinline=False)  # called once a block by the drivers (blocks.make_drivers)
def binary_rows(args, lo, hi, loss, den, marks, predicted, confidence):
    """Row losses for binary/multilabel input (torch ``binary_cross_entropy[_with_logits]``,
    sklearn binary ``log_loss``).

    ``args = (x, t, num_classes, weight, weight_mode, pos_weight, sample_weight, kind, clip_eps)``,
    ``x`` float32/float64 or the bits of float16 (``uint16``, converted a block at a time,
    :func:`~.halves.values_computed`): ``weight`` is torch's ``weight`` (scales the loss, not the
    denominator), laid out as ``weight_mode`` says; ``pos_weight`` (``C``) torch's ``pos_weight``;
    ``sample_weight`` (``n``) scales loss and denominator. Empty arrays mean "none". A row's loss is
    the sum of its elements' losses; ``den`` is ``C`` (torch: mean over elements) or 1 (sklearn),
    times the sample weight. Unless empty, ``marks[r]`` gets the row's ``MARK_*`` value (its count
    of correct elements, whether its loss is finite) and, for single-column input, ``predicted[r]``
    the predicted label (``x > 0`` for logits, ``p > 0.5``) and ``confidence[r]`` its probability
    (:func:`predicted_probability`; NaN for multilabel rows): loops of their own over the rows,
    so that the element loop stays branch-free when they are not asked for.
    """
    wide_vectors()
    x, t, num_classes, weight, weight_mode, pos_weight, sample_weight, kind, clip_eps = args
    n = hi - lo
    xs = values_computed(x[lo * num_classes : hi * num_classes])  # float16 bits: float32 here
    ts = t[lo * num_classes : hi * num_classes]
    has_pos_weight = pos_weight.shape[0] > 0
    counted = -1  # non-finite losses counted in the element loop (-1: count them below)
    if num_classes == 1:
        if kind == BINARY_LOGITS:
            correct, counted = logit_losses(xs, ts, pos_weight[0] if has_pos_weight else 1.0, loss)
        else:
            correct = probability_losses(xs, ts, kind, clip_eps, loss)
        if weight_mode == PER_CLASS:
            for r in range(n):
                loss[r] *= weight[0]
        elif weight_mode == PER_ELEMENT:
            ws = weight[lo:hi]
            for r in range(n):
                loss[r] *= ws[r]
    else:
        correct = 0
        for r in range(n):
            base = r * num_classes
            value = 0.0
            for c in range(num_classes):
                pw = pos_weight[c] if has_pos_weight else 1.0
                e = kind_element_loss(xs[base + c], ts[base + c], pw, kind, clip_eps)
                correct += is_correct(xs[base + c], ts[base + c], kind)
                if weight_mode == PER_CLASS:
                    e *= weight[c]
                elif weight_mode == PER_ELEMENT:
                    e *= weight[lo * num_classes + base + c]
                value += e
            loss[r] = value
    per_row = np.float64(num_classes) if kind != BINARY_PROBS_SKLEARN else 1.0
    weighted = weight_mode != NO_WEIGHT or sample_weight.shape[0] > 0
    if sample_weight.shape[0] > 0:
        sws = sample_weight[lo:hi]  # sliced first: indexing from 0 gives contiguous vector loads
        for r in range(n):
            loss[r] = loss[r] * sws[r]
            den[r] = per_row * sws[r]
    else:
        den[:] = per_row
    nonfinite = counted
    if counted < 0 or weighted:  # a weight can make a finite loss infinite (or 0 * inf NaN)
        nonfinite = nonfinite_count(loss[:n])
    if marks.shape[0] > 0:
        for r in range(n):
            hits = 0
            for c in range(num_classes):
                hits += is_correct(xs[r * num_classes + c], ts[r * num_classes + c], kind)
            marks[r] = (0 if is_finite(loss[r]) else MARK_NONFINITE) | (hits << MARK_CORRECT_SHIFT)
    if predicted.shape[0] > 0 and num_classes == 1:
        threshold = 0.0 if kind == BINARY_LOGITS else 0.5
        for r in range(n):
            predicted[r] = xs[r] > threshold
    if confidence.shape[0] > 0:
        for r in range(n):
            confidence[r] = predicted_probability(xs[r], kind) if num_classes == 1 else np.nan
    return n, 0, nonfinite, correct, n * num_classes, 0


BINARY = make_drivers(binary_rows, "binary", binary_block_sums)
