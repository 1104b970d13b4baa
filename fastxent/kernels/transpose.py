"""Rows of at most 16 float32 classes transposed 16 rows at a time, in vector registers: the
slices the class-by-class kernel reads (:func:`~.multiclass.sliced_statistics`).

Copied value by value, a slice of ``C`` classes cost a load and a store each (``C = 10``: 2.9 of
a row's 11.9 ns, in cache, one thread, AMD Zen 4). Here each of 16 rows is read in one masked
vector load (its ``C`` values, the other lanes zero), the 16 x 16 block is transposed by four
rounds of shuffles, each swapping the off-diagonal blocks of 8, 4, 2 and 1 lanes between pairs
of vectors, and each of the first ``C`` vectors, a class of the 16 rows, is stored whole. The
values are moved, not computed: the slice holds the same bits. On AVX2 the backend splits each
vector into two ``ymm`` halves, the same shuffles.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import VECTOR_OVERLOAD_OPTIONS, strict_jit
from .row_vectors import FLOATS, LANES, is_float32_matrix, masked_vector_at, store_vector_at

_INT32 = ir.IntType(32)


def transpose_rows(rows, columns):
    """``columns[c, r] = rows[r, c]`` for the ``n`` rows of ``rows`` ``(n, C)`` and every class
    ``c``, into the first ``n`` values of each row of ``columns`` ``(C, m)``, ``m >= n`` (a Numba
    overload: callable from compiled code only)."""
    raise NotImplementedError("transpose_rows is only callable from jitted code")


@overload(transpose_rows, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _transpose_rows(rows, columns):
    if is_float32_matrix(rows) and is_float32_matrix(columns):
        return _transpose_by_vectors
    return _transpose_by_loop


@strict_jit(forceinline=True)
def _by_value(rows, columns, first):
    """:func:`transpose_rows` of the rows from ``first`` on, value by value, class by class (a
    class's row is written in order)."""
    for c in range(rows.shape[1]):
        column = columns[c]
        for r in range(first, rows.shape[0]):
            column[r] = rows[r, c]


def _transpose_by_loop(rows, columns):
    """:func:`transpose_rows` value by value."""
    _by_value(rows, columns, 0)


def _transpose_by_vectors(rows, columns):
    """:func:`transpose_rows` of float32 rows of at most 16 classes: whole groups of 16 rows by
    :func:`_blocks_of_16`, the last ``n mod 16`` rows value by value."""
    n, num_classes = rows.shape
    whole = n - n % LANES if num_classes <= LANES else 0
    _blocks_of_16(rows, columns, whole)
    _by_value(rows, columns, whole)


def _swapped(builder, low, high, size):
    """Swap the off-diagonal ``size x size`` blocks of the 2-row pair ``(low, high)`` of a
    transposition: lanes ``[k + size, k + 2 size)`` of ``low`` with lanes ``[k, k + size)`` of
    ``high``, for each ``k`` a multiple of ``2 size``."""
    take_low, take_high = [], []
    for lane in range(LANES):
        if (lane // size) % 2 == 0:
            take_low.append(lane)  # low keeps its left block...
            take_high.append(lane + size)  # ... and gives its right one to high
        else:
            take_low.append(LANES + lane - size)  # high's left block
            take_high.append(LANES + lane)  # high keeps its right block
    mask = ir.VectorType(_INT32, LANES)
    return (
        builder.shuffle_vector(low, high, ir.Constant(mask, take_low)),
        builder.shuffle_vector(low, high, ir.Constant(mask, take_high)),
    )


@intrinsic
def _blocks_of_16(typingctx, rows, columns, whole):
    """The first ``whole`` rows (a multiple of 16) of :func:`transpose_rows`, for rows of at
    most 16 float32 classes (see the module)."""
    if not (is_float32_matrix(rows) and is_float32_matrix(columns) and isinstance(whole, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        source = context.make_array(signature.args[0])(context, builder, args[0])
        target = context.make_array(signature.args[1])(context, builder, args[1])
        num_classes = builder.extract_value(source.shape, 1)
        stride = builder.extract_value(target.shape, 1)
        end = context.cast(builder, args[2], signature.args[2], types.intp)
        zero, lanes = ir.Constant(end.type, 0), ir.Constant(end.type, LANES)
        zeros = ir.Constant(FLOATS, [0.0] * LANES)
        with cgutils.for_range_slice(builder, zero, end, lanes) as (start, _):
            vectors = [
                masked_vector_at(
                    builder,
                    source.data,
                    builder.mul(builder.add(start, ir.Constant(end.type, i)), num_classes),
                    num_classes,
                    zeros,
                )
                for i in range(LANES)
            ]
            size = LANES // 2
            while size >= 1:
                for i in range(LANES):
                    if (i // size) % 2 == 0:
                        vectors[i], vectors[i + size] = _swapped(builder, vectors[i], vectors[i + size], size)
                size //= 2
            for c in range(LANES):
                index = ir.Constant(end.type, c)
                with builder.if_then(builder.icmp_signed("<", index, num_classes), likely=True):
                    store_vector_at(
                        builder, vectors[c], target.data, builder.add(builder.mul(index, stride), start)
                    )
        return context.get_dummy_value()

    return types.none(rows, columns, whole), codegen
