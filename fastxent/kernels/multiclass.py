"""CPU row functions for multiclass input: class-index targets and soft (probability) targets.

One row at a time, two passes over the row while it sits in L1 (max, then the sum of
exponentials): on the CPU this beats the single-pass online softmax, whose loop-carried
dependency does not vectorise. No N x C temporary.

The sum of exponentials (:mod:`.row_excess`) runs in the row's precision, so that a float32 row
fills every lane of the machine's vectors, and holds ``Z - 1`` to float32's relative precision
however confident the row: ``log Z`` is ``log1p(Z - 1)`` (:func:`~.formulas.flog_of_excess`).
Float32 rows run both passes as explicit 16-lane vectors (:mod:`.row_vectors`), and find the
next row's maximum while they are summed (:func:`float32_logit_rows`).
"""

from __future__ import annotations

import numpy as np
from numba.extending import overload

from .argmax import first_argmax
from .blocks import make_drivers
from .class_passes import (
    finish_statistics,
    fold_row_sums,
    fold_smoothing,
    fold_sums,
    gather_targets,
    slice_maxima,
    top_probability,
)
from .codes import LOGITS, MARK_CORRECT_SHIFT, MARK_IGNORED, MARK_NONFINITE, MARK_UNNORMALISED, PROBS
from .column_vectors import column_sums
from .formulas import (
    clipped_log_loss,
    excess_of,
    flog_of_excess,
    log_norms,
    multiclass_loss,
    soft_target_term,
)
from .halves import piece_buffer, row_buffer, row_values, rows_computed, rows_per_piece, value_at
from .jit import VECTOR_OVERLOAD_OPTIONS, bound_copy, vector_jit, wide_vectors
from .row_excess import (
    PLAIN_CLASSES,
    corrected_excess,
    corrected_excess_ahead,
    excess_sum,
    partial_excess,
    partial_excess_ahead,
)
from .row_vectors import SMALLEST_KEY, is_float32_matrix, max_key
from .transpose import transpose_rows
from .vmath import float_of_key, is_finite


@vector_jit
def row_max(row):
    """``max_c x_c`` in the row's dtype; a (positive) NaN is the maximum, so it propagates.

    Floats are compared as order-preserving integers (:func:`~.vmath.ordered_key`,
    :func:`~.row_vectors.max_key`): an integer max reduction vectorises, a float one does not
    without the ``nnan`` flag.
    """
    return float_of_key(max_key(row), row[0])


@vector_jit
def weighted_gaps(row, shift, weights):
    """``sum_c w_c (shift - x_c)`` in float64 (the label-smoothing term); ``w = 1`` if empty."""
    wide_vectors()
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
    wide_vectors()
    s = 0.0
    for c in range(row.shape[0]):
        s += row[c]
    return s


@vector_jit
def is_first_max(row, index, m):
    """Whether ``argmax(row) == index`` (first maximum wins, as ``np.argmax``/``torch.argmax``)."""
    wide_vectors()
    if row[index] != m:
        return False
    ties = 0  # a count, not an early exit, so that the loop vectorises
    for c in range(index):
        ties += row[c] == m
    return ties == 0


#: The per-row statistics a class-index loss is finished from (rows of ``stats``):
#: ``shift - x_y`` (probabilities: ``p_y``), ``log Z`` (``Z - 1`` until the logs are taken),
#: ``sum_c w_c (shift - x_c)`` (label
#: smoothing), ``sum_c p_c`` (probabilities) and whether the argmax is the target.
D_TARGET, LOG_NORM, SMOOTH, ROW_SUM, CORRECT = range(5)
N_STATS = 5


@vector_jit
def statistics_rows(n, kind, smoothing):
    """The ``(N_STATS, n)`` statistics of a block, zeroed where the passes add to them or read
    what they did not write: :data:`CORRECT` (the row-major pass marks only correct rows),
    :data:`SMOOTH` (with label smoothing) and :data:`ROW_SUM` (probabilities); the rows every
    scored row gets are left as allocated (zeroing all five cost 0.3 ns a row at C = 10)."""
    stats = np.empty((N_STATS, n))
    stats[CORRECT] = 0.0
    if smoothing > 0.0:
        stats[SMOOTH] = 0.0
    if kind == PROBS:
        stats[ROW_SUM] = 0.0
    return stats


