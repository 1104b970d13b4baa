"""Validation at the boundary: shapes, dtypes, ranges. Kernels never raise; this module does.

Messages name the argument, what was expected, what was found, where, and the fix.
"""

from __future__ import annotations

import operator

import numpy as np

from .engine import ClassStatistics
from .errors import InputTypeError, InputValueError
from .inputs import as_array, native
from .kernels import checks, codes

#: Above this many values the range scan runs in parallel.
_PARALLEL_SCAN = 1 << 20


def choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise InputValueError(
            f"`{name}` must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}."
        )


def smoothing(value) -> float:
    """``label_smoothing`` as a float in [0, 1].

    Real numbers are taken as torch takes them (bools, NumPy scalars, 0-d tensors included);
    a string is refused rather than parsed, as torch refuses it.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise InputTypeError(f"`label_smoothing` must be a float in [0, 1], got {value!r}.")
    try:
        eps = float(value)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"`label_smoothing` must be a float in [0, 1], got {value!r} ({type(value).__name__})."
        ) from None
    if not 0.0 <= eps <= 1.0:
        raise InputValueError(f"`label_smoothing` must be in [0, 1], got {value!r}.")
    return eps


def index_argument(name: str, value) -> int:
    """An integer argument such as ``ignore_index``, as torch takes it: Python and NumPy integers
    and integer 0-d tensors; not bools, floats (``1.5`` is no class id) or strings; within int64.
    """
    if isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"`{name}` must be an integer, got the bool {value!r}.")
    try:
        index = operator.index(value)
    except TypeError:
        raise InputTypeError(
            f"`{name}` must be an integer, got {value!r} ({type(value).__name__})."
        ) from None
    if not -(2**63) <= index < 2**63:
        raise InputValueError(f"`{name}` must fit in int64, got {index}.")
    return index


def vector(name: str, value) -> np.ndarray:
    """A 1-D float64 vector argument (class weights, pos_weight), or an empty array."""
    if value is None:
        return np.empty(0)
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise InputTypeError(f"`{name}` must be numeric, got dtype {a.dtype}.")
    if a.ndim != 1:
        raise InputValueError(f"`{name}` must be 1-D (one value per class), got shape {a.shape}.")
    return np.ascontiguousarray(a, dtype=np.float64)


def broadcastable(name: str, value, shape: tuple) -> np.ndarray | None:
    """A torch argument that broadcasts against the input (``weight``, ``pos_weight``), as an
    array (None stays None). Like torch, it may not enlarge the input's shape."""
    if value is None:
        return None
    a = as_array(name, value)
    if a.dtype.kind not in "biuf":
        raise InputTypeError(f"`{name}` must be numeric, got dtype {a.dtype}.")
    try:
        fits = np.broadcast_shapes(a.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise InputValueError(
            f"`{name}` of shape {a.shape} does not broadcast to the input's shape {tuple(shape)}; "
            "torch requires that too."
        )
    return a


def float_input(name: str, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind != "f":
        hint = " Cast it with `.astype(np.float32)`." if a.dtype.kind in "biu" else ""
        raise InputTypeError(f"`{name}` must be float16, float32 or float64, got dtype {a.dtype}.{hint}")
    if a.dtype.itemsize > 8:
        raise InputTypeError(f"`{name}` must be at most float64, got {a.dtype}.")
    return a


def _at_row(row: int) -> str:
    return f"at row {row}"


def bad_target_error(bad: int, where: str, input_name: str, num_classes: int) -> InputValueError:
    """The error for a class index that is neither a class nor ``ignore_index``."""
    return InputValueError(
        f"`target` has class {bad} {where}, but `{input_name}` has {num_classes} classes "
        f"(0–{num_classes - 1}); pass `ignore_index={bad}` if these rows are padding."
    )


#: How to fix probabilities that are not: binary input has a logits function, multiclass input
#: can be passed as logits or log-probabilities.
BINARY_FIX = "Pass logits to the `_with_logits` function or `logits=` instead, or fix the values."
MULTICLASS_FIX = "Pass logits (`logits=`) or log-probabilities (`logprobs=`) instead, or fix the values."


def probability_error(name: str, value, where: str, fix: str = BINARY_FIX) -> InputValueError:
    """The error for a probability outside [0, 1] (or NaN)."""
    return InputValueError(f"`{name}` must hold probabilities in [0, 1], but has {value} {where}. {fix}")


def _index_targets(target: np.ndarray, x: np.ndarray, ignore_index: int, where, input_name: str) -> None:
    n, num_classes = x.shape
    if target.dtype.kind == "f":
        raise InputTypeError(
            f"`target` holds floats (dtype {target.dtype}) but class indices are expected. "
            "Cast it to integers, or pass probabilities of shape (N, C) as soft targets."
        )
    if target.dtype.kind not in "biu":
        raise InputTypeError(f"`target` must hold integer class indices, got dtype {target.dtype}.")
    if target.ndim != 1:
        raise InputValueError(
            f"`target` must be 1-D with one class index per row for input of shape {x.shape}, "
            f"got shape {target.shape}."
        )
    if target.shape[0] != n:
        raise InputValueError(f"`target` has {target.shape[0]} rows but `input` has {n}; they must match.")
    if n == 0:
        return
    t = np.ascontiguousarray(target if target.dtype.kind != "b" else target.astype(np.int64))
    if t.dtype.kind == "u" and t.dtype.itemsize == 8:
        t = t.astype(np.float64)  # uint64 compares safely with negative ignore_index as float
    if checks.COUNT_BAD_TARGETS[1 if n >= _PARALLEL_SCAN else 0](t, num_classes, ignore_index):
        row = int(checks.first_bad_target(t, num_classes, ignore_index))
        raise bad_target_error(int(target[row]), where(row), input_name, num_classes)


def _unit_interval(name: str, a: np.ndarray, where=_at_row, fix: str = BINARY_FIX) -> None:
    flat = a.reshape(-1)
    if flat.dtype == np.float16:
        flat = flat.astype(np.float32)
    if flat.dtype.kind in "biu":
        flat = flat.astype(np.float64)
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    scan = checks.COUNT_OUTSIDE_UNIT[1 if flat.size >= _PARALLEL_SCAN else 0]
    if flat.size and scan(flat):
        i = int(checks.first_outside_unit(flat))
        index = tuple(int(w) for w in np.unravel_index(i, a.shape))
        column = f", class {index[1]}" if len(index) > 1 else ""
        raise probability_error(name, flat[i], where(index[0]) + column, fix)


def rows_vector(name: str, value, n: int) -> np.ndarray | None:
    if value is None:
        return None
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise InputTypeError(f"`{name}` must be numeric, got dtype {a.dtype}.")
    if a.shape != (n,):
        raise InputValueError(f"`{name}` must have shape ({n},) (one value per row), got {a.shape}.")
    return native(a)


def element_weight(weight, shape):
    """torch's broadcastable ``weight`` → ``(array, mode)`` for the binary kernels."""
    if weight is None:
        return None, codes.NO_WEIGHT
    w = np.asarray(weight, dtype=np.float64)
    try:
        np.broadcast_shapes(w.shape, shape)
    except ValueError:
        raise InputValueError(
            f"`weight` of shape {w.shape} does not broadcast to the input's shape {shape}."
        ) from None
    num_classes = shape[1] if len(shape) == 2 else 1
    if w.size == 1:
        return np.full(num_classes, float(w.reshape(-1)[0])), codes.PER_CLASS
    if len(shape) == 2 and w.shape in ((num_classes,), (1, num_classes)):
        return np.ascontiguousarray(w.reshape(-1)), codes.PER_CLASS
    return np.broadcast_to(w, shape), codes.PER_ELEMENT


def batch(spec, kind, input, target, sample_weight, weight, where=_at_row, input_name="input"):
    """Validate one batch; return ``(x, target, sample_weight, weight, weight_mode)``.

    ``where(row)`` says where a batch row is in the caller's terms (``"at row 7 of 'a.parquet'"``)
    and ``input_name`` what the input is called there, for the error messages.
    """
    t = native(np.asarray(target))
    if isinstance(input, ClassStatistics):  # values checked as their classes were read (run.wide)
        _index_targets(t, input, spec.ignore_index, where, input_name)
        class_vectors(spec, input.shape)
        return input, t, rows_vector("sample_weight", sample_weight, input.shape[0]), None, codes.NO_WEIGHT
    x = float_input("input", native(np.asarray(input)))
    if spec.family == "multiclass":
        if x.ndim != 2:
            raise InputValueError(f"`input` must be 2-D (rows, classes) here, got shape {x.shape}.")
        _index_targets(t, x, spec.ignore_index, where, input_name)
        if spec.inputs == "probs":
            _unit_interval(input_name, x, where, MULTICLASS_FIX)  # as log_loss: probabilities, or an error
    else:
        expected = "2-D (rows, classes)" if kind in ("soft", "multilabel") else "1-D (one value per row)"
        if (x.ndim != 2 and kind in ("soft", "multilabel")) or (x.ndim != 1 and kind == "binary"):
            raise InputValueError(f"`input` must be {expected} for kind={kind!r}, got {x.shape}.")
        if t.shape != x.shape:
            raise InputValueError(f"`target` must have the input's shape {x.shape}, got {t.shape}.")
        if t.dtype.kind not in "biuf":
            raise InputTypeError(f"`target` must be numeric, got dtype {t.dtype}.")
        if spec.family == "binary" and spec.inputs == "probs":
            _unit_interval(input_name, x, where)
            _unit_interval("target", t, where)
    class_vectors(spec, x.shape)
    sw = rows_vector("sample_weight", sample_weight, x.shape[0])
    ew, mode = element_weight(weight, x.shape)
    return x, t, sw, ew, mode


def class_vectors(spec, shape) -> None:
    """Check that ``weight`` and ``pos_weight`` have one value per class."""
    num_classes = shape[1] if len(shape) == 2 else 1
    if spec.class_weight.size and spec.class_weight.size != num_classes:
        raise InputValueError(
            f"`weight` has {spec.class_weight.size} values but `input` has {num_classes} "
            "classes; pass one weight per class."
        )
    if spec.pos_weight.size not in (0, 1, num_classes):
        raise InputValueError(
            f"`pos_weight` has {spec.pos_weight.size} values but `input` has {num_classes} "
            "classes; pass one per class (or one for all)."
        )
