"""The functional API: torch.nn.functional and sklearn.metrics signatures, exact semantics.

``log_loss`` lives with scikit-learn's input rules in :mod:`fastxent.labels`.

Every function validates, then streams its input through an :class:`~fastxent.state.Accumulator`
(``"mean"``/``"sum"``) or the row-wise kernels (``"none"``), chunk by chunk. torch tensors are read
as users hold them: detached, ``bfloat16`` as float32, on the GPU in place.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import elementwise, engine, gpu, validate
from .errors import InputValueError
from .inputs import as_array, unwrap
from .labels import log_loss  # noqa: F401 (scikit-learn's function, with its input rules)
from .state import Accumulator

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(reduction: str, device: str, size_average=None, reduce=None) -> str:
    """The reduction to apply, checked; torch's legacy ``size_average``/``reduce`` decide it when
    either is given, with torch's warning (``torch.nn._reduction.legacy_get_string``)."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
            UserWarning,  # torch's category, so that filters written for torch apply
            stacklevel=3,
        )
    validate.choice("reduction", reduction, _REDUCTIONS)
    validate.choice("device", device, ("auto", "cpu", "cuda"))
    return reduction


def _on_gpu(reduction: str, kind: str, input, target, accumulator_args: dict):
    """Score input that already lives on the GPU, in place: 2-D ``(N, C)`` or 1-D binary."""
    x = gpu.device_view(input)
    t = gpu.device_view(target) if gpu.is_device_array(target) else as_array("target", target)
    if kind == "multiclass" and np.dtype(t.dtype).kind == "f" and t.shape == x.shape:
        kind = "soft"
    if kind == "binary" and len(x.shape) == 2:
        kind = "multilabel"
    if len(x.shape) > 2 or (kind != "binary" and len(x.shape) != 2):
        raise InputValueError(
            f"input on the GPU must be (N, C) (or (N,) for binary), got shape {x.shape}; "
            "reshape it to rows first."
        )
    acc = Accumulator(kind, **accumulator_args, device="cuda", standard_error=False)
    if reduction == "none":
        return acc.row_losses(x, t)
    acc.update(x, t)
    score = acc.result()
    return score.loss if reduction == "mean" else score.total


