"""CUDA kernels (numba-cuda): the loss formulas of :mod:`.formulas`, compiled for the GPU.

Nothing here touches the CUDA driver at import, and nothing imports this module at package import:
:mod:`fastxent.gpu` loads it when a GPU path is taken. The scalar formulas are the very functions
the CPU kernels inline (``formulas.multiclass_loss.py_func`` ...), compiled again with
``cuda.jit(device=True)``, so the two paths cannot drift.

Layout of the work:

- ``*_blocks`` kernels: one thread block of :data:`TPB` threads per summation block of
  :data:`BLOCK_ROWS` rows. Thread ``t`` scores rows ``t, t + TPB, t + 2 TPB, ...`` of the block
  (consecutive threads, consecutive rows) and adds each row's loss, denominator and their
  products to its own sums in that order; the block's threads are then reduced in shared memory
  by halving strides, to one partial per summation block, which the host adds exactly
  (:class:`fastxent.exact.ExactSum`). Counts are integers: each block adds its own to the totals
  atomically. The same input therefore gives the same result on every run, whatever the
  scheduling, and only one partial per 2048 rows crosses to the host.
- :func:`index_target_row_blocks`: one thread block per row for wide rows (a language-model
  vocabulary): threads stride over the row (coalesced reads), then combine their maxima and sums
  in shared memory; per-row results go to global arrays that :func:`row_blocks` reduces like the
  above.
- ``per_row`` (an ``(N, 2)`` array, or ``(0, 2)`` for none) receives each row's loss and
  denominator: ``reduction="none"``, and the rows of blocks a batch holds only part of, which the
  host sums in the threads' order (:mod:`.gpu_sum_order`).

No warp shuffles: the CUDA simulator, which runs these kernels in CI, does not have them. Values
are read in the input's dtype (float16 included) and widened to float64 in registers, where the
row sums, exponentials and loss formulas are computed: the GPU spends arithmetic, which it has
to spare, rather than memory traffic.
"""

from __future__ import annotations

import math

from numba import config, cuda, float64, int64
from numba.cuda import libdevice

from . import formulas
from .codes import (
    BINARY_LOGITS,
    BINARY_PROBS_SKLEARN,
    BLOCK_ROWS,
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
    ROWS_PER_THREAD,
    SCORED,
    TPB,
    UNNORMALISED,
)

_multiclass_loss = cuda.jit(device=True)(formulas.multiclass_loss.py_func)
_soft_target_term = cuda.jit(device=True)(formulas.soft_target_term.py_func)
_bce_logits_loss = cuda.jit(device=True)(formulas.bce_logits_loss.py_func)
_bce_prob_loss = cuda.jit(device=True)(formulas.bce_prob_loss.py_func)
_clipped_log_loss = cuda.jit(device=True)(formulas.clipped_log_loss.py_func)


# The products of the standard error's sums must round on their own, as the host's do when it
# sums a block's rows (gpu_sum_order): NVVM contracts ``s += a * b`` into one fused multiply-add by
# default, and libdevice's dmul_rn is never contracted. The simulator's libdevice functions are
# stubs (they return None), so there a plain product stands in.
if config.ENABLE_CUDASIM:

    @cuda.jit(device=True)
    def _product(a, b):
        return a * b

else:
    _product = libdevice.dmul_rn


@cuda.jit(device=True)
def _add_row(sums, loss, den):
    """Add one row to a thread's :data:`~.codes.SUM_FIELDS` (losses, denominators, products)."""
    sums[0] += loss
    sums[1] += den
    sums[2] += _product(loss, loss)
    sums[3] += _product(loss, den)
    sums[4] += _product(den, den)


@cuda.jit(device=True)
def _start_block(sums, counts):
    """Zero a thread's sums and counts; return its first row (its thread block's summation
    block, then every :data:`TPB`-th row of it)."""
    for q in range(N_SUMS):
        sums[q] = 0.0
    for k in range(N_COUNTS):
        counts[k] = 0
    return cuda.blockIdx.x * BLOCK_ROWS + cuda.threadIdx.x


