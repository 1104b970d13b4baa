"""Asking the CPU for a row of an array before a loop reaches it: ``llvm.prefetch``.

A loop adding each row of a batch to its group's sums (:mod:`.scattered_fold`) reads the sums
of 100,000 groups at random: megabytes that the batch's decoding has pushed out of the caches
since the last batch, one miss a row, which the core overlaps only as far as its window of
instructions reaches. Asked for a few dozen rows ahead, the misses overlap whatever the window
(131,072 rows into 92,000 groups' sums, caches flushed first: 1.50 -> 1.08 ms, one thread,
AMD Zen 3). The row sums of many classes ask for the next row a few KB ahead of where they
read it (:mod:`.row_excess`), and the class-by-class maxima each class's values a few lines on
(:mod:`.column_vectors`). A prefetch is a hint: it changes no value and cannot fault.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_INT32 = ir.IntType(32)
_BYTE_POINTER = ir.IntType(8).as_pointer()
#: ``llvm.prefetch``'s arguments after the address: a write (or a read) is coming, keep the line
#: in every cache level (locality 3), data rather than instructions.
_FOR_READ, _FOR_WRITE, _KEEP_EVERYWHERE, _DATA = (ir.Constant(_INT32, v) for v in (0, 1, 3, 1))


def emit_prefetch(builder, address, write=True):
    """Ask for the cache line at ``address`` (any pointer), to be written soon or (``write``
    false) read: ``llvm.prefetch``, keeping the line in every cache level."""
    prefetch = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [_BYTE_POINTER, _INT32, _INT32, _INT32]),
        "llvm.prefetch.p0",
    )
    kind = _FOR_WRITE if write else _FOR_READ
    builder.call(prefetch, [builder.bitcast(address, _BYTE_POINTER), kind, _KEEP_EVERYWHERE, _DATA])


@intrinsic
def prefetch_row(typingctx, array, row):
    """Ask for the cache line where row ``row`` of ``array`` (any array; its first axis) begins,
    to be written soon. No bounds are checked: a prefetch of any address is harmless."""
    if not isinstance(array, types.Array) or not isinstance(row, types.Integer):
        return None
    signature = types.void(array, row)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0])
        row = context.cast(builder, args[1], signature.args[1], types.intp)
        offset = builder.mul(row, builder.extract_value(data.strides, 0))
        start = builder.ptrtoint(data.data, offset.type)
        emit_prefetch(builder, builder.inttoptr(builder.add(start, offset), _BYTE_POINTER))
        return context.get_dummy_value()

    return signature, codegen
