"""CUDA kernels (numba-cuda): the loss formulas of :mod:`.formulas`, compiled for the GPU.

Nothing here touches the CUDA driver at import, and nothing imports this module at package import:
:mod:`fastxent.gpu` loads it when a GPU path is taken. The scalar formulas are the very functions
the CPU kernels inline (``formulas.multiclass_loss.py_func`` ...), compiled again with
``cuda.jit(device=True)``, so the two paths cannot drift.

Layout of the work:

- ``*_tiles`` kernels: one thread per row, :data:`TPB` rows per thread block. Each block reduces
  its rows' losses, denominators (and their products) and counts in shared memory, in a fixed
  tree order, to one partial per block; the host adds the partials exactly
  (:class:`fastxent.exact.ExactSum`). The
  same input therefore gives the same result on every run, whatever the scheduling.
- :func:`index_target_row_blocks`: one thread block per row for wide rows (a language-model
  vocabulary): threads stride over the row, then combine their maxima and sums in shared memory;
  per-row results go to global arrays that :func:`row_tiles` reduces like the above.
- ``per_row`` (an ``(N, 2)`` array, or ``(0, 2)`` for none) receives each row's loss and
  denominator: ``reduction="none"``, and the rows of blocks a batch holds only part of, which the
  host sums in the tiles' order (:mod:`.tile_order`).

No warp shuffles: the CUDA simulator, which runs these kernels in CI, does not have them. Values
are read in the input's dtype (float16 included) and widened to float64 in registers, where the
row sums, exponentials and loss formulas are computed: the GPU spends arithmetic, which it has
to spare, rather than memory traffic.
"""

from __future__ import annotations

import math

from numba import cuda, float64, int64

from . import formulas
from .codes import (
    BINARY_LOGITS,
    BINARY_PROBS_SKLEARN,
    CORRECT,
    IGNORED,
    JUDGED,
    LOGITS,
    N_COUNTS,
    N_SUMS,
    NONFINITE,
    PER_CLASS,
    PER_ELEMENT,
    PROBS,
    SCORED,
    TPB,
    UNNORMALISED,
)

_multiclass_loss = cuda.jit(device=True)(formulas.multiclass_loss.py_func)
_soft_target_term = cuda.jit(device=True)(formulas.soft_target_term.py_func)
_bce_logits_loss = cuda.jit(device=True)(formulas.bce_logits_loss.py_func)
_bce_prob_loss = cuda.jit(device=True)(formulas.bce_prob_loss.py_func)
_clipped_log_loss = cuda.jit(device=True)(formulas.clipped_log_loss.py_func)


@cuda.jit(device=True)
def _tile_reduce(loss, den, counts, partial_sums, partial_counts):
    """Reduce this block's rows into ``partial_*[blockIdx]`` in a fixed tree order: the
    :data:`~.codes.SUM_FIELDS` (losses, denominators and their products) and the counts."""
    s_sums = cuda.shared.array((N_SUMS, TPB), float64)
    s_counts = cuda.shared.array((N_COUNTS, TPB), int64)
    tid = cuda.threadIdx.x
    s_sums[0, tid] = loss
    s_sums[1, tid] = den
    s_sums[2, tid] = loss * loss
    s_sums[3, tid] = loss * den
    s_sums[4, tid] = den * den
    for k in range(N_COUNTS):
        s_counts[k, tid] = counts[k]
    cuda.syncthreads()
    stride = TPB // 2
    while stride > 0:
        if tid < stride:
            for q in range(N_SUMS):
                s_sums[q, tid] += s_sums[q, tid + stride]
            for k in range(N_COUNTS):
                s_counts[k, tid] += s_counts[k, tid + stride]
        cuda.syncthreads()
        stride //= 2
    if tid == 0:
        block = cuda.blockIdx.x
        for q in range(N_SUMS):
            partial_sums[block, q] = s_sums[q, 0]
        for k in range(N_COUNTS):
            partial_counts[block, k] = s_counts[k, 0]


