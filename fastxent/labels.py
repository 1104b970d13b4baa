"""``log_loss`` as scikit-learn computes it, and its inputs as scikit-learn reads them: its dtype
rules, its checks and its labels (sorted, as ``LabelBinarizer`` sees them), with its error
messages word for word."""

from __future__ import annotations

import warnings

import numpy as np

from . import engine
from .errors import InputTypeError, InputValueError
from .inputs import as_array
from .state import Accumulator

_KEPT_FLOATS = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16))


def _declared_dtype(value) -> np.dtype | None:
    """The NumPy dtype ``value`` declares, as ``check_array`` looks for it (None if none).

    Lists, torch tensors and Arrow arrays declare none (a torch dtype is not a NumPy dtype), so
    scikit-learn reads them as float64; pandas frames declare the common dtype of their columns.
    """
    dtype = getattr(value, "dtype", None)
    if hasattr(dtype, "kind"):
        return np.dtype(dtype).newbyteorder("=")  # byte order is read, not a type of its own
    dtypes = getattr(value, "dtypes", None)
    if hasattr(dtypes, "__array__") and all(isinstance(d, np.dtype) for d in dtypes):
        return np.result_type(*dtypes)
    return None


def _finite(name: str, a: np.ndarray, low, high) -> None:
    """``check_array``'s finiteness check, given the array's min and max (NaN wins over inf)."""
    padded = f"{name} " if name else ""
    if np.isnan(low) or np.isnan(high):
        raise InputValueError(f"Input {padded}contains NaN.")
    if np.isinf(low) or np.isinf(high):
        raise InputValueError(f"Input {padded}contains infinity or a value too large for {a.dtype!r}.")


def probabilities(y_proba) -> np.ndarray:
    """``y_proba`` as ``sklearn.metrics.log_loss`` validates it.

    float64, float32 and float16 are kept (their ``eps`` is the clipping bound); anything else,
    including values that declare no NumPy dtype (lists, torch tensors, Arrow arrays), is read as
    float64. Then: at most 2-D, finite, at least one sample and one column, within [0, 1].
    """
    declared = _declared_dtype(y_proba)
    p = as_array("y_proba", y_proba)
    if p.ndim == 0:
        raise InputValueError(
            f"The 'y_proba' parameter of log_loss must be an array-like. Got {y_proba!r} instead."
        )
    if p.dtype.kind not in "biuf":
        raise InputTypeError(f"`y_proba` must hold probabilities, got dtype {p.dtype}.")
    if declared not in _KEPT_FLOATS or p.dtype != declared:
        p = p.astype(np.float64)
    if p.ndim >= 3:
        raise InputValueError(f"Found array with dim {p.ndim}, while dim <= 2 is required.")
    if p.shape[0] < 1:
        raise InputValueError(
            f"Found array with 0 sample(s) (shape={p.shape}) while a minimum of 1 is required."
        )
    if p.ndim == 2 and p.shape[1] < 1:
        raise InputValueError(
            f"Found array with 0 feature(s) (shape={p.shape}) while a minimum of 1 is required."
        )
    low, high = p.min(), p.max()  # two passes, no temporary; NaN propagates through both
    _finite("", p, low, high)
    if high > 1:
        raise InputValueError(f"y_prob contains values greater than 1: {high}")
    if low < 0:
        raise InputValueError(f"y_prob contains values lower than 0: {low}")
    return p


def consistent_length(*arrays) -> None:
    """``check_consistent_length``: the arrays (None skipped) have as many rows, in this order."""
    lengths = [a.shape[0] for a in arrays if a is not None]
    if len(set(lengths)) > 1:
        raise InputValueError(f"Found input variables with inconsistent numbers of samples: {lengths}")


def sample_weights(sample_weight) -> np.ndarray | None:
    """``sample_weight`` read as an array (``log_loss`` takes no scalar weight)."""
    if sample_weight is None:
        return None
    if np.ndim(sample_weight) == 0:
        raise InputValueError(
            "The 'sample_weight' parameter of log_loss must be an array-like or None. "
            f"Got {sample_weight!r} instead."
        )
    sw = as_array("sample_weight", sample_weight)
    if sw.dtype.kind not in "biuf":
        raise InputTypeError(f"`sample_weight` must be numeric, got dtype {sw.dtype}.")
    return sw


