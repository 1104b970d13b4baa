"""Class-by-class sweeps over ``(C, N)`` columns (one class per array row, one lane per data row).

These are the steps of the class-by-class kernel (:func:`~.multiclass.column_slice_statistics`),
which runs each of them once over all the classes of a slice of rows. A file too wide to decode
row by row (:mod:`fastxent.run.wide`) runs the same steps over groups of classes read one after
another, each row's state (its maximum's key, partial sums, tie counts, first maximum) carried
from group to group. Every row sees the same operations in the same class order either way, so
both give the same bits. With ``x_rc`` the value of class ``c`` in row ``r``, ``m_r = max_c
x_rc``:

- :func:`fold_maxima`: ``m_r`` as order-preserving integer keys (any class order);
- :func:`fold_sums`: ``Z_r - 1 = sum_{x_rc != m_r} exp(x_rc - m_r) + (ties_r - 1)``, classes
  from the last down, partial sums of :data:`COLUMN_SEGMENT_CLASSES` classes in the columns'
  precision, and the first class at the maximum (``np.argmax``);
- :func:`fold_row_sums`: ``sum_c x_rc`` (probabilities), classes in order;
- :func:`fold_smoothing`: ``sum_c w_c (shift_r - x_rc)`` (label smoothing), classes in order;
- :func:`gather_targets`: ``x_{r, y_r}``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .codes import LOGITS, PROBS
from .formulas import as_type_of, excess_of, fexp_difference, log_norms
from .jit import serial_and_parallel, vector_jit, wide_vectors
from .vmath import empty_keys, float_of_key, is_finite, ordered_key

#: Classes per partial sum of the class-by-class sweeps (:func:`fold_sums`), where each row's
#: sum runs down one lane in class order: ``k`` terms in a row are off by up to ``(k-1) 2**-24``
#: relative (512 equal terms drifted by 4e-6). Flushing costs two float64 passes over the slice.
COLUMN_SEGMENT_CLASSES = 8


@vector_jit
def max4(a, b, c, d):
    """The largest of four values (a select tree LLVM vectorises for integers)."""
    ab = a if a > b else b
    cd = c if c > d else d
    return ab if ab > cd else cd


@vector_jit
def four_classes(columns, c, lo, hi):
    """Rows ``[lo, hi)`` of classes ``c`` to ``c + 3`` of a ``(C, N)`` array, as four 1-D views."""
    return columns[c, lo:hi], columns[c + 1, lo:hi], columns[c + 2, lo:hi], columns[c + 3, lo:hi]


@vector_jit
def fold_maxima(columns, lo, hi, keys):
    """``keys[r] = max(keys[r], max_c ordered_key(x_rc))`` for rows ``[lo, hi)`` of a ``(C, N)``
    array, as :func:`~.multiclass.row_max` orders values (:func:`~.vmath.ordered_key`).

    Four classes per sweep over the rows: the running keys are loaded and stored once per four
    classes, not per class.
    """
    wide_vectors()
    n = hi - lo
    num_classes = columns.shape[0]
    whole = num_classes - num_classes % 4
    for c in range(0, whole, 4):
        a0, a1, a2, a3 = four_classes(columns, c, lo, hi)
        for r in range(n):
            k = max4(ordered_key(a0[r]), ordered_key(a1[r]), ordered_key(a2[r]), ordered_key(a3[r]))
            keys[r] = k if k > keys[r] else keys[r]
    for c in range(whole, num_classes):
        a0 = columns[c, lo:hi]
        for r in range(n):
            k = ordered_key(a0[r])
            keys[r] = k if k > keys[r] else keys[r]


@vector_jit
def fold_sums(columns, first_class, lo, hi, maxima, partial, ties, excess, first_max):
    """Add classes ``first_class + C' - 1`` down to ``first_class`` of rows ``[lo, hi)`` of a
    ``(C', N)`` array to each row's sum of exponentials and first maximum.

    Per row ``r`` (state arrays indexed from 0): ``partial[r]`` and ``ties[r]`` (the columns'
    precision) collect ``exp(x_rc - m_r)`` over the values other than ``m_r = maxima[r]`` and the
    count of values equal to it; at each class that is a multiple of
    :data:`COLUMN_SEGMENT_CLASSES`, ``partial`` is added to ``excess[r]`` (float64). Classes run
    from the last down, so the last class seen equal to the maximum, ``first_max[r]``, is the
    first one (``-0.0 == 0.0`` ties as in :func:`~.multiclass.is_first_max`); the class index is
    int32, so that no 64-bit lane halves the vectors. An empty ``excess`` asks only for
    ``first_max`` (probabilities and log-probabilities).
    """
    wide_vectors()
    n = hi - lo
    if n == 0:
        return
    summing = excess.shape[0] > 0
    zero = as_type_of(0.0, maxima[0])
    for j in range(columns.shape[0] - 1, -1, -1):
        column = columns[j, lo:hi]
        c = first_class + j
        k = np.int32(c)
        if not summing:
            for r in range(n):
                first_max[r] = k if column[r] == maxima[r] else first_max[r]
            continue
        for r in range(n):
            v = column[r]
            m = maxima[r]
            tie = v == m
            partial[r] += zero if tie else fexp_difference(v, m)
            ties[r] += as_type_of(tie, m)
            first_max[r] = k if tie else first_max[r]
        if c % COLUMN_SEGMENT_CLASSES == 0:
            for r in range(n):
                excess[r] += np.float64(partial[r])
                partial[r] = zero


@vector_jit
def finish_excess(maxima, ties, excess):
    """``excess[r] = Z_r - 1`` once :func:`fold_sums` has seen every class (down to class 0,
    which flushes the last partial sum); NaN where the maximum is not finite (``Z`` then holds
    ``exp(inf - inf)``, as torch's does)."""
    wide_vectors()
    n = excess.shape[0]
    if n == 0:
        return
    for r in range(n):
        excess[r] = excess_of(excess[r], np.float64(ties[r])) if is_finite(maxima[r]) else np.nan


@vector_jit
def fold_row_sums(columns, lo, hi, row_sums):
    """``row_sums[r] += sum_c x_rc`` for rows ``[lo, hi)``, classes in order, in float64."""
    wide_vectors()
    for c in range(columns.shape[0]):
        column = columns[c, lo:hi]
        for r in range(hi - lo):
            row_sums[r] += column[r]


@vector_jit
def fold_smoothing(columns, first_class, lo, hi, class_weight, shifts, smooth):
    """``smooth[r] += sum_c w_c (shift_r - x_rc)`` for rows ``[lo, hi)``, classes
    ``first_class`` on in order (``w_c = 1`` without class weights), in float64."""
    wide_vectors()
    weighted = class_weight.shape[0] > 0
    for j in range(columns.shape[0]):
        column = columns[j, lo:hi]
        w_c = class_weight[first_class + j] if weighted else 1.0
        for r in range(hi - lo):
            smooth[r] += w_c * (shifts[r] - np.float64(column[r]))


@vector_jit
def gather_targets(columns, first_class, lo, hi, targets, ignore_index, x_target):
    """``x_target[r] = x_{r, y_r}`` (float64) for the rows ``[lo, hi)`` whose target is one of
    classes ``first_class`` to ``first_class + C' - 1``."""
    last = first_class + columns.shape[0]
    for r in range(hi - lo):
        t = targets[r]
        if t != ignore_index and first_class <= t < last:
            x_target[r] = np.float64(columns[t - first_class, lo + r])


@vector_jit
def fold_first_nan(columns, first_class, lo, hi, first_nan):
    """``first_nan[r]`` = the first class whose value is NaN in row ``r`` (left as it is if
    none), classes from the last down (``np.argmax`` picks the first NaN)."""
    for j in range(columns.shape[0] - 1, -1, -1):
        column = columns[j, lo:hi]
        for r in range(hi - lo):
            if column[r] != column[r]:
                first_nan[r] = first_class + j


@vector_jit
def top_probability(kind, m, excess):
    """The probability of a row's predicted class, its first maximum ``m``, in float64: for
    logits ``exp(m - m) / Z = 1 / (1 + excess)`` (``excess = Z - 1``, NaN where ``m`` is not
    finite), log-probabilities ``exp(m)``, probabilities ``m``."""
    if kind == LOGITS:
        return 1.0 / (1.0 + excess)
    if kind == PROBS:
        return np.float64(m)
    return math.exp(np.float64(m))


@vector_jit
def finish_statistics(
    kind,
    num_classes,
    maxima,
    excess,
    first_max,
    first_nan,
    x_target,
    targets,
    stats_rows,
    predicted,
    confidence,
    shifts,
):
    """Each row's ``log Z``, ``shift - x_y`` (probabilities: ``p_y``) and correct flag into
    ``stats_rows = (d_target, log_norm, correct)`` (ignored rows' too, which are never read:
    the loops have no branch); unless ``predicted`` is empty, its first
    argmax (``first_nan[r]`` where the maximum is NaN: :func:`fold_sums` then found no class and
    left ``first_max[r] = num_classes``), and unless ``confidence`` is empty, that class's
    probability (:func:`top_probability`); ``shifts`` gets what :func:`fold_smoothing` takes
    (``m_r`` for logits, else 0)."""
    d_target, log_norm, correct = stats_rows
    n = maxima.shape[0]
    logits = kind == LOGITS
    for r in range(n):
        shifts[r] = maxima[r] if logits else 0.0
    if logits:
        log_norms(excess, maxima, log_norm)
    if predicted.shape[0] > 0:
        for r in range(n):
            predicted[r] = first_nan[r] if first_max[r] == num_classes else first_max[r]
    if confidence.shape[0] > 0:
        for r in range(n):
            confidence[r] = top_probability(kind, maxima[r], excess[r] if kind == LOGITS else 0.0)
    for r in range(n):
        d_target[r] = x_target[r] if kind == PROBS else shifts[r] - x_target[r]
        correct[r] = first_max[r] == targets[r]


#: Rows per task of the group passes: each row's running state (about 30 bytes) stays in L1/L2
#: while a group's columns stream past it.
PASS_ROWS = 2048


def _maxima_pass(columns, keys, start):
    """:func:`fold_maxima` of a group of classes over all its rows (``start``: the first group,
    whose first class sets the keys), rows split into tasks of :data:`PASS_ROWS`."""
    n = columns.shape[1]
    for task in prange(-(-n // PASS_ROWS)):
        lo = task * PASS_ROWS
        hi = min(lo + PASS_ROWS, n)
        running = keys[lo:hi]
        if start:
            for r in range(hi - lo):
                running[r] = ordered_key(columns[0, lo + r])
        fold_maxima(columns, lo, hi, running)


def _sums_pass(
    columns, first_class, maxima, partial, ties, excess, first_max, targets, ignore_index, x_target, first_nan
):
    """:func:`fold_sums`, :func:`gather_targets` and (unless ``first_nan`` is empty)
    :func:`fold_first_nan` of a group of classes over all its rows, in tasks of :data:`PASS_ROWS`."""
    n = columns.shape[1]
    summing = excess.shape[0] > 0
    for task in prange(-(-n // PASS_ROWS)):
        lo = task * PASS_ROWS
        hi = min(lo + PASS_ROWS, n)
        upto = hi if summing else lo  # empty state slices when only the argmax is wanted
        fold_sums(
            columns,
            first_class,
            lo,
            hi,
            maxima[lo:hi],
            partial[lo:upto],
            ties[lo:upto],
            excess[lo:upto],
            first_max[lo:hi],
        )
        gather_targets(columns, first_class, lo, hi, targets[lo:hi], ignore_index, x_target[lo:hi])
        if first_nan.shape[0] > 0:
            fold_first_nan(columns, first_class, lo, hi, first_nan[lo:hi])


def _terms_pass(columns, first_class, kind, class_weight, smoothing, shifts, row_sums, smooth):
    """:func:`fold_row_sums` (probabilities) and :func:`fold_smoothing` (``smoothing > 0``) of
    a group of classes over all its rows, in tasks of :data:`PASS_ROWS`."""
    n = columns.shape[1]
    for task in prange(-(-n // PASS_ROWS)):
        lo = task * PASS_ROWS
        hi = min(lo + PASS_ROWS, n)
        if kind == PROBS:
            fold_row_sums(columns, lo, hi, row_sums[lo:hi])
        if smoothing > 0.0:
            fold_smoothing(columns, first_class, lo, hi, class_weight, shifts[lo:hi], smooth[lo:hi])


@vector_jit
def slice_maxima(columns, lo, hi, maxima):
    """``maxima[i] = max_c x_rc`` for rows ``r = lo + i`` in ``[lo, hi)`` of a ``(C, N)`` array,
    as :func:`~.multiclass.row_max` orders values (:func:`fold_maxima`)."""
    wide_vectors()
    n = hi - lo
    first = columns[0, lo:hi]
    keys = empty_keys(n, columns[0, 0])
    for r in range(n):
        keys[r] = ordered_key(first[r])
    fold_maxima(columns, lo, hi, keys)
    maxima_of_keys(keys, maxima)


@vector_jit
def maxima_of_keys(keys, maxima):
    """``maxima[r]`` = the float whose :func:`~.vmath.ordered_key` is ``keys[r]``."""
    for r in range(keys.shape[0]):
        maxima[r] = float_of_key(keys[r], maxima[0])


MAXIMA_PASS = serial_and_parallel(_maxima_pass)
SUMS_PASS = serial_and_parallel(_sums_pass)
TERMS_PASS = serial_and_parallel(_terms_pass)
