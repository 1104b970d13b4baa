"""Turning what users pass (NumPy, pyarrow, torch tensors, ``__array__`` objects) into NumPy arrays.

No copy where none is needed: Arrow buffers are viewed in place (read-only is fine, the
kernels only read), list columns through ``flatten()`` (which honours slice offsets; ``.values``
does not). Copies are made only where the kernels cannot read the data as it is: non-native
byte order, and torch's ``bfloat16`` (which NumPy has no type for).
"""

from __future__ import annotations

import sys

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


def native(a: np.ndarray) -> np.ndarray:
    """``a`` in the machine's byte order: big-endian data (``'>f8'``, from some files and
    network formats) is converted once here, because the compiled kernels take native types only."""
    if a.dtype.isnative:
        return a
    return a.astype(a.dtype.newbyteorder("="))


def is_torch_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch (none can exist until it is)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def unwrap(value):
    """A torch tensor as fastxent reads it; any other value unchanged.

    Tensors that require grad are read detached (scoring never back-propagates), and
    ``bfloat16`` becomes float32 (exactly: it is float32 with a shorter mantissa), the precision
    float16 is computed in. Tensors stay where they are: on the GPU, they are read in place.
    """
    if not is_torch_tensor(value):
        return value
    value = value.detach()
    if value.dtype == sys.modules["torch"].bfloat16:
        value = value.float()
    return value


def as_array(name: str, value) -> np.ndarray:
    """``value`` as a NumPy array in native byte order, viewing Arrow, torch CPU and
    ``__array__`` buffers in place."""
    return native(_as_array(name, unwrap(value)))


def _as_array(name: str, value) -> np.ndarray:
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
