"""Rows stored class by class, 16 rows at a time in one vector's lanes: the maxima and sums of
exponentials of the class-by-class kernel (:func:`~.multiclass.column_slice_statistics`).

The steps of :mod:`.class_passes` sweep one class over all the rows of a slice and keep each
row's running state (its key, partial sum, tie count, first maximum) in arrays: every class
loads and stores all of it again (at 10 classes, 4.5 of a row's 14 ns). Emitted here as IR,
16 rows' state stays in registers while their classes stream past: the maxima over every class,
then from the last class down the same terms, ties and first maximum as
:func:`~.class_passes.fold_sums`, flushed into float64 every
:data:`~.class_passes.COLUMN_SEGMENT_CLASSES` classes, and :func:`~.class_passes.finish_excess`:
the same operations in the same order for every row, so the same bits. The last ``n mod 16``
rows of a slice run in masked vectors. In cache (one thread, AMD Zen 4), rows of 10 and 16
classes: 1.395 -> 1.365 and 1.157 -> 1.113 ns a value.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .class_passes import COLUMN_SEGMENT_CLASSES, finish_excess, fold_sums, slice_maxima
from .jit import VECTOR_OVERLOAD_OPTIONS, strict_jit
from .prefetch import emit_prefetch
from .row_vectors import (
    FLOATS,
    KEYS,
    LANES,
    SMALLEST_KEY,
    broadcast,
    is_float32_matrix,
    masked_store_at,
    masked_vector_at,
    ordered_keys,
    over_vectors,
    store_vector_at,
    tail_mask,
    vector_at,
)
from .vmath import emit_exp_difference, splat

_DOUBLES = ir.VectorType(ir.DoubleType(), LANES // 2)
#: How far ahead of the rows it reads the maxima's pass asks for each class's values (a line a
#: class a step). A step reads one line of each of ``C`` columns: ``C`` streams, more than the
#: hardware prefetcher follows. 4M x 100 float32 in Fortran order, AMD Zen 4, 1 and 2 threads:
#: 260 and 133 ms without, 228 and 114 ms at 64 rows ahead (32: the same; 128: 235 and 123;
#: 512: 243 and 124).
PREFETCH_ROWS = 64
_HALF_LANES = (list(range(LANES // 2)), list(range(LANES // 2, LANES)))


def column_sums(columns, lo, hi, maxima, excess, first_max):
    """For rows ``[lo, hi)`` of a ``(C, N)`` array (one class per row), row ``r = lo + i``:
    ``maxima[i] = max_c x_rc``, ``excess[i] = Z_r - 1`` (NaN where the maximum is not finite)
    and ``first_max[i]`` the first class at the maximum (``C`` if none: a NaN maximum), as
    :func:`~.class_passes.fold_maxima`, :func:`~.class_passes.fold_sums` and
    :func:`~.class_passes.finish_excess` give them (a Numba overload: callable from compiled
    code only)."""
    raise NotImplementedError("column_sums is only callable from jitted code")


@overload(column_sums, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _column_sums(columns, lo, hi, maxima, excess, first_max):
    if is_float32_matrix(columns):
        return lambda columns, lo, hi, maxima, excess, first_max: _column_sums_strict(
            columns, lo, hi, maxima, excess, first_max
        )
    return _column_sums_by_passes


def _column_sums_by_passes(columns, lo, hi, maxima, excess, first_max):
    """:func:`column_sums` by the class-by-class sweeps (float64 columns)."""
    n = hi - lo
    slice_maxima(columns, lo, hi, maxima)
    partial = np.zeros(n, dtype=columns.dtype)
    ties = np.zeros(n, dtype=columns.dtype)
    for r in range(n):
        first_max[r] = columns.shape[0]
        excess[r] = 0.0
    fold_sums(columns, 0, lo, hi, maxima, partial, ties, excess, first_max)
    finish_excess(maxima, ties, excess)


def _half(builder, vector, k):
    """Lanes ``8k`` to ``8k + 7`` of a 16-lane vector."""
    lanes = ir.Constant(ir.VectorType(ir.IntType(32), LANES // 2), _HALF_LANES[k])
    return builder.shuffle_vector(vector, vector, lanes)


def _store(builder, vector, data, index, rest, count=LANES, offset=0):
    """Store ``vector`` from ``data[index]`` on: whole, or its lanes ``offset + j < rest``."""
    if rest is None:
        store_vector_at(builder, vector, data, index)
    else:
        masked_store_at(builder, vector, data, index, tail_mask(builder, rest, count, offset))


@intrinsic
def _column_vectors(typingctx, columns, lo, hi, maxima, excess, first_max):
    """:func:`column_sums` of float32 columns, 16 rows a vector."""
    if not is_float32_matrix(columns):
        return None

    def codegen(context, builder, signature, args):
        data, maxima_out, excess_out, first_out = (
            context.make_array(signature.args[k])(context, builder, args[k]) for k in (0, 3, 4, 5)
        )
        num_classes, stride = cgutils.unpack_tuple(builder, data.shape, 2)
        int64 = num_classes.type
        key, first = cgutils.alloca_once(builder, KEYS), cgutils.alloca_once(builder, KEYS)
        sums, ties = cgutils.alloca_once(builder, FLOATS), cgutils.alloca_once(builder, FLOATS)
        totals = [cgutils.alloca_once(builder, _DOUBLES) for _ in _HALF_LANES]
        zeros, ones = splat(0.0, FLOATS), splat(1.0, FLOATS)
        segment = ir.Constant(int64, COLUMN_SEGMENT_CLASSES)
        ahead = ir.Constant(int64, PREFETCH_ROWS)

        def group(i, rest):
            start = builder.add(args[1], i)

            def load(c, asking=False):
                """Class ``c``'s values of the 16 rows; ``asking``: and ask for its values
                :data:`PREFETCH_ROWS` on (past the last row: harmless, a prefetch cannot fault)."""
                at = builder.add(builder.mul(c, stride), start)
                if asking:
                    emit_prefetch(builder, builder.gep(data.data, [builder.add(at, ahead)]), write=False)
                if rest is None:
                    return vector_at(builder, data.data, at)
                return masked_vector_at(builder, data.data, at, rest, zeros)

            builder.store(splat(SMALLEST_KEY, KEYS), key)
            with cgutils.for_range(builder, num_classes) as loop:
                keys = ordered_keys(builder, builder.bitcast(load(loop.index, asking=True), KEYS))
                best = builder.load(key)
                builder.store(builder.select(builder.icmp_signed(">", keys, best), keys, best), key)
            maximum = builder.bitcast(ordered_keys(builder, builder.load(key)), FLOATS)  # its own inverse
            builder.store(zeros, sums)
            builder.store(zeros, ties)
            builder.store(broadcast(builder, builder.trunc(num_classes, ir.IntType(32)), KEYS), first)
            for total in totals:
                builder.store(splat(0.0, _DOUBLES), total)
            with cgutils.for_range(builder, num_classes) as loop:
                c = builder.sub(builder.sub(num_classes, loop.index), ir.Constant(int64, 1))  # the last first
                values = load(c)
                tie = builder.fcmp_ordered("==", values, maximum)
                term = emit_exp_difference(builder, values, maximum)
                builder.store(builder.fadd(builder.load(sums), builder.select(tie, zeros, term)), sums)
                builder.store(builder.fadd(builder.load(ties), builder.select(tie, ones, zeros)), ties)
                index = broadcast(builder, builder.trunc(c, ir.IntType(32)), KEYS)
                builder.store(builder.select(tie, index, builder.load(first)), first)
                with builder.if_then(
                    builder.icmp_signed("==", builder.srem(c, segment), ir.Constant(int64, 0))
                ):
                    partial = builder.load(sums)
                    for k, total in enumerate(totals):
                        widened = builder.fpext(_half(builder, partial, k), _DOUBLES)
                        builder.store(builder.fadd(builder.load(total), widened), total)
                    builder.store(zeros, sums)
            finite = builder.fcmp_ordered("==", builder.fsub(maximum, maximum), zeros)
            count = builder.load(ties)
            _store(builder, maximum, maxima_out.data, i, rest)
            _store(builder, builder.load(first), first_out.data, i, rest)
            for k, total in enumerate(totals):
                # excess_of: s + (ties - 1), in that order
                extra = builder.fsub(builder.fpext(_half(builder, count, k), _DOUBLES), splat(1.0, _DOUBLES))
                value = builder.fadd(builder.load(total), extra)
                value = builder.select(_half(builder, finite, k), value, splat(float("nan"), _DOUBLES))
                half_at = builder.add(i, ir.Constant(int64, k * LANES // 2))
                _store(builder, value, excess_out.data, half_at, rest, LANES // 2, k * LANES // 2)

        over_vectors(builder, builder.sub(args[2], args[1]), group)
        return context.get_dummy_value()

    return types.none(columns, lo, hi, maxima, excess, first_max), codegen


@strict_jit(forceinline=True)
def _column_sums_strict(columns, lo, hi, maxima, excess, first_max):
    """:func:`_column_vectors` from a strict function: a reassociating caller's flags would fold
    its TwoSum error term to 0 (:mod:`.row_vectors`)."""
    _column_vectors(columns, lo, hi, maxima, excess, first_max)