def check_sample_weights(sw: np.ndarray, n: int) -> np.ndarray:
    """``_check_sample_weight`` as ``log_loss`` calls it: finite, 1-D, ``(n,)``, not all zero.

    Negative weights are allowed, as in scikit-learn. Returns them as float64.
    """
    if sw.size:
        _finite("sample_weight", sw, sw.min(), sw.max())
    if sw.ndim != 1:
        raise InputValueError(
            f"Sample weights must be 1D array or scalar, got {sw.ndim}D array. Expected either a "
            f"scalar value or a 1D array of length {n}."
        )
    if not sw.any():
        raise InputValueError("Sample weights must contain at least one non-zero number.")
    return sw.astype(np.float64)


def read_targets(y_true) -> np.ndarray:
    """``y_true`` as an array: a column ``(n, 1)`` is read as ``n`` labels, as scikit-learn does."""
    y = np.asarray(as_array("y_true", y_true))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim > 2:
        raise InputValueError(
            f"Unknown label type: `y_true` has shape {y.shape}; pass 1-D labels or a 2-D "
            "label-indicator matrix."
        )
    return y


def indicator(y_true: np.ndarray, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """A label-indicator ``y_true`` ``(n, C)`` as ``LabelBinarizer`` reads it: ``(matrix, classes)``.

    scikit-learn takes any integer (or integral float, or bool) matrix with at most two distinct
    values, and uses the values as they are: ``-sum_c y_c log p_c``, so a row with several ones
    adds several logs and a row of zeros adds nothing. The classes are the columns.
    """
    if labels is not None:
        raise InputValueError(
            "The object was not fitted with multilabel input. (`labels` names classes for 1-D "
            "`y_true`; the columns of a label-indicator `y_true` are the classes.)"
        )
    if y_true.dtype.kind == "f" and np.isnan(y_true).any():
        raise InputValueError("Input y contains NaN.")
    values = np.unique(y_true) if y_true.dtype.kind in "biuf" else None
    integral = values is not None and (
        y_true.dtype.kind in "biu" or bool((values == values.astype(np.int64)).all())
    )
    if not integral or len(values) > 2:
        raise InputValueError("Multioutput target data is not supported with label binarization")
    return y_true.astype(np.int64), np.arange(y_true.shape[1])


def encode_labels(y_true: np.ndarray, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(index of each label in the sorted classes, sorted classes)``.

    Raises as ``sklearn.metrics.log_loss`` does for a single class or labels missing from
    ``labels``; warns when ``labels`` is not sorted (columns are read in sorted order).
    """
    if labels is not None:
        given = np.asarray(labels)
        classes = np.unique(given)
        if classes.shape != given.shape or not (classes == given).all():
            warnings.warn(
                f"Labels passed were {labels}. But this function assumes labels are ordered "
                f"lexicographically. Pass the ordered labels={classes.tolist()} and ensure "
                "that the columns of y_prob correspond to this ordering.",
                UserWarning,
                stacklevel=3,
            )
        unknown = ~np.isin(y_true, classes)
        if unknown.any():
            undeclared = set(y_true[unknown].tolist())
            raise InputValueError(
                f"y_true contains values {undeclared} not belonging to the passed labels {labels}."
            )
    else:
        classes = np.unique(y_true)
    if classes.shape[0] == 1:
        if labels is None:
            raise InputValueError(
                f"y_true contains only one label ({classes[0]}). Please provide the list of all "
                "expected class labels explicitly through the labels argument."
            )
        raise InputValueError(f"The labels array needs to contain at least two labels, got {classes}.")
    return np.searchsorted(classes, y_true).astype(np.int64), classes


def _unnormalised(p: np.ndarray) -> bool:
    """scikit-learn's "do not sum to one" test, in NumPy: a row sum off 1 by more than
    ``1e-8 + sqrt(eps)``. (Rows of one probability, read as ``[1 - p, p]``, always pass.)"""
    if p.ndim == 1 or p.shape[1] == 1:
        return False
    return not np.isclose(p.sum(axis=1), 1.0, rtol=np.sqrt(np.finfo(p.dtype).eps)).all()


def _indicator_log_loss(t: np.ndarray, p: np.ndarray, sw) -> Accumulator:
    """``-sum_c t_ic log(clip(p_ic))`` for a label-indicator ``t``, a slab of rows at a time.

    The soft-target kernel on log-probabilities computes exactly ``-sum_c t_c x_c``, so it is
    fed ``x = log(clip(p))`` (in the kernels' precision); a 1-D ``p`` is read as ``[1 - p, p]``.
    """
    acc = Accumulator("soft", inputs="logprobs", standard_error=False)
    eps = np.finfo(p.dtype).eps
    dtype = engine.compute_dtype(p.dtype)
    step = max(1, engine.CHUNK_ELEMENTS // t.shape[1])
    for lo in range(0, p.shape[0], step):
        rows = p[lo : lo + step]
        if rows.ndim == 1:
            rows = np.stack([1 - rows, rows], axis=1)
        logs = np.log(np.clip(rows, eps, 1 - eps).astype(dtype))
        acc.update(logs, t[lo : lo + step], None if sw is None else sw[lo : lo + step])
    return acc


def log_loss(y_true, y_proba, *, normalize=True, sample_weight=None, labels=None):
    """Log loss, as ``sklearn.metrics.log_loss`` (scikit-learn >= 1.5 rules).

    Probabilities are clipped to ``[eps, 1-eps]`` (``eps`` of their dtype: float64, float32 or
    float16 are kept, anything else is read as float64, as scikit-learn does), not renormalised
    (rows that do not sum to one give a warning); ``sum_i w_i l_i / sum_i w_i``. Labels are
    sorted; 1-D ``y_proba`` is the probability of the larger label. ``y_true`` may also be a
    label-indicator matrix ``(n, C)``: ``l_i = -sum_c y_ic log p_ic``. Errors are
    scikit-learn's, word for word.
    """
    sw = sample_weights(sample_weight)
    p = probabilities(y_proba)
    y = read_targets(y_true)
    consistent_length(p, y, sw)
    if sw is not None:
        sw = check_sample_weights(sw, p.shape[0])
    if y.ndim == 2:
        target, classes = indicator(y, labels)
    else:
        target, classes = encode_labels(y, labels)
    one_column = p.ndim == 1 or p.shape[1] == 1
    width = 2 if one_column else p.shape[1]
    if len(classes) != width:
        if labels is None:
            raise InputValueError(
                f"y_true and y_prob contain different number of classes: {len(classes)} vs "
                f"{width}. Please provide the true labels explicitly through the labels "
                f"argument. Classes found in y_true: {classes}"
            )
        raise InputValueError(
            "The number of classes in labels is different from that in y_prob. Classes found "
            f"in labels: {classes}"
        )
    unnormalised = _unnormalised(p) if p.dtype == np.float16 or y.ndim == 2 else None
    if p.dtype == np.float16:
        # float16 is computed in float32, whose eps the kernels would clip at: clip at float16's
        # eps first, as scikit-learn does (clip(1 - p) == 1 - clip(p) in float16)
        eps = np.finfo(np.float16).eps
        p = np.clip(p, eps, 1 - eps)
    if y.ndim == 2:
        acc = _indicator_log_loss(target, p, sw)
    elif one_column:
        acc = Accumulator("binary", inputs="probs", standard_error=False)
        acc.update(p.reshape(-1), (target == 1).astype(p.dtype), sw)
    else:
        acc = Accumulator("multiclass", inputs="probs", standard_error=False)
        acc.update(p, target, sw)
    if unnormalised or (unnormalised is None and acc.unnormalised_rows):
        warnings.warn(
            "The y_prob values do not sum to one. Make sure to pass probabilities.",
            UserWarning,
            stacklevel=2,
        )
    score = acc.result()
    if normalize and score.weight == 0:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")  # numpy.average's words
    return score.loss if normalize else score.total