@cuda.jit(device=True)
def _row_max(x, row):
    """``max_c x[row, c]`` as float64; NaN propagates."""
    m = float64(x[row, 0])
    for c in range(1, x.shape[1]):
        v = float64(x[row, c])
        if v > m or v != v:
            m = v if m == m else m
    return m


@cuda.jit(device=True)
def _first_argmax(x, row):
    m = _row_max(x, row)
    for c in range(x.shape[1]):
        if float64(x[row, c]) == m:
            return c
    return 0


@cuda.jit(device=True)
def _normaliser(x, row, m, kind):
    """``(shift, log Z)`` as :func:`fastxent.kernels.multiclass.normaliser`."""
    if kind != LOGITS:
        return 0.0, 0.0
    z = 0.0
    for c in range(x.shape[1]):
        z += math.exp(float64(x[row, c]) - m)
    return m, math.log(z)


@cuda.jit(device=True)
def _index_target_row(
    x, y, row, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps, sum_tol, w_total, counts
):
    """Loss and denominator of one row with a class-index target; updates ``counts``."""
    t = y[row]
    if t == ignore_index:
        counts[IGNORED] += 1
        return 0.0, 0.0
    num_classes = x.shape[1]
    w_t = class_weight[t] if class_weight.shape[0] > 0 else 1.0
    m = _row_max(x, row)
    if kind == PROBS:
        value = _clipped_log_loss(float64(x[row, t]), clip_eps)
        total = 0.0
        for c in range(num_classes):
            total += float64(x[row, c])
        if abs(total - 1.0) > sum_tol:
            counts[UNNORMALISED] += 1
    else:
        shift, log_norm = _normaliser(x, row, m, kind)
        smooth = 0.0
        if smoothing > 0.0:
            for c in range(num_classes):
                w_c = class_weight[c] if class_weight.shape[0] > 0 else 1.0
                smooth += w_c * (shift - float64(x[row, c]))
        value = _multiclass_loss(
            shift - float64(x[row, t]), log_norm, w_t, smooth, w_total, smoothing, num_classes
        )
    sw = sample_weight[row] if sample_weight.shape[0] > 0 else 1.0
    counts[SCORED] += 1
    counts[JUDGED] += 1
    if not math.isfinite(value):
        counts[NONFINITE] += 1
    if _first_argmax(x, row) == t and float64(x[row, t]) == m:
        counts[CORRECT] += 1
    return value * sw, w_t * sw


@cuda.jit
def index_target_tiles(
    x,
    y,
    class_weight,
    sample_weight,
    ignore_index,
    smoothing,
    kind,
    clip_eps,
    sum_tol,
    w_total,
    per_row,
    partial_sums,
    partial_counts,
):
    """Class-index targets, one thread per row (torch ``cross_entropy``/``nll_loss``, ``log_loss``)."""
    row = cuda.blockIdx.x * TPB + cuda.threadIdx.x
    counts = cuda.local.array(N_COUNTS, int64)
    for k in range(N_COUNTS):
        counts[k] = 0
    loss = den = 0.0
    if row < x.shape[0]:
        loss, den = _index_target_row(
            x,
            y,
            row,
            class_weight,
            sample_weight,
            ignore_index,
            smoothing,
            kind,
            clip_eps,
            sum_tol,
            w_total,
            counts,
        )
        if per_row.shape[0] > 0:
            per_row[row, 0] = loss
            per_row[row, 1] = den
    _tile_reduce(loss, den, counts, partial_sums, partial_counts)