@cuda.jit(device=True)
def _keep_row(sums, per_row, row, loss, den):
    """Add a row to the thread's sums, and write it to ``per_row`` when that is asked for."""
    _add_row(sums, loss, den)
    if per_row.shape[0] > 0:
        per_row[row, 0] = loss
        per_row[row, 1] = den


@cuda.jit(device=True)
def _block_reduce(sums, counts, partial_sums, total_counts):
    """Reduce the block's threads' ``sums`` into ``partial_sums[blockIdx]`` by halving strides
    (``s[i] += s[i + stride]``, ``stride = TPB/2, ..., 1``); add their ``counts`` to
    ``total_counts`` atomically (integers: the order does not matter)."""
    s_sums = cuda.shared.array((N_SUMS, TPB), float64)
    s_counts = cuda.shared.array((N_COUNTS, TPB), int64)
    tid = cuda.threadIdx.x
    for q in range(N_SUMS):
        s_sums[q, tid] = sums[q]
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
            cuda.atomic.add(total_counts, k, s_counts[k, 0])


@cuda.jit(device=True)
def _max_and_first(x, row, start, step):
    """``(m, c)``: the maximum of classes ``start, start + step, ...`` of the row as float64 and
    the first of them holding it (``start < x.shape[1]``). NaN propagates; its class is then
    reported as 0 (no class equals a NaN maximum)."""
    m, first = float64(x[row, start]), start
    for c in range(start + step, x.shape[1], step):
        v = float64(x[row, c])
        if m == m and (v > m or v != v):
            m, first = v, c
    return m, (first if m == m else 0)


@cuda.jit(device=True)
def _log_norm(s, ties, m):
    """``log Z = log1p(s + (ties - 1))`` from the sum ``s`` of ``exp(x_c - m)`` over the classes
    below the maximum ``m`` and the count ``ties`` of classes at it (each ``exp(0) = 1``): a
    confident row's small loss keeps its relative precision (:func:`~.multiclass.excess_sum`).
    NaN unless ``m`` is finite, as on the CPU."""
    if m - m != 0.0:
        return math.nan
    return math.log1p(s + (ties - 1.0))


@cuda.jit(device=True)
def _normaliser(x, row, m, kind):
    """``(shift, log Z)`` with ``-log p_c = (shift - x_c) + log Z``: for logits ``shift = m``,
    ``log Z = log1p(Z - 1)`` (as :func:`fastxent.kernels.multiclass.excess_sum`), for
    log-probabilities ``(0, 0)``."""
    if kind != LOGITS:
        return 0.0, 0.0
    s = ties = 0.0
    for c in range(x.shape[1]):
        v = float64(x[row, c])
        if v == m:
            ties += 1.0
        else:
            s += math.exp(v - m)
    return m, _log_norm(s, ties, m)


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
    m, first = _max_and_first(x, row, 0, 1)
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
    if first == t and float64(x[row, t]) == m:
        counts[CORRECT] += 1
    return value * sw, w_t * sw


@cuda.jit
def index_target_blocks(
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
    total_counts,
):
    """Class-index targets, one thread per row (torch ``cross_entropy``/``nll_loss``, ``log_loss``)."""
    sums = cuda.local.array(N_SUMS, float64)
    counts = cuda.local.array(N_COUNTS, int64)
    first = _start_block(sums, counts)
    for step in range(ROWS_PER_THREAD):
        row = first + step * TPB
        if row < x.shape[0]:
            loss, den = _index_target_row(
                x, y, row, class_weight, sample_weight, ignore_index, smoothing, kind, clip_eps, sum_tol,
                w_total, counts,
            )  # fmt: skip
            _keep_row(sums, per_row, row, loss, den)
    _block_reduce(sums, counts, partial_sums, total_counts)


