"""Eight strict float64 sums run as one vector: the lanes of :func:`~.blocks.sum_range`.

A block's sum keeps eight running sums, ``s_j += v_{lo+8i+j}``, each in IEEE order. Written as
eight scalars, LLVM keeps them scalar: without reassociation it will not vectorise a reduction,
and its SLP vectoriser does not pack the eight chains either, so a block of 2,048 values took
2,048 scalar additions (0.14 ns a value; 0.27 ns from float32 values, each widened on its own).
The same eight additions, done as one ``<8 x double>`` addition per eight values, are the same
bits: every lane adds the same numbers in the same order, and no fast-math flag lets LLVM reorder
them. Numba has no vector type, so the loop is emitted here, with its running vector in a stack
slot that LLVM keeps in a register.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import strict_jit

#: Lanes of :func:`add_lanes`: the eight running sums of :func:`~.blocks.sum_range`.
LANES = 8
ZERO_LANES = (0.0,) * LANES

_FLOATS = (types.float32, types.float64)


def add_lanes(lanes, a, b, lo, hi):
    """``lanes[j] + sum_i a[lo+8i+j] * b[lo+8i+j]`` for ``j < 8``, each term widened to float64
    (exact), each product rounded, then added in index order (``b`` ``None``: ``a``'s values);
    ``hi - lo`` must be a multiple of 8 and ``[lo, hi)`` within the arrays (not checked).
    A Numba overload: callable from compiled code only."""
    raise NotImplementedError("add_lanes is only callable from jitted code")


def _is_contiguous_float(array) -> bool:
    return (
        isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C" and array.dtype in _FLOATS
    )


@overload(add_lanes, jit_options={"fastmath": False})
def _add_lanes(lanes, a, b, lo, hi):
    if not (isinstance(lanes, types.UniTuple) and lanes.count == LANES and lanes.dtype == types.float64):
        return None
    products = not isinstance(b, types.NoneType)
    if _is_contiguous_float(a) and (not products or _is_contiguous_float(b)):
        return lambda lanes, a, b, lo, hi: _vector_lanes(lanes, a, b, lo, hi)
    return _scalar_lanes


def _scalar_lanes(lanes, a, b, lo, hi):
    """The same sums, lane by lane, for arrays of other layouts (strided views)."""
    s0, s1, s2, s3, s4, s5, s6, s7 = lanes
    for i in range(lo, hi, LANES):
        s0 += _term(a, b, i)
        s1 += _term(a, b, i + 1)
        s2 += _term(a, b, i + 2)
        s3 += _term(a, b, i + 3)
        s4 += _term(a, b, i + 4)
        s5 += _term(a, b, i + 5)
        s6 += _term(a, b, i + 6)
        s7 += _term(a, b, i + 7)
    return s0, s1, s2, s3, s4, s5, s6, s7


@strict_jit(forceinline=True)
def ordered_sum(a, b, lo, hi):
    """``sum a_i * b_i`` (``b`` ``None``: ``sum a_i``) over ``[lo, hi)`` in float64, in the
    order every block sum uses: eight lanes ``s_j`` of the terms ``i = j mod 8``
    (:func:`add_lanes`), then ``((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7))``, plus the
    ``(hi - lo) mod 8`` last terms added in order. Each term is widened to float64 and each
    product rounded before it is added, in the lanes and in the rest alike."""
    full = lo + (hi - lo) - (hi - lo) % LANES
    s = add_lanes(ZERO_LANES, a, b, lo, full)
    rest = 0.0
    for i in range(full, hi):
        rest += _term(a, b, i)
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + rest


@strict_jit(forceinline=True)
def _term(a, b, i):
    """``a[i] * b[i]`` in float64 (``a[i]`` alone when ``b`` is ``None``)."""
    if b is None:
        return np.float64(a[i])
    return np.float64(a[i]) * np.float64(b[i])


def _vector_of(builder, array_type, array, index):
    """The eight values ``array[index : index + 8]``, as ``<8 x double>``."""
    element = ir.DoubleType() if array_type.dtype == types.float64 else ir.FloatType()
    pointer = builder.bitcast(builder.gep(array.data, [index]), ir.VectorType(element, LANES).as_pointer())
    vector = builder.load(pointer, align=array_type.dtype.bitwidth // 8)
    if array_type.dtype == types.float32:
        vector = builder.fpext(vector, ir.VectorType(ir.DoubleType(), LANES))  # exact
    return vector


@intrinsic
def _vector_lanes(typingctx, lanes, a, b, lo, hi):
    """:func:`add_lanes` of contiguous arrays, one vector addition (and multiplication) per eight
    values; no fast-math flags, so LLVM neither reorders the additions nor fuses a product."""
    products = not isinstance(b, types.NoneType)

    def codegen(context, builder, signature, args):
        lanes_value, a_value, b_value, lo_value, hi_value = args
        a_array = context.make_array(signature.args[1])(context, builder, a_value)
        b_array = context.make_array(signature.args[2])(context, builder, b_value) if products else None
        vector_type = ir.VectorType(ir.DoubleType(), LANES)
        running = ir.Constant(vector_type, ir.Undefined)
        for j in range(LANES):
            lane = ir.Constant(ir.IntType(32), j)
            running = builder.insert_element(running, builder.extract_value(lanes_value, j), lane)
        slot = cgutils.alloca_once(builder, vector_type)  # promoted to a register by LLVM
        builder.store(running, slot)
        step = ir.Constant(lo_value.type, LANES)
        with cgutils.for_range_slice(builder, lo_value, hi_value, step) as (i, _):
            term = _vector_of(builder, signature.args[1], a_array, i)
            if products:
                term = builder.fmul(term, _vector_of(builder, signature.args[2], b_array, i))
            builder.store(builder.fadd(builder.load(slot), term), slot)
        total = builder.load(slot)
        out = ir.Constant(lanes_value.type, ir.Undefined)
        for j in range(LANES):
            out = builder.insert_value(out, builder.extract_element(total, ir.Constant(ir.IntType(32), j)), j)
        return out

    return lanes(lanes, a, b, lo, hi), codegen
