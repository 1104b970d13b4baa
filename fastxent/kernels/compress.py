"""The rows of one group copied, in order, to the front of other arrays: the partition of a
batch into its groups' streams (:func:`~.groups.sort_by_group`, a few groups).

Copied row by row, every row is written to the next place, which moves on only past a row of
the group (no branch: a group is any share of the rows, in any order): three groups of a
131,072-row batch cost 0.25 ms, a sixth of its plain scoring's whole run (one thread, AMD
Zen 4). Where the target has AVX-512 (F and VL), eight rows are taken a step: their group ids
compared with the group in one vector, their values packed to the lanes the mask selects
(``vcompresspd``/``vpcompressd`` into a register), the packed vector stored whole at the next
place, which moves on by the mask's count. The same three groups: 0.10 ms. The register form
is used, not the compressing store (``llvm.masked.compressstore``), which Zen 4 runs in
microcode: 1.4 ms. Where it has AVX2 but not AVX-512 (AMD Zen 3, Intel Haswell on), the mask of
the eight ids picks a row of a table of ``vpermd`` permutations that pack the selected lanes
first, the marks' eight int32 lanes in one and each half of four float64 values in another: the
three groups of the same batch in 0.18 ms rather than 0.48 row by row (one thread, AMD Zen 3).
Each store writes eight values, so the arrays written need
:data:`SPARE_ROWS` more rows than are copied; their values there are left undefined.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import VECTOR_OVERLOAD_OPTIONS, strict_jit, target_has
from .row_vectors import broadcast, is_contiguous_vector, store_vector_at, vector_at

#: Rows a step of the vector path: eight float64 values are one 512-bit vector.
STEP_ROWS = 8
#: Rows each array written needs beyond those copied (a step stores a whole vector).
SPARE_ROWS = STEP_ROWS

_INT8 = ir.IntType(8)
_INT32 = ir.IntType(32)
_INTS = ir.VectorType(_INT32, STEP_ROWS)
_DOUBLES = ir.VectorType(ir.DoubleType(), STEP_ROWS)
_HALF_DOUBLES = ir.VectorType(ir.DoubleType(), STEP_ROWS // 2)


def _pack_table(lanes: int, pairs: bool) -> np.ndarray:
    """Row ``m``: the ``vpermd`` indices that pack the lanes mask ``m`` selects (of ``lanes``
    lanes) to the first ones, in order (the rest 0). ``pairs``: each lane is a float64, two
    int32 lanes."""
    table = np.zeros((1 << lanes, STEP_ROWS), dtype=np.int32)
    for mask in range(1 << lanes):
        picked = [j for j in range(lanes) if mask >> j & 1]
        indices = [2 * j + half for j in picked for half in (0, 1)] if pairs else picked
        table[mask, : len(indices)] = indices
    return table


#: :func:`_pack_table` of eight int32 lanes (the marks) and of four float64 lanes (half a step
#: of losses or denominators): the AVX2 path's permutations.
PACK_INTS = _pack_table(STEP_ROWS, pairs=False)
PACK_DOUBLES = _pack_table(STEP_ROWS // 2, pairs=True)


def rows_of_group(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den):
    """Copy the rows of group ``g`` (``gid == g``), in order, to the start of ``to_*``; return
    how many (a Numba overload: callable from compiled code only). Denominators are copied only
    with ``copy_den``. ``to_*`` need :data:`SPARE_ROWS` rows more than the group has; those rows'
    values are left undefined."""
    raise NotImplementedError("rows_of_group is only callable from jitted code")


def target_packs() -> bool:
    """Whether :func:`rows_of_group` takes eight rows a step on the target (AVX-512's packing or
    AVX2's permutations) rather than one."""
    return target_compresses() or target_has("avx2")


def target_compresses() -> bool:
    """Whether the target packs vectors by a mask (AVX-512 F for eight float64, VL for eight
    int32 values)."""
    return target_has("avx512f") and target_has("avx512vl")


@overload(rows_of_group, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _rows_of_group(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den):
    arrays = ((gid, types.int32), (loss, types.float64), (den, types.float64), (marks, types.int32))
    written = ((to_loss, types.float64), (to_den, types.float64), (to_marks, types.int32))
    if target_packs() and all(is_contiguous_vector(a, t) for a, t in (*arrays, *written)):
        return _by_vectors if target_compresses() else _by_permutes
    return _by_loop


@strict_jit(forceinline=True)
def _by_value(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, first, k):
    """:func:`rows_of_group` of the rows from ``first`` on, to the places from ``k`` on; returns
    the next place. The place stays in a register and only grows, so the compiler drops the
    negative-index check (twice as fast as a place kept in memory); the rows after the group's
    last land on the place after it."""
    if copy_den:
        for i in range(first, gid.shape[0]):
            to_loss[k] = loss[i]
            to_den[k] = den[i]
            to_marks[k] = marks[i]
            k += gid[i] == g
    else:
        for i in range(first, gid.shape[0]):
            to_loss[k] = loss[i]
            to_marks[k] = marks[i]
            k += gid[i] == g
    return k


def _by_loop(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den):
    """:func:`rows_of_group` row by row."""
    return _by_value(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, 0, 0)


def _by_vectors(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den):
    """:func:`rows_of_group` eight rows a step (:func:`_packed_step`), the last ``n mod 8`` row by
    row."""
    whole = gid.shape[0] - gid.shape[0] % STEP_ROWS
    k = 0
    for first in range(0, whole, STEP_ROWS):
        k += _packed_step(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, first, k)
    return _by_value(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, whole, k)


def _step_rows(context, builder, signature, args):
    """What both steps start from: ``data(i)``, the data pointer of array argument ``i``; the
    step's first row and the next place (``first``, ``k``: arguments 9 and 10); and the mask of
    the eight rows whose id is ``g`` (arguments 0 and 1)."""

    def data(i):
        return context.make_array(signature.args[i])(context, builder, args[i]).data

    def index(i):
        return context.cast(builder, args[i], signature.args[i], types.intp)

    start, place = index(9), index(10)
    ids = vector_at(builder, data(0), start, _INTS)
    mask = builder.icmp_signed("==", ids, broadcast(builder, builder.trunc(index(1), _INT32), _INTS))
    return data, start, place, mask


def _count(builder, bits):
    """The set bits of the int8 ``bits`` (``llvm.ctpop``)."""
    ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_INT8, [_INT8]), "llvm.ctpop.i8")
    return builder.call(ctpop, [bits])


