"""Validating a batch whose input already lives on the GPU, without copying it to the host.

Shapes and dtypes come from ``__cuda_array_interface__``; the value checks (class indices in
range, probabilities in [0, 1]) run as small CUDA kernels that report the first bad position,
and only that one value is copied back for the message. Same messages as :mod:`.validate`.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import validate
from .errors import InputTypeError, InputValueError
from .gpu import device_view, is_device_array
from .kernels import cuda as kernels


def _view(value):
    return device_view(value) if is_device_array(value) else np.asarray(value)


def _first(kernel, values, *args) -> int:
    """Run a first-bad-position kernel over ``values``; ``-1`` when every value is fine."""
    n = values.shape[0]
    first = cuda.to_device(np.array([n], dtype=np.int64))
    blocks = max(1, -(-n // kernels.TPB))
    kernel[blocks, kernels.TPB](values, *args, first)
    found = int(first.copy_to_host()[0])
    return -1 if found == n else found


def _device_values(values):
    return values if is_device_array(values) else cuda.to_device(np.ascontiguousarray(values))


def _unit_interval(name: str, values) -> None:
    """Raise for the first value outside [0, 1] (or NaN), named by its flat position."""
    flat = _device_values(values).reshape(-1) if len(values.shape) > 1 else _device_values(values)
    at = _first(kernels.first_outside_unit, flat)
    if at >= 0:
        value = flat[at : at + 1].copy_to_host()[0]
        raise validate.probability_error(name, value, f"at flat position {at}")


def batch(spec, kind, input, target, sample_weight, weight, input_name="input"):
    """Validate one GPU batch; return ``(x, target, sample_weight, weight, weight_mode)``."""
    x = _view(input)
    t = _view(target)
    if np.dtype(x.dtype).kind != "f" or np.dtype(x.dtype).itemsize > 8:
        raise InputTypeError(f"`{input_name}` must be float16, float32 or float64, got dtype {x.dtype}.")
    if spec.family == "multiclass":
        if len(x.shape) != 2:
            raise InputValueError(f"`{input_name}` must be 2-D (rows, classes) here, got shape {x.shape}.")
        if np.dtype(t.dtype).kind not in "iu":
            raise InputTypeError(f"`target` must hold integer class indices, got dtype {t.dtype}.")
        if t.shape != x.shape[:1]:
            raise InputValueError(
                f"`target` must have shape {x.shape[:1]} (one class index per row), got {t.shape}."
            )
        device_t = _device_values(t)
        row = _first(kernels.first_bad_target, device_t, x.shape[1], spec.ignore_index)
        if row >= 0:
            bad = int(device_t[row : row + 1].copy_to_host()[0])
            raise validate.bad_target_error(bad, f"at row {row}", input_name, x.shape[1])
        if spec.inputs == "probs":  # log_loss's range check, as validate.batch does on the host
            _unit_interval(input_name, x)
    else:
        if t.shape != x.shape:
            raise InputValueError(f"`target` must have the input's shape {x.shape}, got {t.shape}.")
        if spec.family == "binary" and spec.inputs == "probs":
            for name, values in ((input_name, x), ("target", t)):
                _unit_interval(name, values)
    validate.class_vectors(spec, x.shape)
    sw = sample_weight
    if sample_weight is not None and not is_device_array(sample_weight):
        sw = validate.rows_vector("sample_weight", sample_weight, x.shape[0])
    ew, mode = validate.element_weight(weight, x.shape)
    return x, t, sw, ew, mode
