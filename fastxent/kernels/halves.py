"""float16 -> float32, vectorised and in parallel (Numba's CPU target has no float16 type).

NumPy's ``astype`` converts half floats one at a time on one core (about 0.5 G values/s here);
these loops read the halves as ``uint16`` and rebuild each float32 from its bits with integer
operations and selects, which LLVM vectorises. Every half is exactly a float32, so the
conversion is exact: signed zeros, subnormals, infinities and NaN payloads included.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .jit import elementwise_jit, serial_and_parallel, wide_vectors
from .vmath import float_of_bits

_ONE = np.float32(1.0)
_TWO_M24 = np.float32(2.0**-24)  # the value of the lowest mantissa bit of a subnormal half


@elementwise_jit
def float_of_half_bits(h):
    """The float32 equal to the float16 whose bits are ``h``.

    Normal halves: exponent re-biased from 15 to 127 (``+112``), mantissa shifted up 13 bits;
    exponent 31 (infinity, NaN): float32 exponent 255, payload kept; exponent 0 (zero,
    subnormal): ``mantissa * 2**-24``, exact in float32.
    """
    h = np.int32(h)
    sign = (h & 0x8000) << 16
    exponent = (h >> 10) & 0x1F
    mantissa = h & 0x3FF
    exponent_bits = (0xFF << 23) if exponent == 31 else ((exponent + 112) << 23)
    value = float_of_bits(sign | exponent_bits | (mantissa << 13), _ONE)
    small = np.float32(mantissa) * _TWO_M24
    small = -small if sign != 0 else small
    return small if exponent == 0 else value


def _halves_to_float32(bits, out):
    """``out[i] = float_of_half_bits(bits[i])`` over flat arrays."""
    for i in prange(bits.shape[0]):
        wide_vectors()  # in the loop: with prange, the loop is a function of its own
        out[i] = float_of_half_bits(bits[i])


HALVES_TO_FLOAT32 = serial_and_parallel(_halves_to_float32)


def widened(values: np.ndarray) -> np.ndarray:
    """A float32 copy of a float16 array (any layout), converted by the kernels above."""
    bits = np.ascontiguousarray(values).view(np.uint16).reshape(-1)
    out = np.empty(bits.shape[0], dtype=np.float32)
    HALVES_TO_FLOAT32[1 if bits.shape[0] >= 1 << 16 else 0](bits, out)
    return out.reshape(values.shape)