@vector_jit
def row_major_statistics(
    rows, targets, ignore_index, kind, class_weight, smoothing, stats, at, predicted, confidence
):
    """Fill ``stats[:, at + r]`` (:data:`D_TARGET`...) for a block of rows stored row by row,
    ``predicted[at + r]`` (the first argmax, :func:`first_argmax`) unless ``predicted`` is empty
    and ``confidence[at + r]`` (its probability, :func:`~.class_passes.top_probability`, from
    the same sums as the loss) unless ``confidence`` is empty.
    float16 rows (their bits, ``uint16``) are converted one at a time as they are scored
    (:func:`~.halves.row_values`).

    Logits: the maxima and sums of exponentials (:func:`~.row_excess.partial_excess`) row by
    row while each row is in L1 (float32 rows in :func:`float32_logit_rows`: each row's maximum
    found while the row before it is summed); then all the logs (:func:`finish_logit_rows`).
    Ignored rows are not summed (but still predicted: a losses file has a prediction on every
    row, and a confidence when asked for).
    """
    wide_vectors()
    n = rows.shape[0]
    predicting, confiding = predicted.shape[0] > 0, confidence.shape[0] > 0
    logits = kind == LOGITS
    buffer = row_buffer(rows)
    maxima = np.empty(n, dtype=buffer.dtype)
    ties = np.zeros(n)
    if logits and float32_logit_rows(
        rows,
        targets,
        ignore_index,
        class_weight,
        smoothing,
        stats,
        at,
        predicted,
        confidence,
        maxima,
        ties,
    ):
        finish_logit_rows(stats, at, maxima, ties, kind, confidence)
        return
    for r in range(n):
        t = targets[r]
        row = row_values(rows, r, buffer)
        m = row_max(row)
        maxima[r] = m
        if predicting:
            predicted[at + r] = first_argmax(row, m)
        if logits and (confiding or t != ignore_index):
            stats[LOG_NORM, at + r], ties[r] = partial_excess(
                row, m, target_gap(row, t, m, ignore_index, confiding, smoothing)
            )
        elif confiding:
            confidence[at + r] = top_probability(kind, m, 0.0)
        if t == ignore_index:
            continue
        shift = np.float64(m) if logits else 0.0
        stats[D_TARGET, at + r] = np.float64(row[t]) if kind == PROBS else shift - np.float64(row[t])
        if smoothing > 0.0:
            stats[SMOOTH, at + r] = weighted_gaps(row, shift, class_weight)
        if kind == PROBS:
            stats[ROW_SUM, at + r] = row_sum(row)
        if not logits:
            stats[CORRECT, at + r] = is_first_max(row, t, m)
    if n == 0 or not logits:
        return
    finish_logit_rows(stats, at, maxima, ties, kind, confidence)
    for r in range(n):
        t = targets[r]
        if t != ignore_index and value_at(rows, r, t) == maxima[r]:
            # the only maximum, or the first of several (np.argmax)
            stats[CORRECT, at + r] = ties[r] == 1.0 or is_first_max(row_values(rows, r, buffer), t, maxima[r])


@vector_jit
def finish_logit_rows(stats, at, maxima, ties, kind, confidence):
    """``stats[LOG_NORM, at + r]``: ``log Z`` of logit rows from the ``Z - 1`` their sums left
    there (and the rows' ``ties``), in one loop that vectorises across rows
    (:func:`~.formulas.flog_of_excess`): with few classes, a libm ``log`` per row cost as much as
    the row's exponentials; and ``confidence[at + r]`` unless it is empty."""
    n = maxima.shape[0]
    log_norm = stats[LOG_NORM, at : at + n]
    confiding = confidence.shape[0] > 0
    for r in range(n):  # a NaN or infinite maximum makes Z NaN (excess_sum)
        excess = excess_of(log_norm[r], ties[r]) if is_finite(maxima[r]) else np.nan
        log_norm[r] = excess
        if confiding:
            confidence[at + r] = top_probability(kind, maxima[r], excess)
    log_norms(log_norm, maxima, log_norm)


@vector_jit
def target_gap(row, t, m, ignore_index, confiding, smoothing):
    """The target's distance below the row maximum ``m``, which the loss adds to ``log Z``: the
    precision the sums need is relative to the whole loss (:func:`~.row_excess.partial_excess`).
    0 where a confidence, which is ``1 / Z``, is asked for, with label smoothing, whose loss adds
    each class's, and for an ignored row."""
    if t == ignore_index or confiding or smoothing > 0.0:
        return 0.0
    return np.float64(m) - np.float64(row[t])