@cuda.jit
def index_target_row_blocks(
    x, y, class_weight, sample_weight, ignore_index, smoothing, w_total, row_loss, row_den, row_flags
):
    """Logits with class-index targets, one thread block per row (wide rows).

    ``row_flags`` gets the row's counts as bits ``1 << k`` (k in the count order).
    """
    row = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    num_classes = x.shape[1]
    s_max = cuda.shared.array(TPB, float64)
    s_sum = cuda.shared.array(TPB, float64)
    s_smooth = cuda.shared.array(TPB, float64)
    t = y[row]
    if t == ignore_index:
        if tid == 0:
            row_loss[row] = 0.0
            row_den[row] = 0.0
            row_flags[row] = 1 << IGNORED
        return
    m = -math.inf
    for c in range(tid, num_classes, TPB):
        v = float64(x[row, c])
        if v > m or v != v:
            m = v if m == m else m
    s_max[tid] = m
    cuda.syncthreads()
    stride = TPB // 2
    while stride > 0:
        if tid < stride:
            a, b = s_max[tid], s_max[tid + stride]
            if b > a or b != b:
                s_max[tid] = b if a == a else a
        cuda.syncthreads()
        stride //= 2
    m = s_max[0]
    z = 0.0
    smooth = 0.0
    for c in range(tid, num_classes, TPB):
        v = float64(x[row, c])
        z += math.exp(v - m)
        if smoothing > 0.0:
            w_c = class_weight[c] if class_weight.shape[0] > 0 else 1.0
            smooth += w_c * (m - v)
    s_sum[tid] = z
    s_smooth[tid] = smooth
    cuda.syncthreads()
    stride = TPB // 2
    while stride > 0:
        if tid < stride:
            s_sum[tid] += s_sum[tid + stride]
            s_smooth[tid] += s_smooth[tid + stride]
        cuda.syncthreads()
        stride //= 2
    if tid == 0:
        w_t = class_weight[t] if class_weight.shape[0] > 0 else 1.0
        x_t = float64(x[row, t])
        value = _multiclass_loss(
            m - x_t, math.log(s_sum[0]), w_t, s_smooth[0], w_total, smoothing, num_classes
        )
        sw = sample_weight[row] if sample_weight.shape[0] > 0 else 1.0
        flags = (1 << SCORED) | (1 << JUDGED)
        if not math.isfinite(value):
            flags |= 1 << NONFINITE
        if x_t == m and _first_argmax(x, row) == t:
            flags |= 1 << CORRECT
        row_loss[row] = value * sw
        row_den[row] = w_t * sw
        row_flags[row] = flags


@cuda.jit
def row_tiles(row_loss, row_den, row_flags, per_row, partial_sums, partial_counts):
    """Reduce per-row results (from :func:`index_target_row_blocks`) to per-tile partials."""
    row = cuda.blockIdx.x * TPB + cuda.threadIdx.x
    counts = cuda.local.array(N_COUNTS, int64)
    loss = den = 0.0
    flags = 0
    if row < row_loss.shape[0]:
        loss, den, flags = row_loss[row], row_den[row], row_flags[row]
        if per_row.shape[0] > 0:
            per_row[row, 0] = loss
            per_row[row, 1] = den
    for k in range(N_COUNTS):
        counts[k] = (flags >> k) & 1
    _tile_reduce(loss, den, counts, partial_sums, partial_counts)


@cuda.jit
def soft_target_tiles(
    x, q, class_weight, sample_weight, smoothing, kind, per_row, partial_sums, partial_counts
):
    """Probability targets of the input's shape, one thread per row (torch soft-target CE)."""
    row = cuda.blockIdx.x * TPB + cuda.threadIdx.x
    counts = cuda.local.array(N_COUNTS, int64)
    for k in range(N_COUNTS):
        counts[k] = 0
    loss = den = 0.0
    if row < x.shape[0]:
        num_classes = x.shape[1]
        m = _row_max(x, row)
        shift, log_norm = _normaliser(x, row, m, kind)
        value = 0.0
        for c in range(num_classes):
            w_c = class_weight[c] if class_weight.shape[0] > 0 else 1.0
            d_c = shift - float64(x[row, c])
            value += _soft_target_term(float64(q[row, c]), w_c, d_c, log_norm, smoothing, num_classes)
        sw = sample_weight[row] if sample_weight.shape[0] > 0 else 1.0
        loss, den = value * sw, sw
        counts[SCORED] = 1
        counts[JUDGED] = 1
        counts[NONFINITE] = 0 if math.isfinite(value) else 1
        counts[CORRECT] = 1 if _first_argmax(x, row) == _first_argmax(q, row) else 0
        if per_row.shape[0] > 0:
            per_row[row, 0] = loss
            per_row[row, 1] = den
    _tile_reduce(loss, den, counts, partial_sums, partial_counts)