def _slabs(x: np.ndarray, t: np.ndarray, soft: bool):
    """K-dim input ``(N, C, d1..dK)`` as ``(N*d, C)`` rows, a few samples at a time (bounded copy)."""
    num_classes = x.shape[1]
    per_sample = max(1, int(np.prod(x.shape[1:])))
    step = max(1, engine.CHUNK_ELEMENTS // per_sample)
    # an empty batch still yields one (empty) slab, so reduction="none" has a piece to reshape
    for lo in range(0, max(x.shape[0], 1), step):
        rows = np.moveaxis(x[lo : lo + step], 1, -1).reshape(-1, num_classes)
        target = t[lo : lo + step]
        target = np.moveaxis(target, 1, -1).reshape(-1, num_classes) if soft else target.reshape(-1)
        yield rows, target


def _reduce(acc: Accumulator, reduction: str, x, t, out_shape, soft=False, **update_args):
    """Feed ``x``/``t`` (2-D, or K-dim via :func:`_slabs`) and apply the reduction."""
    pieces = _slabs(x, t, soft) if x.ndim > 2 else [(x, t)]
    if reduction == "none":
        losses = [acc.row_losses(xs, ts, **update_args) for xs, ts in pieces]
        return (np.concatenate(losses) if len(losses) > 1 else losses[0]).reshape(out_shape)
    for xs, ts in pieces:
        acc.update(xs, ts, **update_args)
    score = acc.result()
    return score.loss if reduction == "mean" else score.total


def _multiclass(input, target, weight, ignore_index, reduction, label_smoothing, inputs, device):
    ignore_index = validate.index_argument("ignore_index", ignore_index)
    label_smoothing = validate.smoothing(label_smoothing)
    input, target, weight = unwrap(input), unwrap(target), unwrap(weight)
    if gpu.is_device_array(input):
        gpu.choose(device, input)
        return _on_gpu(
            reduction,
            "multiclass",
            input,
            target,
            dict(
                inputs=inputs,
                class_weight=None if weight is None else as_array("weight", weight),
                ignore_index=ignore_index,
                label_smoothing=label_smoothing,
            ),
        )
    x = validate.float_input("input", as_array("input", input))
    t = as_array("target", target)
    unbatched = x.ndim == 1
    if unbatched:
        x, t = x[None], t[None]
    if x.ndim < 2:
        raise InputValueError(f"`input` must have a class axis, got shape {x.shape}.")
    soft = t.dtype.kind == "f" and t.shape == x.shape
    if soft and ignore_index >= 0:
        raise InputValueError(
            "`ignore_index` is not supported with probability (soft) targets; leave it negative."
        )
    if not soft and t.shape != x.shape[:1] + x.shape[2:]:
        raise InputValueError(
            f"`target` must have shape {x.shape[:1] + x.shape[2:]} (class indices) or "
            f"{x.shape} (probabilities) for input of shape {x.shape}, got {t.shape}."
        )
    acc = Accumulator(
        "soft" if soft else "multiclass",
        inputs=inputs,
        class_weight=None if weight is None else as_array("weight", weight),
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        device=gpu.choose(device, x, t),
        standard_error=False,  # a torch function returns the loss alone
    )
    out_shape = () if unbatched else x.shape[:1] + x.shape[2:]
    return _reduce(acc, reduction, x, t, out_shape, soft=soft)


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
    *,
    device="auto",
    size_average=None,
    reduce=None,
):
    """Cross-entropy of logits, as ``torch.nn.functional.cross_entropy``.

    Class-index targets: ``l_i = -w[y_i] log_softmax(x_i)[y_i]``, mean over
    ``sum w[y_i]`` of non-ignored rows; with label smoothing ``eps``:
    ``l_i = (1-eps)(-w[y_i] lsm_i[y_i]) + (eps/C) sum_c (-w_c lsm_i[c])``. Probability targets
    (same shape as ``input``): ``l_i = -sum_c w_c q_ic lsm_i[c]``, ``q = t(1-eps) + eps/C``, mean
    over rows. Input ``(C,)``, ``(N, C)`` or ``(N, C, d1..dK)``; float16 and bfloat16 are
    computed in float32 (unlike torch on the CPU, a float16 sum cannot overflow).
    ``size_average``/``reduce``: torch's deprecated spelling of ``reduction`` (keyword-only here).

    Examples
    --------
    >>> round(cross_entropy(np.array([[1.0, 2.0, 0.1]]), np.array([1])), 4)
    0.417
    """
    reduction = _reduction(reduction, device, size_average, reduce)
    return _multiclass(input, target, weight, ignore_index, reduction, label_smoothing, "logits", device)


def nll_loss(
    input,
    target,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    *,
    device="auto",
    size_average=None,
    reduce=None,
):
    """Negative log-likelihood of log-probabilities, as ``torch.nn.functional.nll_loss``.

    ``l_i = -w[y_i] x_i[y_i]``; weighting, ``ignore_index`` and the mean as ``cross_entropy``.
    """
    reduction = _reduction(reduction, device, size_average, reduce)
    target = unwrap(target)
    t = target if gpu.is_device_array(target) else as_array("target", target)
    if np.dtype(t.dtype).kind == "f":
        raise validate.InputTypeError(
            f"`target` holds floats (dtype {t.dtype}); nll_loss takes class indices. "
            "Use cross_entropy for probability targets."
        )
    return _multiclass(input, t, weight, ignore_index, reduction, 0.0, "logprobs", device)


def _per_class(pos_weight: np.ndarray | None, shape: tuple) -> np.ndarray | None:
    """``pos_weight`` (already broadcastable to ``shape``) as one value per class (last axis),
    or None when it differs from row to row.

    torch broadcasts ``pos_weight`` against the input, so ``(C,)``, ``(1, C)``, and an
    ``(N, C)`` or ``(N, 1)`` whose rows are all equal, are one value per class (a vector of
    1 or C values): the kernels' case.
    """
    if pos_weight is None:
        return np.empty(0)
    a = pos_weight.reshape((1,) * (len(shape) - pos_weight.ndim) + pos_weight.shape)
    first = a[(slice(0, 1),) * (a.ndim - 1)]
    if first.size == a.size or (a == first).all():
        return first.reshape(-1)
    return None