def _by_permutes(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den):
    """:func:`rows_of_group` eight rows a step by AVX2 permutations (:func:`_permuted_step`), the
    last ``n mod 8`` row by row."""
    whole = gid.shape[0] - gid.shape[0] % STEP_ROWS
    k = 0
    for first in range(0, whole, STEP_ROWS):
        k += _permuted_step(
            gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, first, k, PACK_INTS, PACK_DOUBLES
        )
    return _by_value(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, whole, k)


@intrinsic
def _permuted_step(
    typingctx,
    gid,
    g,
    loss,
    den,
    marks,
    to_loss,
    to_den,
    to_marks,
    copy_den,
    first,
    k,
    pack_ints,
    pack_doubles,
):
    """:func:`_packed_step` without AVX-512: the mask of the eight rows' ids picks a row of
    :data:`PACK_INTS` (or, for each half of four float64 values, of :data:`PACK_DOUBLES`), whose
    ``vpermd`` packs the selected lanes first; the whole vector is stored at the next place."""
    if not all(isinstance(i, types.Integer) for i in (g, first, k)):
        return None
    signature = types.intp(
        gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, first, k, pack_ints, pack_doubles
    )

    def codegen(context, builder, signature, args):
        data, start, place, mask = _step_rows(context, builder, signature, args)
        bits = builder.bitcast(mask, _INT8)
        permd_type = ir.FunctionType(_INTS, [_INTS, _INTS])
        permd = cgutils.get_or_insert_function(builder.module, permd_type, "llvm.x86.avx2.permd")
        step = ir.Constant(place.type, STEP_ROWS)

        def permutation(table, row_bits):
            return vector_at(
                builder, data(table), builder.mul(builder.zext(row_bits, place.type), step), _INTS
            )

        marks_packed = builder.call(permd, [vector_at(builder, data(4), start, _INTS), permutation(11, bits)])
        store_vector_at(builder, marks_packed, data(7), place)
        low = builder.and_(bits, ir.Constant(_INT8, 0xF))
        high = builder.lshr(bits, ir.Constant(_INT8, 4))
        high_place = builder.add(place, builder.zext(_count(builder, low), place.type))
        halves = ((low, start, place), (high, builder.add(start, ir.Constant(start.type, 4)), high_place))

        def move(source, target):
            for half_bits, at, to in halves:
                values = builder.bitcast(vector_at(builder, data(source), at, _HALF_DOUBLES), _INTS)
                packed = builder.call(permd, [values, permutation(12, half_bits)])
                store_vector_at(builder, builder.bitcast(packed, _HALF_DOUBLES), data(target), to)

        move(2, 5)  # loss
        with builder.if_then(args[8]):  # copy_den
            move(3, 6)
        return builder.zext(_count(builder, bits), place.type)

    return signature, codegen


def _packed(builder, vector, mask):
    """``vector``'s lanes that ``mask`` selects, packed to its first lanes in order (the other
    lanes undefined): ``vpcompress`` into a register."""
    suffix = "f64" if isinstance(vector.type.element, ir.DoubleType) else "i32"
    signature = ir.FunctionType(vector.type, [vector.type, vector.type, mask.type])
    name = f"llvm.x86.avx512.mask.compress.v{STEP_ROWS}{suffix}"
    compress = cgutils.get_or_insert_function(builder.module, signature, name)
    return builder.call(compress, [vector, ir.Constant(vector.type, ir.Undefined), mask])


@intrinsic
def _packed_step(typingctx, gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, first, k):
    """Rows ``[first, first + 8)`` of :func:`rows_of_group`, those of group ``g`` packed to
    ``to_*[k:]`` (eight values stored each); returns how many there were."""
    if not all(isinstance(i, types.Integer) for i in (g, first, k)):
        return None
    signature = types.intp(gid, g, loss, den, marks, to_loss, to_den, to_marks, copy_den, first, k)

    def codegen(context, builder, signature, args):
        data, start, place, mask = _step_rows(context, builder, signature, args)

        def move(source, target, ty):
            packed = _packed(builder, vector_at(builder, data(source), start, ty), mask)
            store_vector_at(builder, packed, data(target), place)

        move(2, 5, _DOUBLES)  # loss
        move(4, 7, _INTS)  # marks
        with builder.if_then(args[8]):  # copy_den
            move(3, 6, _DOUBLES)
        return builder.zext(_count(builder, builder.bitcast(mask, _INT8)), place.type)

    return signature, codegen
