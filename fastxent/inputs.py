"""Turning what users pass (NumPy, pyarrow, ``__array__`` objects) into NumPy arrays.

No copy where none is needed: Arrow buffers are viewed in place (read-only is fine, the
kernels only read), list columns through ``flatten()`` (which honours slice offsets; ``.values``
does not).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import gpu
from .errors import InputTypeError, InputValueError


def _arrow_array(name: str, arr: pa.Array) -> np.ndarray:
    if arr.null_count:
        first = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0])
        raise InputValueError(
            f"`{name}` has {arr.null_count} nulls (first at row {first}); drop or fill them "
            "first (`fx.score` skips and counts null rows)."
        )
    typ = arr.type
    if getattr(typ, "extension_name", None) == "arrow.fixed_shape_tensor":
        return arr.to_numpy_ndarray()
    if pa.types.is_fixed_size_list(typ):
        values = arr.flatten()
        return _arrow_array(name, values).reshape(len(arr), typ.list_size)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        offsets = np.asarray(arr.offsets)
        lengths = np.diff(offsets)
        if len(lengths) and (lengths != lengths[0]).any():
            row = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InputValueError(
                f"`{name}` is a ragged list column: row 0 has {lengths[0]} values, row {row} "
                f"has {lengths[row]}; every row needs one value per class."
            )
        width = int(lengths[0]) if len(lengths) else 0
        return _arrow_array(name, arr.flatten()).reshape(len(arr), width)
    if pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        return arr.to_numpy(zero_copy_only=False)
    raise InputTypeError(f"`{name}` has Arrow type {typ}, which is not numeric.")


def as_array(name: str, value) -> np.ndarray:
    """``value`` as a NumPy array, viewing Arrow and ``__array__`` buffers in place."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, pa.ChunkedArray):
        if value.num_chunks == 1:
            return _arrow_array(name, value.chunk(0))
        parts = [_arrow_array(name, c) for c in value.chunks]
        return np.concatenate(parts) if parts else np.empty(0)
    if isinstance(value, pa.Array):
        return _arrow_array(name, value)
    if gpu.is_device_array(value) or getattr(value, "is_cuda", False):
        raise InputTypeError(
            f"`{name}` lives on a GPU but is read on the host here; pass the other inputs on the "
            "GPU too (device='cuda'), or copy it to the host (torch: `.cpu()`, CuPy: `.get()`)."
        )
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise InputTypeError(f"`{name}` cannot be read as an array: {err}") from None
