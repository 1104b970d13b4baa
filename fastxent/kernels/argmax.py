"""A row's predicted class: the index of the first value equal to its maximum, as ``np.argmax``.

Found by a scalar loop that stops at the first match, a row of 100 classes took ~13 ns (half
the row read, a compare and a branch a value): the predictions of a report or a losses file cost
a sixth of scoring the row. Contiguous float32 rows are compared 16 values a step instead, with
no branch: each step's matches become a 16-bit mask whose trailing zeros give the first match's
lane, and the smallest index found over the row is the answer (the last ``C mod 16`` values in
one masked load whose other lanes are NaN, which equals nothing).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import VECTOR_OVERLOAD_OPTIONS, vector_jit
from .row_vectors import FLOATS, LANES, broadcast, is_contiguous_vector, over_row, splat

_MASK_BITS = ir.IntType(LANES)


def first_equal(row, m):
    """The index of the first value of ``row`` equal to ``m`` (``==``: ``-0.0`` equals ``0.0``),
    ``row.shape[0]`` if none (a Numba overload: callable from compiled code only)."""
    raise NotImplementedError("first_equal is only callable from jitted code")


@vector_jit
def first_argmax(row, m):
    """Index of the first maximum ``m`` of ``row``, as ``np.argmax``: the first NaN if ``m`` is
    NaN (:func:`~.multiclass.row_max` makes a NaN the maximum)."""
    if m != m:
        for c in range(row.shape[0]):
            if row[c] != row[c]:
                return c
        return 0
    c = first_equal(row, m)
    return c if c < row.shape[0] else 0


@overload(first_equal, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _first_equal(row, m):
    if is_contiguous_vector(row, types.float32) and m == types.float32:
        return lambda row, m: _first_equal_vectors(row, m)
    return _first_equal_by_loop


def _first_equal_by_loop(row, m):
    """:func:`first_equal` value by value (float64 rows, strided views)."""
    for c in range(row.shape[0]):
        if row[c] == m:
            return c
    return row.shape[0]


@intrinsic
def _first_equal_vectors(typingctx, row, m):
    """:func:`first_equal` of a contiguous float32 row, 16 values a step (see the module)."""
    if not (is_contiguous_vector(row, types.float32) and m == types.float32):
        return None

    def codegen(context, builder, signature, args):
        n = builder.extract_value(context.make_array(signature.args[0])(context, builder, args[0]).shape, 0)
        found = cgutils.alloca_once_value(builder, n)  # a register
        target = broadcast(builder, args[1], FLOATS)
        trailing = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_MASK_BITS, [_MASK_BITS, ir.IntType(1)]), f"llvm.cttz.i{LANES}"
        )

        def step(values, i):
            bits = builder.bitcast(builder.fcmp_ordered("==", values, target), _MASK_BITS)
            first = builder.add(
                i, builder.zext(builder.call(trailing, [bits, ir.Constant(ir.IntType(1), 0)]), n.type)
            )
            candidate = builder.select(
                builder.icmp_unsigned("!=", bits, ir.Constant(_MASK_BITS, 0)), first, n
            )
            best = builder.load(found)
            builder.store(builder.select(builder.icmp_signed("<", candidate, best), candidate, best), found)

        # the last values' missing lanes are NaN, which equals nothing
        over_row(context, builder, signature.args[0], args[0], splat(float("nan"), FLOATS), step)
        return builder.load(found)

    return types.intp(row, m), codegen