@cuda.jit(device=True)
def _binary_element(v, y, pos_weight, kind, clip_eps):
    if kind == BINARY_LOGITS:
        tail = math.log1p(math.exp(-abs(v)))
        return _bce_logits_loss(v, y, pos_weight, tail, 1.0)
    if kind == BINARY_PROBS_SKLEARN:
        return _clipped_log_loss(v if y > 0.5 else 1.0 - v, clip_eps)
    return _bce_prob_loss(y, math.log(v) if v > 0.0 else -math.inf, math.log1p(-v) if v < 1.0 else -math.inf)


@cuda.jit
def binary_tiles(
    x,
    t,
    weight,
    weight_mode,
    pos_weight,
    sample_weight,
    kind,
    clip_eps,
    per_row,
    partial_sums,
    partial_counts,
):
    """Binary (``x`` of shape ``(N, 1)``) and multilabel ``(N, C)`` input, one thread per row."""
    row = cuda.blockIdx.x * TPB + cuda.threadIdx.x
    counts = cuda.local.array(N_COUNTS, int64)
    for k in range(N_COUNTS):
        counts[k] = 0
    loss = den = 0.0
    if row < x.shape[0]:
        num_classes = x.shape[1]
        threshold = 0.0 if kind == BINARY_LOGITS else 0.5
        value = 0.0
        for c in range(num_classes):
            v = float64(x[row, c])
            y = float64(t[row, c])
            pw = pos_weight[c] if pos_weight.shape[0] > 0 else 1.0
            e = _binary_element(v, y, pw, kind, clip_eps)
            if weight_mode == PER_CLASS:
                e *= weight[c]
            elif weight_mode == PER_ELEMENT:
                e *= weight[row * num_classes + c]
            value += e
            if (v > threshold) == (y > 0.5):
                counts[CORRECT] += 1
        per = float64(num_classes) if kind != BINARY_PROBS_SKLEARN else 1.0
        sw = sample_weight[row] if sample_weight.shape[0] > 0 else 1.0
        loss, den = value * sw, per * sw
        counts[SCORED] = 1
        counts[JUDGED] = num_classes
        counts[NONFINITE] = 0 if math.isfinite(loss) else 1
        if per_row.shape[0] > 0:
            per_row[row, 0] = loss
            per_row[row, 1] = den
    _tile_reduce(loss, den, counts, partial_sums, partial_counts)


@cuda.jit
def first_bad_target(y, num_classes, ignore_index, first):
    """``first[0]`` = the smallest row whose target is neither a class nor ``ignore_index``.

    ``first[0]`` starts at ``len(y)``; rows are checked in parallel and the minimum kept with an
    atomic min, so the answer does not depend on scheduling.
    """
    row = cuda.grid(1)
    if row < y.shape[0]:
        t = y[row]
        if t != ignore_index and (t < 0 or t >= num_classes):
            cuda.atomic.min(first, 0, row)


@cuda.jit
def first_outside_unit(values, first):
    """``first[0]`` = the smallest position holding a value outside [0, 1] (or NaN)."""
    i = cuda.grid(1)
    if i < values.shape[0]:
        v = float64(values[i])
        if not (v >= 0.0 and v <= 1.0):
            cuda.atomic.min(first, 0, i)