@cuda.jit(device=True)
def _block_maximum(s_max, s_first, tid):
    """Reduce the block's shared slots by halving strides to the maximum and the first class
    holding it (NaN wins, as in :func:`_max_and_first`). Every thread of the block calls it."""
    stride = TPB // 2
    while stride > 0:
        if tid < stride:
            other = tid + stride
            a, b = s_max[tid], s_max[other]
            if a == a and (b != b or b > a or (b == a and s_first[other] < s_first[tid])):
                s_max[tid] = b
                s_first[tid] = s_first[other]
        cuda.syncthreads()
        stride //= 2


@cuda.jit(device=True)
def _block_sums(s_sum, s_ties, s_smooth, tid):
    """Reduce the block's shared slots of three sums by halving strides."""
    stride = TPB // 2
    while stride > 0:
        if tid < stride:
            s_sum[tid] += s_sum[tid + stride]
            s_ties[tid] += s_ties[tid + stride]
            s_smooth[tid] += s_smooth[tid + stride]
        cuda.syncthreads()
        stride //= 2


@cuda.jit
def index_target_row_blocks(
    x, y, class_weight, sample_weight, ignore_index, smoothing, w_total, row_loss, row_den, row_flags
):
    """Logits with class-index targets, one thread block per row (wide rows).

    The threads stride over the row's classes (consecutive threads, consecutive classes:
    coalesced reads); each keeps the maximum and the first class holding it, then the sum of
    ``exp(x - m)`` below the maximum, the count of classes at it (:func:`_log_norm`) and the
    smoothing sum; the threads are reduced in shared memory by halving strides.
    ``row_flags`` gets the row's counts as bits ``1 << k`` (k in the count order).
    """
    row = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    num_classes = x.shape[1]
    s_max = cuda.shared.array(TPB, float64)
    s_first = cuda.shared.array(TPB, int64)
    s_sum = cuda.shared.array(TPB, float64)
    s_ties = cuda.shared.array(TPB, float64)
    s_smooth = cuda.shared.array(TPB, float64)
    t = y[row]
    if t == ignore_index:  # the whole block returns: no thread waits at a barrier
        if tid == 0:
            row_loss[row] = 0.0
            row_den[row] = 0.0
            row_flags[row] = 1 << IGNORED
        return
    m, first = -math.inf, num_classes
    if tid < num_classes:
        m, first = _max_and_first(x, row, tid, TPB)
    s_max[tid] = m
    s_first[tid] = first
    cuda.syncthreads()
    _block_maximum(s_max, s_first, tid)
    m = s_max[0]
    s = ties = smooth = 0.0
    for c in range(tid, num_classes, TPB):
        v = float64(x[row, c])
        if v == m:
            ties += 1.0
        else:
            s += math.exp(v - m)
        if smoothing > 0.0:
            w_c = class_weight[c] if class_weight.shape[0] > 0 else 1.0
            smooth += w_c * (m - v)
    s_sum[tid] = s
    s_ties[tid] = ties
    s_smooth[tid] = smooth
    cuda.syncthreads()
    _block_sums(s_sum, s_ties, s_smooth, tid)
    if tid == 0:
        w_t = class_weight[t] if class_weight.shape[0] > 0 else 1.0
        x_t = float64(x[row, t])
        log_norm = _log_norm(s_sum[0], s_ties[0], m)
        value = _multiclass_loss(m - x_t, log_norm, w_t, s_smooth[0], w_total, smoothing, num_classes)
        sw = sample_weight[row] if sample_weight.shape[0] > 0 else 1.0
        flags = (1 << SCORED) | (1 << JUDGED)
        if not math.isfinite(value):
            flags |= 1 << NONFINITE
        if x_t == m and s_first[0] == t:
            flags |= 1 << CORRECT
        row_loss[row] = value * sw
        row_den[row] = w_t * sw
        row_flags[row] = flags