def float32_logit_rows(
    rows, targets, ignore_index, class_weight, smoothing, stats, at, predicted, confidence, maxima, ties
):
    """Whether the rows are float32 logit rows contiguous in memory, which it then scores as
    :func:`row_major_statistics` would up to the logs (:func:`finish_logit_rows`), with
    ``maxima`` and ``ties`` (the count of classes at each row's maximum) filled:
    :func:`corrected_float32_rows` or :func:`tiered_float32_rows` (a Numba overload; other rows
    are not its to score: it is not compiled for them, and answers false)."""
    raise NotImplementedError("float32_logit_rows is only callable from jitted code")


@overload(float32_logit_rows, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _float32_logit_rows(
    rows, targets, ignore_index, weights, smoothing, stats, at, predicted, confidence, maxima, ties
):
    def declined(
        rows, targets, ignore_index, weights, smoothing, stats, at, predicted, confidence, maxima, ties
    ):
        """Rows of another type: not scored here."""
        return False

    def scored(
        rows, targets, ignore_index, weights, smoothing, stats, at, predicted, confidence, maxima, ties
    ):
        arguments = (rows, targets, ignore_index, weights, smoothing, stats, at, predicted, confidence)
        if rows.shape[1] < PLAIN_CLASSES:
            corrected_float32_rows(*arguments, maxima, ties)
        else:
            tiered_float32_rows(*arguments, maxima, ties)
        return True

    return scored if is_float32_matrix(rows) else declined


def _float32_rows_template(
    rows, targets, ignore_index, class_weight, smoothing, stats, at, predicted, confidence, maxima, ties
):
    """:func:`float32_logit_rows` with the sums ``SUMS_AHEAD(row, m, next_row, gap)``, which
    also give the next row's maximum key, and ``SUMS(row, m, gap)`` for the last row; and
    whether each target is the first maximum (:data:`CORRECT`) while its row is in L1."""
    wide_vectors()
    n = rows.shape[0]
    predicting, confiding = predicted.shape[0] > 0, confidence.shape[0] > 0
    # the key of the next row's maximum, when the row before it found it
    key, known = np.int32(SMALLEST_KEY), False
    for r in range(n):
        t = targets[r]
        row = rows[r]
        m = float_of_key(key, row[0]) if known else row_max(row)
        known = False
        maxima[r] = m
        if predicting:
            predicted[at + r] = first_argmax(row, m)
        if confiding or t != ignore_index:
            gap = target_gap(row, t, m, ignore_index, confiding, smoothing)
            if r + 1 < n:
                stats[LOG_NORM, at + r], ties[r], key = SUMS_AHEAD(row, m, rows[r + 1], gap)  # noqa: F821
                known = True
            else:
                stats[LOG_NORM, at + r], ties[r] = SUMS(row, m, gap)  # noqa: F821
        if t == ignore_index:
            continue
        shift = np.float64(m)
        stats[D_TARGET, at + r] = shift - np.float64(row[t])
        if smoothing > 0.0:
            stats[SMOOTH, at + r] = weighted_gaps(row, shift, class_weight)
        if row[t] == m:  # the only maximum, or the first of several (np.argmax)
            stats[CORRECT, at + r] = ties[r] == 1.0 or is_first_max(row, t, m)


# Two functions of their own rather than branches of one row loop: LLVM gave each vector loop
# registers and layout for all the loops of the function, and a loop beside the others ran
# slower (100 classes in cache, one thread, AMD Zen 4: 0.503 ns a value as a second row loop of
# row_major_statistics, 0.47 alone; 1,000 classes 0.262 or 0.321 as an unrelated condition of
# that function changed).
#: Rows of fewer than :data:`~.row_excess.PLAIN_CLASSES` classes: summed corrected straight away.
corrected_float32_rows = vector_jit(forceinline=False)(
    bound_copy(
        _float32_rows_template,
        "corrected_float32_rows",
        SUMS_AHEAD=corrected_excess_ahead,
        SUMS=corrected_excess,
    )
)
#: Rows of more classes: summed plain, and again corrected where the plain sum is too imprecise.
tiered_float32_rows = vector_jit(forceinline=False)(
    bound_copy(
        _float32_rows_template, "tiered_float32_rows", SUMS_AHEAD=partial_excess_ahead, SUMS=partial_excess
    )
)


#: Rows per slice of :func:`sliced_statistics`: one slice of C columns must stay in L2
#: between the passes (100 classes x 512 float32 rows = 200 KB).
COLUMN_SLICE_ROWS = 512


@vector_jit
def column_slice_statistics(
    columns,
    lo,
    hi,
    targets,
    ignore_index,
    kind,
    class_weight,
    smoothing,
    stats,
    at,
    predicted,
    confidence,
    scratch,
):
    """Fill ``stats[:, at + r]`` (and ``predicted[at + r]``, ``confidence[at + r]`` unless they
    are empty) for rows ``lo + r`` in ``[lo, hi)`` of a ``(C, N)`` array (one class per row).

    ``columns`` is C-contiguous: one file column, or one column of a Fortran-order input, per
    class. Every step (:mod:`.class_passes`) sweeps one class (or four) over all the rows, so
    its loop is contiguous and vectorises across rows, with no per-row reduction: the maxima,
    the sums of exponentials and first argmax, then the per-row terms. The formulas are those
    of :func:`row_major_statistics`; only the order of the sum of ``Z - 1`` differs.
    ``scratch`` (:func:`slice_scratch`) holds the rows' state: allocated once for all the
    slices of a block, not seven arrays a slice (C = 10 in cache: 14.0-14.6 -> 13.8-14.2 ns a
    row).
    """
    wide_vectors()
    n = hi - lo
    num_classes = columns.shape[0]
    first_max, maxima, excess, first_nan, x_target, shifts = scratch
    first_max, maxima, excess, first_nan, x_target, shifts = (
        first_max[:n],
        maxima[:n],
        excess[:n],
        first_nan[:n],
        x_target[:n],
        shifts[:n],
    )
    if kind == LOGITS:
        column_sums(columns, lo, hi, maxima, excess, first_max)
    else:  # the first argmax only
        slice_maxima(columns, lo, hi, maxima)
        for r in range(n):
            first_max[r] = num_classes
        empty = np.zeros(0, dtype=columns.dtype)
        fold_sums(columns, 0, lo, hi, maxima, empty, empty, excess[:0], first_max)
    chosen = predicted[at : at + n]
    first_nan = first_nan[: chosen.shape[0]]
    for r in range(chosen.shape[0]):
        # a NaN maximum: np.argmax gives the first NaN
        first_nan[r] = first_nan_class(columns, lo + r) if first_max[r] == num_classes else 0
    x_target[:] = 0.0
    gather_targets(columns, 0, lo, hi, targets, ignore_index, x_target)
    stats_rows = (stats[D_TARGET, at : at + n], stats[LOG_NORM, at : at + n], stats[CORRECT, at : at + n])
    finish_statistics(
        kind,
        num_classes,
        maxima,
        excess,
        first_max,
        first_nan,
        x_target,
        targets,
        stats_rows,
        chosen,
        confidence[at : at + n],
        shifts,
    )
    if kind == PROBS:
        fold_row_sums(columns, lo, hi, stats[ROW_SUM, at : at + n])
    if smoothing > 0.0:
        fold_smoothing(columns, 0, lo, hi, class_weight, shifts, stats[SMOOTH, at : at + n])


@vector_jit
def slice_scratch(rows, dtype):
    """The state :func:`column_slice_statistics` keeps for up to ``rows`` rows: first argmax,
    maximum (``dtype``), ``Z - 1``, first NaN class, target value and shift."""
    return (
        np.empty(rows, dtype=np.int32),
        np.empty(rows, dtype=dtype),
        np.empty(rows),
        np.empty(rows, dtype=np.int32),
        np.empty(rows),
        np.empty(rows),
    )


#: Rows of at most this many classes are transposed and scored class by class: row loops this
#: short run mostly in their scalar remainders (40M x 10 took 0.26 s instead of 0.49 s).
NARROW_CLASSES = 16


@vector_jit
def sliced_statistics(
    x,
    lo,
    hi,
    by_class,
    targets,
    ignore_index,
    kind,
    class_weight,
    smoothing,
    stats,
    at,
    predicted,
    confidence,
):
    """Fill ``stats[:, at + r]`` for rows ``lo + r`` in ``[lo, hi)``, slice by slice of
    :data:`COLUMN_SLICE_ROWS` rows, with :func:`column_slice_statistics`, whose loops run across rows.

    ``by_class``: ``x`` is ``(C, N)`` (one file column, or one column of a Fortran-order
    input, per class) and is read in place. Otherwise ``x`` is a row-major ``(N, C)`` array with
    few classes, and each slice is first transposed into a ``(C, rows)`` buffer in L1/L2.
    """
    wide_vectors()
    num_classes = x.shape[0] if by_class else x.shape[1]
    buffer = np.empty((0 if by_class else num_classes, COLUMN_SLICE_ROWS), dtype=x.dtype)
    scratch = slice_scratch(COLUMN_SLICE_ROWS, x.dtype)
    for start in range(lo, hi, COLUMN_SLICE_ROWS):
        stop = min(start + COLUMN_SLICE_ROWS, hi)
        columns, first, last = x, start, stop
        if not by_class:
            transpose_rows(x[start:stop], buffer)
            columns, first, last = buffer, 0, stop - start
        column_slice_statistics(
            columns,
            first,
            last,
            targets[start - lo : stop - lo],
            ignore_index,
            kind,
            class_weight,
            smoothing,
            stats,
            at + start - lo,
            predicted,
            confidence,
            scratch,
        )


@vector_jit
def finish_index_target_rows(stats, targets, class_weight, sample_weight, lo, options, loss, den, marks):
    """Row losses of class-index targets from their statistics (:data:`D_TARGET`...).

    ``options = (ignore_index, smoothing, kind, clip_eps, sum_tolerance, C)``. Logits:
    :func:`~.formulas.multiclass_loss`; log-probabilities: the same with ``log Z = 0`` and no
    shift; probabilities: ``-log(clip(p_y))`` (sklearn), and rows whose sum is off 1 by more than
    ``sum_tolerance`` are counted. ``den`` gets the row's share of the mean's denominator:
    ``w_y`` times the sample weight (0 for ignored rows). ``marks[r]`` (unless ``marks`` is
    empty) gets the row's ``MARK_*`` flags and correct count (:mod:`.blocks`).
    """
    ignore_index, smoothing, kind, clip_eps, sum_tol, num_classes = options
    marking = marks.shape[0] > 0
    weighted = class_weight.shape[0] > 0
    sampled = sample_weight.shape[0] > 0
    if kind != PROBS and not weighted and smoothing == 0.0:
        return unweighted_rows(stats, targets, sample_weight, lo, ignore_index, kind, loss, den, marks)
    w_total = class_weight.sum() if weighted else np.float64(num_classes)
    scored = ignored = nonfinite = correct = unnormalised = 0
    for r in range(targets.shape[0]):
        t = targets[r]
        if t == ignore_index:
            loss[r] = 0.0
            den[r] = 0.0
            ignored += 1
            if marking:
                marks[r] = MARK_IGNORED
            continue
        mark = 0
        w_t = class_weight[t] if weighted else 1.0
        if kind == PROBS:
            value = clipped_log_loss(stats[D_TARGET, r], clip_eps)
            if abs(stats[ROW_SUM, r] - 1.0) > sum_tol:
                unnormalised += 1
                mark |= MARK_UNNORMALISED
        else:
            value = multiclass_loss(
                stats[D_TARGET, r],
                stats[LOG_NORM, r] if kind == LOGITS else 0.0,
                w_t,
                stats[SMOOTH, r],
                w_total,
                smoothing,
                num_classes,
            )
        sw = sample_weight[lo + r] if sampled else 1.0
        loss[r] = value * sw
        den[r] = w_t * sw
        scored += 1
        if not is_finite(value):
            nonfinite += 1
            mark |= MARK_NONFINITE
        if stats[CORRECT, r] != 0.0:
            correct += 1
            mark |= 1 << MARK_CORRECT_SHIFT
        if marking:
            marks[r] = mark
    return scored, ignored, nonfinite, correct, scored, unnormalised


@vector_jit
def unit_weight_loss(d_target, log_norm):
    """:func:`~.formulas.multiclass_loss` of a row with ``w_y = 1`` and no smoothing, in its strict
    arithmetic: ``-0.0 + 0.0`` stays ``+0.0``, which a vector_jit caller's ``nsz`` would not keep."""
    return multiclass_loss(d_target, log_norm, 1.0, 0.0, 1.0, 0.0, 1)


@vector_jit
def unweighted_rows(stats, targets, sample_weight, lo, ignore_index, kind, loss, den, marks):
    """:func:`finish_index_target_rows` of logits or log-probabilities without class weights or
    label smoothing, the common case, in loops without a branch, which vectorise (1.84 -> 0.42
    ns a row, in cache, one thread, AMD Zen 3): the loss is :func:`unit_weight_loss` times the
    sample weight if any; ignored rows get 0 and 0."""
    sampled = sample_weight.shape[0] > 0
    marking = marks.shape[0] > 0
    logits = kind == LOGITS
    d_target, log_norm, right = stats[D_TARGET], stats[LOG_NORM], stats[CORRECT]
    n = targets.shape[0]
    ignored = nonfinite = correct = 0
    for r in range(n):
        kept = targets[r] != ignore_index
        value = unit_weight_loss(d_target[r], log_norm[r] if logits else 0.0)
        finite, hit = is_finite(value), right[r] != 0.0
        sw = sample_weight[lo + r] if sampled else 1.0
        loss[r] = value * sw if kept else 0.0
        den[r] = sw if kept else 0.0
        ignored += not kept
        nonfinite += kept and not finite
        correct += kept and hit
        if marking:  # loop-invariant: LLVM unswitches the loop, both versions vectorise
            mark = (0 if finite else MARK_NONFINITE) | (np.int32(hit) << MARK_CORRECT_SHIFT)
            marks[r] = mark if kept else MARK_IGNORED
    scored = n - ignored
    return scored, ignored, nonfinite, correct, scored, 0


@vector_jit
def first_nan_class(columns, r):
    """The first class ``c`` with ``columns[c, r]`` NaN, for a ``(C, N)`` array (0 if none)."""
    for c in range(columns.shape[0]):
        if columns[c, r] != columns[c, r]:
            return c
    return 0


@vector_jit(forceinline=False)  # called once a block by the drivers (blocks.make_drivers)
def soft_target_rows(args, lo, hi, loss, den, marks, predicted, confidence):
    """Row losses for probability targets (torch ``cross_entropy`` with ``target.shape == input.shape``).

    ``args = (x, t, class_weight, sample_weight, smoothing, kind)``;
    ``l = sum_c w_c q_c (d_c + log Z)`` (:func:`~.formulas.soft_target_term`). The mean divides
    by the number of rows (``den`` = sample weight, 1 by default), not by the weights.
    A row counts as correct when the argmax of the logits is the argmax of the target;
    ``predicted``/``confidence``/``marks`` (unless empty) get that argmax, its probability
    (:func:`~.class_passes.top_probability`) and the row's ``MARK_*`` value.
    """
    x, t, class_weight, sample_weight, smoothing, kind = args
    rows = x[lo:hi]
    targets = t[lo:hi]
    num_classes = rows.shape[1]
    weighted = class_weight.shape[0] > 0
    sampled = sample_weight.shape[0] > 0
    predicting, marking, confiding = predicted.shape[0] > 0, marks.shape[0] > 0, confidence.shape[0] > 0
    nonfinite = correct = 0
    for r in range(hi - lo):
        row = rows[r]
        target = targets[r]
        m = row_max(row)
        excess = shift = log_norm = 0.0  # log-probabilities: -log p_c = -x_c
        if kind == LOGITS:
            excess = excess_sum(row, m)
            shift, log_norm = np.float64(m), np.float64(flog_of_excess(excess, m))
        value = 0.0
        for c in range(num_classes):
            w_c = class_weight[c] if weighted else 1.0
            d_c = shift - np.float64(row[c])
            value += soft_target_term(np.float64(target[c]), w_c, d_c, log_norm, smoothing, num_classes)
        sw = sample_weight[lo + r] if sampled else 1.0
        loss[r] = value * sw
        den[r] = sw
        finite = is_finite(value)
        nonfinite += not finite
        chosen = first_argmax(row, m)
        hit = chosen == first_argmax(target, row_max(target))
        correct += hit
        if predicting:
            predicted[r] = chosen
        if confiding:
            confidence[r] = top_probability(kind, m, excess)
        if marking:
            marks[r] = (0 if finite else MARK_NONFINITE) | (np.int64(hit) << MARK_CORRECT_SHIFT)
    n = hi - lo
    return n, 0, nonfinite, correct, n, 0


@vector_jit(forceinline=False)  # called once a block by the drivers (blocks.make_drivers)
def index_target_rows(args, lo, hi, loss, den, marks, predicted, confidence):
    """Row losses for class-index targets (torch ``cross_entropy``/``nll_loss``, sklearn
    ``log_loss``), rows stored row by row.

    ``args = (x, y, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps,
    sum_tolerance)`` with ``x`` of shape ``(N, C)``, float32/float64 or the bits of float16
    (``uint16``, :mod:`.halves`); see :func:`finish_index_target_rows`.
    ``marks``, ``predicted`` and ``confidence`` (each empty, or one per row) get the rows'
    ``MARK_*`` values, first argmax and its probability.
    """
    x, y, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps, sum_tol = args
    targets = y[lo:hi]
    n = hi - lo
    stats = statistics_rows(n, kind, smoothing)
    if x.shape[1] > NARROW_CLASSES:
        rows = x[lo:hi]
        row_major_statistics(
            rows, targets, ignore_index, kind, class_weight, smoothing, stats, 0, predicted, confidence
        )
    else:
        # float16 input (its bits, uint16) is converted a piece of rows at a time, into the
        # cache, before the piece is transposed; float input is one piece, read in place
        step = rows_per_piece(x, n)
        buffer = piece_buffer(x, step)
        for at in range(0, n, step):
            stop = min(at + step, n)
            rows = rows_computed(x, lo + at, lo + stop, buffer)
            sliced_statistics(
                rows,
                0,
                stop - at,
                False,
                targets[at:stop],
                ignore_index,
                kind,
                class_weight,
                smoothing,
                stats,
                at,
                predicted,
                confidence,
            )
    options = (ignore_index, smoothing, kind, clip_eps, sum_tol, np.int64(x.shape[1]))
    return finish_index_target_rows(
        stats, targets, class_weight, sample_weight, lo, options, loss, den, marks
    )


@vector_jit(forceinline=False)  # called once a block by the drivers (blocks.make_drivers)
def index_target_columns(args, lo, hi, loss, den, marks, predicted, confidence):
    """:func:`index_target_rows` for rows stored class by class: ``args[0]`` is ``(C, N)``,
    the transpose of a Fortran-order ``(N, C)`` input (:func:`sliced_statistics`)."""
    columns, y, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps, sum_tol = args
    targets = y[lo:hi]
    stats = statistics_rows(hi - lo, kind, smoothing)
    sliced_statistics(
        columns,
        lo,
        hi,
        True,
        targets,
        ignore_index,
        kind,
        class_weight,
        smoothing,
        stats,
        0,
        predicted,
        confidence,
    )
    options = (ignore_index, smoothing, kind, clip_eps, sum_tol, np.int64(columns.shape[0]))
    return finish_index_target_rows(
        stats, targets, class_weight, sample_weight, lo, options, loss, den, marks
    )


@vector_jit(forceinline=False)  # called once a block by the drivers (blocks.make_drivers)
def index_target_statistics(args, lo, hi, loss, den, marks, predicted, confidence):
    """:func:`index_target_rows` for rows whose statistics were already folded class group by
    class group (:mod:`fastxent.run.wide`): ``args[0]`` is their ``stats`` (``(N_STATS, N)``),
    ``args[1]`` their first argmax, ``args[2]`` its probability; the other arguments as
    :func:`index_target_rows`', then C."""
    (
        stats,
        chosen,
        probabilities,
        y,
        class_weight,
        sample_weight,
        ignore_index,
        smoothing,
        kind,
        clip_eps,
        sum_tol,
        classes,
    ) = args
    for r in range(predicted.shape[0]):
        predicted[r] = chosen[lo + r]
    for r in range(confidence.shape[0]):
        confidence[r] = probabilities[lo + r]
    options = (ignore_index, smoothing, kind, clip_eps, sum_tol, classes)
    return finish_index_target_rows(
        stats[:, lo:hi], y[lo:hi], class_weight, sample_weight, lo, options, loss, den, marks
    )


INDEX_TARGET = make_drivers(index_target_rows, "index_target")
INDEX_TARGET_STATISTICS = make_drivers(index_target_statistics, "index_target_statistics")
INDEX_TARGET_COLUMNS = make_drivers(index_target_columns, "index_target_columns")
SOFT_TARGET = make_drivers(soft_target_rows, "soft_target")
