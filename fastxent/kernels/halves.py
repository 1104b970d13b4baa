"""float16 -> float32, vectorised and in parallel (Numba's CPU target has no float16 type).

NumPy's ``astype`` converts half floats one at a time on one core (about 0.5 G values/s here).
Kernels read halves as ``uint16`` and convert them with :func:`float_of_half_bits`: the CPU's
own conversion (``vcvtph2ps``, 16 values an instruction) where the target has F16C, else
integer operations and selects, which LLVM vectorises too. Every half is exactly a float32, so
the conversion is exact: signed zeros, subnormals, infinities and NaN included (F16C quiets a
signalling NaN, as every float conversion of the CPU does; NumPy keeps its bits).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from .jit import ELEMENTWISE_OVERLOAD_OPTIONS, elementwise_jit, serial_and_parallel, target_has, wide_vectors
from .row_vectors import FLOATS, LANES, masked_vector_at, over_vectors, store_vector_at, vector_at
from .vmath import float_of_bits, splat

_ONE = np.float32(1.0)
_TWO_M24 = np.float32(2.0**-24)  # the value of the lowest mantissa bit of a subnormal half


def target_has_f16c() -> bool:
    """Whether the CPU Numba compiles for converts halves itself (F16C: every AVX2 CPU has it).
    Without it, LLVM would lower the conversion to a runtime library call that Numba's JIT
    cannot link."""
    return target_has("f16c")


@intrinsic
def _converted_by_cpu(typingctx, bits):
    """``fpext`` of the half whose bits are ``bits`` (``vcvtph2ps`` when vectorised)."""
    if bits != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


@elementwise_jit
def _float_of_half_by_cpu(h):
    """The float32 equal to the float16 whose bits are ``h`` (``uint16``), converted by F16C."""
    return _converted_by_cpu(h)


@elementwise_jit
def _float_of_half_by_bits(h):
    """The float32 equal to the float16 whose bits are ``h``, rebuilt with integer operations.

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


#: ``float_of_half_bits(h)``: the float32 equal to the float16 whose bits are ``h`` (``uint16``),
#: by the CPU where it can (a cache compiled for one target is never loaded on another: the
#: target's features are part of Numba's cache key).
float_of_half_bits = _float_of_half_by_cpu if target_has_f16c() else _float_of_half_by_bits


def _halves_to_float32(bits, out):
    """``out[i] = float_of_half_bits(bits[i])`` over flat arrays."""
    for i in prange(bits.shape[0]):
        wide_vectors()  # in the loop: with prange, the loop is a function of its own
        out[i] = float_of_half_bits(bits[i])


HALVES_TO_FLOAT32 = serial_and_parallel(_halves_to_float32)
_halves_to_float32_serial = HALVES_TO_FLOAT32[0]  # a plain global, so jitted callers inline it


def widened(values: np.ndarray) -> np.ndarray:
    """A float32 copy of a float16 array (any layout), converted by the kernels above."""
    bits = np.ascontiguousarray(values).view(np.uint16).reshape(-1)
    out = np.empty(bits.shape[0], dtype=np.float32)
    HALVES_TO_FLOAT32[1 if bits.shape[0] >= 1 << 16 else 0](bits, out)
    return out.reshape(values.shape)


#: Elements of float16 input converted at a time inside a kernel (:func:`rows_per_piece`):
#: 256 KiB of float32, which stays in L2 between the conversion and the row passes.
PIECE_ELEMENTS = 1 << 16


def piece_buffer(x, rows):
    """Room for ``rows`` rows of the ``(N, C)`` array ``x`` converted to float32 when it holds
    float16 bits (``uint16``); an empty array of ``x``'s dtype for float input, which is read
    in place (a Numba overload)."""


