"""``binary_cross_entropy_with_logits`` with a ``pos_weight`` that differs from row to row.

torch broadcasts ``pos_weight`` against the input, so a ``(N, C)`` or ``(N, 1)`` ``pos_weight``
weighs each element on its own. The kernels take one ``pos_weight`` per class; inputs whose
``pos_weight`` varies along the rows are scored here, with NumPy, a slab of rows at a time: the
formula of :func:`fastxent.kernels.formulas.bce_logits_loss`, in the kernels' precision (float32
for float16/float32 input, float64 for float64), summed exactly (so slabs do not change a bit).
"""

from __future__ import annotations

import numpy as np

from . import engine
from .exact import ExactSum


def logit_losses(x: np.ndarray, y: np.ndarray, pos_weight: np.ndarray) -> np.ndarray:
    """Element losses ``(1-y) x + a softplus(-x)``, ``a = 1 + (p-1) y``, without cancellation.

    All three arrays have one dtype, the precision of the result. As in the kernels, ``x < 0``
    is rewritten ``-p y x + a log1p(e^x)``; ``x = -inf`` keeps torch's form (NaN).
    """
    one = x.dtype.type(1)
    tail = np.log1p(np.exp(-np.abs(x)))
    a = one + (pos_weight - one) * y
    at_or_above_zero = (one - y) * x + a * tail
    below_zero = -pos_weight * y * x + a * tail
    torch_form = (one - y) * x + a * (-x + tail)
    return np.where(x >= 0, at_or_above_zero, np.where(x > -np.inf, below_zero, torch_form))


def binary_logits(x, target, pos_weight, weight, reduction: str):
    """torch ``binary_cross_entropy_with_logits`` for ``pos_weight`` and ``weight`` that
    broadcast to ``x.shape`` (``x`` at least 2-D): per-element losses, their sum or their mean."""
    dtype = engine.compute_dtype(x.dtype)
    pos_weight = np.broadcast_to(pos_weight, x.shape)
    weight = None if weight is None else np.broadcast_to(weight, x.shape)
    out = np.empty(x.shape, dtype) if reduction == "none" else None
    total = ExactSum()
    step = max(1, engine.CHUNK_ELEMENTS // max(1, int(np.prod(x.shape[1:]))))
    for lo in range(0, x.shape[0], step):
        rows = slice(lo, lo + step)
        with np.errstate(all="ignore"):  # inf and NaN logits give torch's inf and NaN
            losses = logit_losses(
                np.asarray(x[rows], dtype),
                np.asarray(target[rows], dtype),
                np.asarray(pos_weight[rows], dtype),
            ).astype(np.float64)
            if weight is not None:
                losses *= weight[rows]
        if out is not None:
            out[rows] = losses
        else:
            total.add(losses)
    if out is not None:
        return out
    if reduction == "sum":
        return total.value()
    with np.errstate(invalid="ignore"):
        return float(np.float64(total.value()) / np.float64(x.size))  # 0/0 is NaN, as in torch