def _binary(input, target, weight, reduction, pos_weight, inputs, probs_rules, device):
    input, target, weight, pos_weight = (unwrap(v) for v in (input, target, weight, pos_weight))
    if gpu.is_device_array(input):
        shape = tuple(input.shape)
        gpu.choose(device, input)
        if weight is not None:
            raise InputValueError("`weight` with input on the GPU is not supported; pass it on the CPU path.")
        pw = _per_class(validate.broadcastable("pos_weight", pos_weight, shape), shape)
        if pw is None:
            raise InputValueError(
                "a `pos_weight` that differs from row to row is scored on the CPU; pass the input "
                "on the host, or one `pos_weight` per class."
            )
        return _on_gpu(
            reduction, "binary", input, target, dict(inputs=inputs, pos_weight=pw, probs_rules=probs_rules)
        )
    x = validate.float_input("input", as_array("input", input))
    t = as_array("target", target)
    if t.shape != x.shape:
        raise InputValueError(f"`target` must have the input's shape {x.shape}, got {t.shape}.")
    w = validate.broadcastable("weight", weight, x.shape)
    per_element_pw = validate.broadcastable("pos_weight", pos_weight, x.shape)
    pw = _per_class(per_element_pw, x.shape)
    chosen = gpu.choose(device, x, t)
    if pw is None:
        return elementwise.binary_logits(x, t, per_element_pw, w, reduction)
    pw = validate.vector("pos_weight", pw)
    w = None if w is None else np.broadcast_to(w, x.shape)
    if pw.size > 1 and x.ndim >= 1:
        num_classes = x.shape[-1]
        x2, t2 = x.reshape(-1, num_classes), t.reshape(-1, num_classes)
        w2 = None if w is None else w.reshape(-1, num_classes)
        if reduction == "none":
            out = np.empty(x2.shape, dtype=engine.compute_dtype(x.dtype))
            for c in range(num_classes):  # torch returns per-element losses: one column at a time
                column = Accumulator(
                    "binary", inputs=inputs, pos_weight=pw[c : c + 1], probs_rules=probs_rules, device=chosen
                )  # row losses only: no block sums
                out[:, c] = column.row_losses(x2[:, c], t2[:, c], weight=None if w2 is None else w2[:, c])
            return out.reshape(x.shape)
        acc = Accumulator(
            "multilabel",
            inputs=inputs,
            pos_weight=pw,
            probs_rules=probs_rules,
            device=chosen,
            standard_error=False,
        )
        return _reduce(acc, reduction, x2, t2, x.shape, weight=w2)
    acc = Accumulator(
        "binary", inputs=inputs, pos_weight=pw, probs_rules=probs_rules, device=chosen, standard_error=False
    )
    flat_w = None if w is None else w.reshape(-1)
    return _reduce(acc, reduction, x.reshape(-1), t.reshape(-1), x.shape, weight=flat_w)


def binary_cross_entropy(
    input, target, weight=None, reduction="mean", *, device="auto", size_average=None, reduce=None
):
    """Binary cross-entropy of probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    ``l = -w (y max(log p, -100) + (1-y) max(log(1-p), -100))``, mean over all elements. Inputs
    or targets outside ``[0, 1]`` (or NaN) raise. ``weight`` broadcasts against the input.
    """
    reduction = _reduction(reduction, device, size_average, reduce)
    return _binary(input, target, weight, reduction, None, "probs", "torch", device)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    reduction="mean",
    pos_weight=None,
    *,
    device="auto",
    size_average=None,
    reduce=None,
):
    """Binary cross-entropy of logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    ``l = w ((1-y) x + (1 + (p-1) y) softplus(-x))``, computed without cancellation; mean over
    all elements. ``weight`` and ``pos_weight`` broadcast against the input, as in torch: a
    ``(C,)`` ``pos_weight`` is one per class (the last axis), an ``(N, C)`` one per element.
    """
    reduction = _reduction(reduction, device, size_average, reduce)
    return _binary(input, target, weight, reduction, pos_weight, "logits", "sklearn", device)