@cuda.jit
def row_blocks(row_loss, row_den, row_flags, per_row, partial_sums, total_counts):
    """Reduce per-row results (from :func:`index_target_row_blocks`) to per-block partials."""
    sums = cuda.local.array(N_SUMS, float64)
    counts = cuda.local.array(N_COUNTS, int64)
    first = _start_block(sums, counts)
    for step in range(ROWS_PER_THREAD):
        row = first + step * TPB
        if row < row_loss.shape[0]:
            flags = row_flags[row]
            for k in range(N_COUNTS):
                counts[k] += (flags >> k) & 1
            _keep_row(sums, per_row, row, row_loss[row], row_den[row])
    _block_reduce(sums, counts, partial_sums, total_counts)


@cuda.jit(device=True)
def _soft_target_row(x, q, row, class_weight, sample_weight, smoothing, kind, counts):
    """Loss and denominator of one row with a probability target; updates ``counts``."""
    num_classes = x.shape[1]
    m, predicted = _max_and_first(x, row, 0, 1)
    shift, log_norm = _normaliser(x, row, m, kind)
    value = 0.0
    for c in range(num_classes):
        w_c = class_weight[c] if class_weight.shape[0] > 0 else 1.0
        d_c = shift - float64(x[row, c])
        value += _soft_target_term(float64(q[row, c]), w_c, d_c, log_norm, smoothing, num_classes)
    sw = sample_weight[row] if sample_weight.shape[0] > 0 else 1.0
    counts[SCORED] += 1
    counts[JUDGED] += 1
    if not math.isfinite(value):
        counts[NONFINITE] += 1
    if predicted == _max_and_first(q, row, 0, 1)[1]:
        counts[CORRECT] += 1
    return value * sw, sw


@cuda.jit
def soft_target_blocks(
    x, q, class_weight, sample_weight, smoothing, kind, per_row, partial_sums, total_counts
):
    """Probability targets of the input's shape, one thread per row (torch soft-target CE)."""
    sums = cuda.local.array(N_SUMS, float64)
    counts = cuda.local.array(N_COUNTS, int64)
    first = _start_block(sums, counts)
    for step in range(ROWS_PER_THREAD):
        row = first + step * TPB
        if row < x.shape[0]:
            loss, den = _soft_target_row(x, q, row, class_weight, sample_weight, smoothing, kind, counts)
            _keep_row(sums, per_row, row, loss, den)
    _block_reduce(sums, counts, partial_sums, total_counts)


@cuda.jit(device=True)
def _binary_element(v, y, pos_weight, kind, clip_eps):
    if kind == BINARY_LOGITS:
        tail = math.log1p(math.exp(-abs(v)))
        return _bce_logits_loss(v, y, pos_weight, tail, 1.0)
    if kind == BINARY_PROBS_SKLEARN:
        return _clipped_log_loss(v if y > 0.5 else 1.0 - v, clip_eps)
    return _bce_prob_loss(y, math.log(v) if v > 0.0 else -math.inf, math.log1p(-v) if v < 1.0 else -math.inf)


@cuda.jit(device=True)
def _binary_row(x, t, row, weight, weight_mode, pos_weight, sample_weight, kind, clip_eps, counts):
    """Loss and denominator of one binary / multilabel row; updates ``counts``."""
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
    loss = value * sw
    counts[SCORED] += 1
    counts[JUDGED] += num_classes
    if not math.isfinite(loss):
        counts[NONFINITE] += 1
    return loss, per * sw


@cuda.jit
def binary_blocks(
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
    total_counts,
):
    """Binary (``x`` of shape ``(N, 1)``) and multilabel ``(N, C)`` input, one thread per row."""
    sums = cuda.local.array(N_SUMS, float64)
    counts = cuda.local.array(N_COUNTS, int64)
    first = _start_block(sums, counts)
    for step in range(ROWS_PER_THREAD):
        row = first + step * TPB
        if row < x.shape[0]:
            loss, den = _binary_row(
                x, t, row, weight, weight_mode, pos_weight, sample_weight, kind, clip_eps, counts
            )
            _keep_row(sums, per_row, row, loss, den)
    _block_reduce(sums, counts, partial_sums, total_counts)


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
