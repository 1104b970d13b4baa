"""The scalar loss formulas, written once and shared by every kernel.

Each function here is a pure scalar formula: the row/element loops that feed it (max, sums of
exponentials) live in the kernels, so the same formula can be compiled for any target. ``fexp_difference``,
``flog`` and ``flog1p`` pick the implementation from the argument type: the vectorisable
float32 versions of :mod:`.vmath` for float32, libm for float64 (the float64 accuracy promise,
1e-12 relative, is kept by libm).

Notation: ``x`` logits, ``m = max_c x_c``, ``d_c = m - x_c >= 0`` (exact in float64),
``Z = sum_c exp(x_c - m)`` so ``-log_softmax(x)_c = d_c + log Z``; ``w`` class weights.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from .jit import ELEMENTWISE_OVERLOAD_OPTIONS, VECTOR_OVERLOAD_OPTIONS, elementwise_jit, wide_vectors
from .vmath import exp_difference32, log1p32, log32, softplus_tail32

#: torch clamps each log of ``binary_cross_entropy`` at -100 so that ``0 * log 0`` is 0.
BCE_LOG_FLOOR = -100.0


def fexp_difference(x, m):
    """``exp(x - m)`` for a logit ``x`` and its row maximum ``m``, inside a sum that contains
    ``exp(0)``.

    float32: :func:`~.vmath.exp_difference32` (the rounding of ``x - m`` corrected, terms below
    1.6e-38 flushed to 0); float64: libm.
    """
    return math.exp(x - m)


def fsoftplus_tail(x):
    """``log1p(exp(-|x|))``, the part of ``softplus(x) = max(x, 0) + log1p(exp(-|x|))`` that is
    not exact.

    float32: :func:`~.vmath.softplus_tail32` (tails below 1.6e-38, i.e. ``|x| > 87``, flushed to
    0: float32 cannot hold them to 1e-6 anyway); float64: libm.
    """
    return math.log1p(math.exp(-abs(x)))


def flog_of_excess(s, like):
    """``log Z = log1p(s)`` from ``s = Z - 1 >= 0`` (a sum of shifted exponentials less the
    maximum's ``exp(0)``), in float64.

    float32 rows (``like``): :func:`~.vmath.log1p32` of ``s`` rounded to float32 (it vectorises);
    ``s`` keeps the relative precision of a confident row's small terms, so the row loss
    ``d_y + log Z`` (two non-negative terms) stays within 5e-7 relative. float64 rows: libm.
    """
    return math.log1p(s)


@elementwise_jit
def excess_of(s, ties):
    """``Z - 1 = s + (ties - 1)`` from the sum ``s`` of a row's terms other than its maximum and
    the count ``ties`` of classes at the maximum (each ``exp(0) = 1``).

    Strict arithmetic (:func:`~.jit.elementwise_jit`): with reassociation LLVM rewrites it
    ``(s + ties) - 1``, which rounds a confident row's ``s = 1e-16`` to ``2**-52``.
    """
    return s + (ties - 1.0)


def flog(x):
    """``log`` in the precision of ``x``."""
    return math.log(x)


def flog1p(x):
    """``log1p`` in the precision of ``x``."""
    return math.log1p(x)


def _by_precision(float32_impl, libm_impl):
    def typer(x):
        if x == types.float32:
            return lambda x: float32_impl(x)
        if isinstance(x, types.Float):
            return lambda x: libm_impl(x)
        return None

    return typer


def as_type_of(value, like):
    """``value`` converted to the float type of ``like`` (Numba types a bare ``1.0`` as float64)."""
    return float(value)


@overload(as_type_of, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _as_type_of(value, like):
    if isinstance(like, types.Float):
        convert = np.float32 if like == types.float32 else np.float64
        return lambda value, like: convert(value)
    return None


@overload(flog_of_excess, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _flog_of_excess(s, like):
    if like == types.float32:
        return lambda s, like: np.float64(log1p32(np.float32(s)))
    if isinstance(like, types.Float):
        return lambda s, like: math.log1p(s)
    return None


def log_norms(excess, precision, out):
    """``out[r] = flog_of_excess(excess[r], p)`` for every row ``r``, ``p`` a value of the dtype
    of the array ``precision`` (a Numba overload: callable from compiled code only).

    float32: the narrowing, :func:`~.vmath.log1p32` and the widening each in a loop of its own,
    so the logs run in float32 lanes: one loop, holding float64 values, ran in 4 lanes at
    3.5 ns a row against 1.7 (512 rows in cache, one thread, AMD Zen 3). The same bits.
    float64: ``math.log1p``, as :func:`flog_of_excess`.
    """
    raise NotImplementedError("log_norms is only callable from jitted code")


@overload(log_norms, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _log_norms(excess, precision, out):
    if precision.dtype == types.float32:

        def in_float32_lanes(excess, precision, out):
            wide_vectors()
            n = excess.shape[0]
            narrow = np.empty(n, dtype=np.float32)
            for r in range(n):
                narrow[r] = np.float32(excess[r])
            for r in range(n):
                narrow[r] = log1p32(narrow[r])
            for r in range(n):
                out[r] = np.float64(narrow[r])

        return in_float32_lanes

    def by_row(excess, precision, out):
        for r in range(excess.shape[0]):
            out[r] = math.log1p(excess[r])

    return by_row


for _generic, _float32_impl, _libm_impl in (
    (flog, log32, math.log),
    (fsoftplus_tail, softplus_tail32, elementwise_jit(fsoftplus_tail)),
    (flog1p, log1p32, math.log1p),
):
    overload(_generic, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)(_by_precision(_float32_impl, _libm_impl))


@overload(fexp_difference, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _fexp_difference(x, m):
    if x == types.float32:
        return lambda x, m: exp_difference32(x, m)
    if isinstance(x, types.Float):
        return lambda x, m: math.exp(x - m)
    return None


@elementwise_jit
def multiclass_loss(d_target, log_norm, w_target, smooth_wd, w_total, smoothing, num_classes):
    """Cross-entropy of one row with a class-index target (torch ``cross_entropy``).

    ``l = (1-eps) * w_y * (d_y + log Z) + (eps/C) * (sum_c w_c d_c + W log Z)``, with
    ``W = sum_c w_c``; for ``eps = 0`` only the first term (so a ``-inf`` logit in another class
    cannot turn ``0 * inf`` into NaN). For log-probability input pass ``d_c = -x_c``,
    ``log Z = 0`` (``nll_loss``).
    """
    nll = w_target * (d_target + log_norm)
    if smoothing == 0.0:
        return nll
    return (1.0 - smoothing) * nll + (smoothing / num_classes) * (smooth_wd + w_total * log_norm)


@elementwise_jit
def soft_target_term(target, weight, d, log_norm, smoothing, num_classes):
    """One class's term of the soft-target loss: ``w_c q_c (d_c + log Z)``.

    ``q_c = t_c (1 - eps) + eps / C``. ``0 * inf`` stays NaN, as in torch.
    """
    q = target * (1.0 - smoothing) + smoothing / num_classes
    return weight * q * (d + log_norm)


@elementwise_jit
def bce_logits_loss(x, y, pos_weight, softplus_tail, one):
    """``binary_cross_entropy_with_logits`` of one element, without cancellation.

    torch: ``l = (1-y) x + a (max(-x, 0) + log1p(exp(-|x|)))`` with ``a = 1 + (p-1) y``.
    ``softplus_tail = log1p(exp(-|x|))``. For ``x < 0`` the terms in ``x`` are rewritten
    ``-p y x``, so no large terms cancel: ``l = s x + a softplus_tail`` with the slope
    ``s = 1 - y`` (``x >= 0``) or ``-p y`` (``x < 0``). ``x = -inf`` keeps torch's form (NaN), as
    does ``x = +inf``. Computed in the precision of ``one`` (1 of the input's type): every term
    is non-negative for ``0 <= y <= 1``, so float32 rounding adds at most a few 1e-8 relative.
    """
    a = one + (pos_weight - one) * y
    slope = (one - y) if x >= 0.0 else -pos_weight * y  # selects, not branches: loops vectorise
    value = slope * x + a * softplus_tail
    torch_form = (one - y) * x + a * (-x + softplus_tail)
    return value if x > -math.inf else torch_form


@elementwise_jit
def bce_prob_loss(y, log_p, log_1mp):
    """``binary_cross_entropy`` of one element: ``(y-1) max(log(1-p), -100) - y max(log p, -100)``."""
    return (y - 1.0) * max(log_1mp, BCE_LOG_FLOOR) - y * max(log_p, BCE_LOG_FLOOR)


@elementwise_jit
def clipped_log_loss(p, eps):
    """scikit-learn ``log_loss`` of one true-class probability: ``-log(clip(p, eps, 1-eps))``."""
    return -math.log(min(max(p, eps), 1.0 - eps))