@overload(piece_buffer, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _piece_buffer(x, rows):
    if x.dtype == types.uint16:
        return lambda x, rows: np.empty((rows, x.shape[1]), dtype=np.float32)
    dtype = as_dtype(x.dtype)
    return lambda x, rows: np.empty((0, x.shape[1]), dtype=dtype)


def rows_per_piece(x, n):
    """Rows of the ``(N, C)`` array ``x`` a kernel converts at a time when it holds float16 bits
    (:data:`PIECE_ELEMENTS` worth, at least one row), else ``n``: float input is read in place
    (a Numba overload)."""


@overload(rows_per_piece, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _rows_per_piece(x, n):
    if x.dtype == types.uint16:
        return lambda x, n: max(1, PIECE_ELEMENTS // max(1, x.shape[1]))
    return lambda x, n: max(1, n)


def rows_computed(x, lo, hi, buffer):
    """Rows ``[lo, hi)`` of the ``(N, C)`` array ``x`` as the kernels compute them: float16
    bits (``uint16``) converted into the first rows of ``buffer`` (from :func:`piece_buffer`),
    float input as a view (a Numba overload)."""


@overload(rows_computed, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _rows_computed(x, lo, hi, buffer):
    if x.dtype == types.uint16:
        return _halves_into_buffer
    return lambda x, lo, hi, buffer: x[lo:hi]


def row_buffer(rows):
    """Room for one row of the ``(N, C)`` array ``rows`` converted to float32 when it holds
    float16 bits (``uint16``); an empty array of the rows' dtype for float input, whose rows are
    read in place (a Numba overload)."""


@overload(row_buffer, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _row_buffer(rows):
    if rows.dtype == types.uint16:
        return lambda rows: np.empty(-(-rows.shape[1] // LANES) * LANES, dtype=np.float32)
    dtype = as_dtype(rows.dtype)
    return lambda rows: np.empty(0, dtype=dtype)


def row_values(rows, r, buffer):
    """Row ``r`` of the ``(N, C)`` array ``rows`` as the kernels compute it: float16 bits
    (``uint16``) converted into ``buffer`` (from :func:`row_buffer`), which is returned, float
    input as a view (a Numba overload).

    A row at a time, into a buffer that stays in L1, right before the row's passes (16 halves
    an instruction, the last vector stored whole into the buffer's padding: a masked store is not
    forwarded to the passes' loads, which then wait for it). Measured at C = 100, one thread:
    4% over float32 rows in cache and 11% in memory, where converting pieces of 64Ki values
    first cost 14% and 32%.
    """


@overload(row_values, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _row_values(rows, r, buffer):
    if rows.dtype != types.uint16:
        return lambda rows, r, buffer: rows[r]
    if rows.layout == "C" and target_has_f16c():
        return lambda rows, r, buffer: _halves_by_vectors(rows[r], buffer)[: rows.shape[1]]
    return _halves_of_row


def value_at(rows, r, c):
    """``rows[r, c]`` as the kernels compute it: float16 bits (``uint16``) converted, float input
    as it is (a Numba overload)."""


@overload(value_at, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _value_at(rows, r, c):
    if rows.dtype == types.uint16:
        return lambda rows, r, c: float_of_half_bits(rows[r, c])
    return lambda rows, r, c: rows[r, c]


def _halves_of_row(rows, r, buffer):
    """:func:`row_values` of float16 bits in any layout, each converted by
    :func:`float_of_half_bits`."""
    wide_vectors()
    halves = rows[r]
    values = buffer[: halves.shape[0]]
    for c in range(halves.shape[0]):
        values[c] = float_of_half_bits(halves[c])
    return values


@intrinsic
def _halves_by_vectors(typingctx, halves, out):
    """:func:`row_values` of a contiguous row of float16 bits into ``out`` (as long), 16 at a
    time (``vcvtph2ps``), the last ``C mod 16`` by a masked load; ``out`` has room for whole
    vectors (:func:`row_buffer`); returns it."""
    if not (isinstance(halves, types.Array) and halves.dtype == types.uint16 and halves.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        source = context.make_array(signature.args[0])(context, builder, args[0])
        target = context.make_array(signature.args[1])(context, builder, args[1])
        bits = ir.VectorType(ir.IntType(16), LANES)

        def convert(i, rest):
            if rest is None:
                loaded = vector_at(builder, source.data, i, bits)
            else:
                loaded = masked_vector_at(builder, source.data, i, rest, splat(0, bits))
            floats = builder.fpext(builder.bitcast(loaded, ir.VectorType(ir.HalfType(), LANES)), FLOATS)
            # whole vectors, also the last (its spare lanes 0): a masked store would not be
            # forwarded to the loads of the row's passes, which would wait for it to retire
            store_vector_at(builder, floats, target.data, i)

        over_vectors(builder, builder.extract_value(source.shape, 0), convert)
        return impl_ret_borrowed(context, builder, signature.return_type, args[1])

    return out(halves, out), codegen


def values_computed(x):
    """The values of the flat array ``x`` as the kernels compute them: float16 bits (``uint16``)
    as a float32 copy (a block's worth of binary logits, in L1), float input itself (a Numba
    overload)."""


@overload(values_computed, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _values_computed(x):
    if x.dtype == types.uint16:
        return _halves_copied
    return lambda x: x


def _halves_copied(x):
    """:func:`values_computed` of float16 bits: converted by the serial twin of
    :data:`HALVES_TO_FLOAT32`."""
    out = np.empty(x.shape[0], dtype=np.float32)
    _halves_to_float32_serial(x, out)
    return out


def _halves_into_buffer(x, lo, hi, buffer):
    """:func:`rows_computed` of float16 bits: each converted by :func:`float_of_half_bits`."""
    wide_vectors()
    out = buffer[: hi - lo]
    halves = x[lo:hi]
    for r in range(hi - lo):
        for c in range(x.shape[1]):
            out[r, c] = float_of_half_bits(halves[r, c])
    return out
