"""``Z - 1`` of a row of logits: the sum of ``exp(x_c - m)`` over the classes below the row
maximum ``m``, and the count of classes at it, for the row-major multiclass kernel
(:mod:`.multiclass`).

The sum runs in the row's precision, so that a float32 row fills every lane of the machine's
vectors. float32 rows contiguous in memory run explicit 16-lane vectors (:mod:`.row_vectors`):
lane ``j`` adds the terms of classes ``j mod 16`` of a segment of :data:`SEGMENT_CLASSES`
classes, the two halves of the lanes are added, and the 8 sums are widened into float64 lanes,
tree-added at the end of the row (a fixed order: the same row gives the same bits). The row's
last ``C mod 16`` classes are the row's last vector, its classes summed already read as
``-inf`` (:func:`last_vector`). Other rows (float64, strided views) run loops, segment by segment.

The maximum's own ``exp(0) = 1`` (and a tie's) is counted, not added, so the sums hold ``Z - 1``
to float32's relative precision however confident the row (``log Z = log1p(Z - 1)``).

Two tiers. ``d = fl(x - m)`` is off the exact difference by up to half an ulp, ``|d| 2**-24``,
and so is ``exp(d)`` relative to ``exp(x - m)``: 1e-6 at ``d = -17``, the whole loss of a
confident row. :func:`partial_excess` first sums the plain ``exp(d)`` along with the bound
``B = sum_c exp(d_c) |d_c|`` on their error (one multiply-add a term, :func:`bounded_terms`),
and sums the row again with each subtraction's rounding corrected (Knuth's TwoSum,
:func:`~.vmath.exp_difference32`, six more operations a term) only where ``2**-24 B`` could move
the row's loss by more than :data:`ROUNDING_ULPS` ulp (:func:`rounding_is_negligible`, which
counts the target's distance below the maximum as part of the loss): the confident rows, whose
loss is ``Z - 1`` itself. Spread rows of many classes (a language model's
32,000) are summed once; rows of fewer than :data:`PLAIN_CLASSES` classes are summed corrected.
The plain terms' exponentials reduce ``d`` by ``n ln2`` in one multiply-add
(:func:`~.vmath.emit_exp_reduced`'s lean form), which adds at most :data:`REDUCTION_SHARE`
of the subtraction's own error, so the bound is taken that much larger.

Accuracy of a float32 row's ``Z - 1`` (relative, worst case): the exponentials' 1.9e-7, the
float32 sums of at most 8 terms a lane plus the halves' addition ``9 * 2**-24`` (5.4e-7) and the
subtractions' ``4 * 2**-24`` (2.4e-7, or nothing once corrected): 9.7e-7, within the 1e-6
promise (in practice a few 1e-8).

While a float32 row is summed, :func:`bounded_terms_ahead` and :func:`excess_terms_ahead` also
find the maximum of the next row, segment by segment: the next row streams in from memory
during the exponentials of this one (which run from L2), rather than in a pass of its own that
waits on memory, each step asking for the line :data:`PREFETCH_CLASSES` on; and a row of few
classes in cache takes one loop rather than two, its maximum's loads and keys riding on the
loop of the row before it (the whole kernel at 100 classes in cache, one thread, AMD Zen 4:
0.552 -> 0.47 ns a value, with :func:`last_vector` and the scalar tie count; 17 classes 1.68 ->
1.34).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .formulas import as_type_of, excess_of, fexp_difference
from .jit import VECTOR_OVERLOAD_OPTIONS, strict_jit, vector_jit, wide_vectors
from .prefetch import emit_prefetch
from .row_vectors import (
    FLOATS,
    KEYS,
    LANES,
    SMALLEST_KEY,
    broadcast,
    is_contiguous_vector,
    larger_keys,
    masked_vector_at,
    ordered_keys,
    reduced,
    tail_mask,
    vector_at,
)
from .vmath import emit_exp_clamped, emit_exp_difference, fma, is_finite, splat

#: Classes per float32 partial sum: each of the 16 lanes adds 8 terms, and the two halves of
#: the lanes are added before they are widened into 8 float64 lanes: at most ``9 * 2**-24``
#: relative. (Widening all 16 lanes would spare that addition, but 16 float64 lanes take four
#: registers on AVX2, which the loop cannot spare: it already reloads its constants every step.)
SEGMENT_CLASSES = 8 * LANES
DOUBLES = ir.VectorType(ir.DoubleType(), LANES // 2)

#: How far ahead of the classes it reads the next row is asked for (:func:`bounded_terms_ahead`):
#: a line a step, 2 KB on. The hardware's stream prefetcher, which a loop busy with
#: exponentials leaves behind (and which stops at the end of each 4 KB page), kept the next
#: row's reads waiting on memory: 12,500 x 32,000 on one thread (AMD Zen 4), the sums with the
#: next row's maximum 0.385 ns a class without, 0.30 at 1 KB ahead, 0.28 at 2 KB, 0.29 at 4 and 8 KB.
PREFETCH_CLASSES = 512

#: Rows of fewer classes are summed corrected straight away: the bound's accumulator costs
#: more than the correction saves when a row's fixed costs weigh (one row in cache, one thread,
#: AMD Zen 3: 0.774 ns a class plain with the bound against 0.761 corrected at 100 classes,
#: 0.578 against 0.598 at 1,000; the whole kernel in cache on AMD Zen 4, 100 classes: 0.526
#: plain against 0.530 corrected).
PLAIN_CLASSES = 256

#: The most the subtractions' rounding may move a row's loss, in float32 ulp (``2**-24``
#: relative), before the row is summed again with each subtraction corrected.
ROUNDING_ULPS = 4.0

#: The one-step reduction's error relative to the subtraction's ``|d| 2**-24``, rounded up:
#: float32's ``ln2`` is 1.7e-9 off, times ``|n| <= 1.443 |d| + 0.5``, that is ``0.042 |d| 2**-24``
#: (and 8.5e-10, within the exponential's own 1.9e-7).
REDUCTION_SHARE = 0.05


def excess_terms(row, m):
    """``(s, ties)`` in float64 for a row whose maximum is ``m``: ``s = sum exp(x_c - m)`` over
    the classes below ``m``, each subtraction's rounding corrected
    (:func:`~.formulas.fexp_difference`), and ``ties`` the count of classes equal to ``m`` (a
    Numba overload: callable from compiled code only)."""
    raise NotImplementedError("excess_terms is only callable from jitted code")


def bounded_terms(row, m):
    """``(s, ties, bound)``: :func:`excess_terms` with the plain ``exp(fl(x_c - m))`` for float32
    rows contiguous in memory, and ``bound = sum exp(d_c) |d_c|`` (float64; NaN if a ``d_c`` is
    NaN) whose ``2**-24`` times bounds their error; other rows are corrected, with ``bound = 0``
    (a Numba overload)."""
    raise NotImplementedError("bounded_terms is only callable from jitted code")


def bounded_terms_ahead(row, m, ahead):
    """``(s, ties, bound, key)``: :func:`bounded_terms` of ``row``, and
    :func:`~.row_vectors.max_key` of ``ahead``, a row as long, found in the same loop for float32
    rows contiguous in memory (a Numba overload; other rows: their :func:`bounded_terms` and the
    smallest key, and ``ahead`` is not read)."""
    raise NotImplementedError("bounded_terms_ahead is only callable from jitted code")


def excess_terms_ahead(row, m, ahead):
    """``(s, ties, key)``: :func:`excess_terms` of ``row`` and the :func:`~.row_vectors.max_key`
    of ``ahead`` (a Numba overload; see :func:`bounded_terms_ahead`)."""
    raise NotImplementedError("excess_terms_ahead is only callable from jitted code")


def _vectors(row, m, ahead=None):
    """Whether the arguments (Numba types) run the vectors: contiguous float32 rows, a float32 ``m``."""
    rows = [row] if ahead is None else [row, ahead]
    return m == types.float32 and all(is_contiguous_vector(a, types.float32) for a in rows)


@overload(excess_terms, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _excess_terms(row, m):
    if _vectors(row, m):
        return lambda row, m: _corrected_strict(row, m)
    return _excess_by_loop


@overload(bounded_terms, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _bounded_terms(row, m):
    if _vectors(row, m):
        return lambda row, m: _bounded_strict(row, m)
    return _bounded_by_loop


@overload(bounded_terms_ahead, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _bounded_terms_ahead(row, m, ahead):
    if _vectors(row, m, ahead):
        return lambda row, m, ahead: _ahead_strict(row, m, ahead)
    return _bounded_ahead_by_loop


@overload(excess_terms_ahead, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _excess_terms_ahead(row, m, ahead):
    if _vectors(row, m, ahead):
        return lambda row, m, ahead: _corrected_ahead_strict(row, m, ahead)
    return _excess_ahead_by_loop


def _excess_ahead_by_loop(row, m, ahead):
    """:func:`excess_terms_ahead` of rows the loops run (see there)."""
    s, ties = excess_terms(row, m)
    return s, ties, np.int32(SMALLEST_KEY)


def _excess_by_loop(row, m):
    """:func:`excess_terms` as loops, a float64 total of segments summed in the row's
    precision."""
    wide_vectors()
    zero = as_type_of(0.0, m)
    one = as_type_of(1.0, m)
    total = ties = 0.0
    n = row.shape[0]
    for start in range(0, n, SEGMENT_CLASSES):
        s = count = zero
        for c in range(start, min(start + SEGMENT_CLASSES, n)):  # indexed loops vectorise
            v = row[c]
            e = fexp_difference(v, m)
            # one test for both (no value exceeds its maximum, and a NaN passes neither);
            # ``v == m`` for the sum became a branch that LLVM did not vectorise
            at_max = v >= m
            s += zero if at_max else e
            count += one if at_max else zero
        total += np.float64(s)
        ties += np.float64(count)
    return total, ties


def _bounded_by_loop(row, m):
    """:func:`bounded_terms` of rows the loops run: corrected, so nothing to bound."""
    s, ties = excess_terms(row, m)
    return s, ties, 0.0


def _bounded_ahead_by_loop(row, m, ahead):
    """:func:`bounded_terms_ahead` of rows the loops run (see there)."""
    s, ties = excess_terms(row, m)
    return s, ties, 0.0, np.int32(SMALLEST_KEY)


def _excess_codegen(corrected, ahead):
    """IR of the vector loops: ``corrected`` terms (:func:`~.vmath.emit_exp_difference`) or
    plain ones with their bound; with the next row's maximum key when ``ahead``."""

    def codegen(context, builder, signature, args):
        row = context.make_array(signature.args[0])(context, builder, args[0])
        following = context.make_array(signature.args[2])(context, builder, args[2]) if ahead else None
        n = builder.extract_value(row.shape, 0)
        maximum = broadcast(builder, args[1], FLOATS)
        zeros = splat(0.0, FLOATS)
        totals = cgutils.alloca_once_value(builder, splat(0.0, DOUBLES))  # registers, after mem2reg
        sums = cgutils.alloca_once_value(builder, zeros)
        bounds = cgutils.alloca_once_value(builder, zeros)
        ties = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(32), 0))
        keys = cgutils.alloca_once_value(builder, splat(SMALLEST_KEY, KEYS))

        def add(slot, value):
            builder.store(builder.fadd(builder.load(slot), value), slot)

        def step(values):
            if corrected:
                at_max = builder.fcmp_ordered(">=", values, maximum)  # a tie: no value exceeds m
                term = builder.select(at_max, zeros, emit_exp_difference(builder, values, maximum))
            else:
                d = builder.fsub(values, maximum)
                # the tie test on d (d >= 0 just where x >= m, for a finite m): x is then dead
                # after the subtraction, a register more in a loop that spills (the kernel at
                # 1,000 classes in cache: 10% faster)
                at_max = builder.fcmp_ordered(">=", d, zeros)
                below, clamped, y = emit_exp_clamped(builder, d, lean=True)
                term = builder.select(builder.or_(below, at_max), zeros, y)
                # exp(d) |d| with d <= 0 (clamped: a flushed term adds 0, a NaN d makes it NaN)
                builder.store(fma(builder, term, clamped, builder.load(bounds)), bounds)
            add(sums, term)
            # a scalar count of the mask's bits: two vector operations a step less than adding
            # the mask's lanes (1,000 classes in cache, one thread, AMD Zen 4: 0.277 -> 0.262 ns
            # a value), in a loop bound by its vector operations
            bits = builder.bitcast(at_max, ir.IntType(LANES))
            popcount = builder.zext(builder.ctpop(bits), ir.IntType(32))
            builder.store(builder.add(builder.load(ties), popcount), ties)

        def step_ahead(values):
            candidate = ordered_keys(builder, builder.bitcast(values, KEYS))
            builder.store(larger_keys(builder, candidate, builder.load(keys)), keys)

        def flush():
            s = builder.load(sums)
            picks = ir.VectorType(ir.IntType(32), LANES // 2)
            low, high = (
                builder.shuffle_vector(s, s, ir.Constant(picks, list(lanes)))
                for lanes in (range(LANES // 2), range(LANES // 2, LANES))
            )
            add(totals, builder.fpext(builder.fadd(low, high), DOUBLES))
            builder.store(zeros, sums)

        zero, lanes = ir.Constant(n.type, 0), ir.Constant(n.type, LANES)
        ahead_distance = ir.Constant(n.type, PREFETCH_CLASSES)
        segment = ir.Constant(n.type, SEGMENT_CLASSES)
        whole = builder.and_(n, ir.Constant(n.type, -LANES))
        with cgutils.for_range_slice(builder, zero, whole, segment) as (start, _):
            end = builder.add(start, segment)
            end = builder.select(builder.icmp_signed("<", end, whole), end, whole)
            with cgutils.for_range_slice(builder, start, end, lanes) as (i, _):
                step(vector_at(builder, row.data, i, FLOATS))
                if ahead:
                    step_ahead(vector_at(builder, following.data, i, FLOATS))
                    # past the row's end: the row after it, or nothing (a prefetch cannot fault)
                    later = builder.gep(following.data, [builder.add(i, ahead_distance)])
                    emit_prefetch(builder, later, write=False)
            # a last segment of fewer vectors is flushed with the masked one: a row of up to
            # SEGMENT_CLASSES classes pays one flush
            with builder.if_then(builder.icmp_signed("==", builder.sub(end, start), segment)):
                flush()
        rest = builder.sub(n, whole)
        with builder.if_then(builder.icmp_signed(">", rest, zero)):
            last_vector(builder, row.data, n, rest, step, following.data if ahead else None, step_ahead)
        flush()
        double = ir.DoubleType()
        values = [
            reduced(builder, builder.load(totals), builder.fadd),
            builder.sitofp(builder.load(ties), double),
        ]
        if not corrected:  # the terms' d <= 0: the bound is minus their sum
            bound = reduced(builder, builder.load(bounds), builder.fadd)
            values.append(builder.fpext(builder.fneg(bound), double))
        if ahead:
            values.append(reduced(builder, builder.load(keys), lambda a, b: larger_keys(builder, a, b)))
        return context.make_tuple(builder, signature.return_type, values)

    return codegen


def last_vector(builder, data, n, rest, step, following=None, step_ahead=None):
    """Run ``step`` on the last ``rest`` classes of a row (``0 < rest < 16``), and
    ``step_ahead`` on those of the row ``following`` it when given: the row's last 16 values,
    the first ``16 - rest`` of them (summed already) read as ``-inf``, when the row has 16
    classes or more; a masked vector otherwise.

    A plain load, where the masked one (``llvm.masked.load``) cost more than a whole vector of
    the loop (100 classes, in cache, one thread, AMD Zen 4: 0.516 -> 0.504 ns a value). Every
    path takes the same last vector, so that a row's sums have the same bits whether or not the
    next row's maximum was read with them (the last row of a batch is not); the next row's
    maximum reads its whole last vector: classes read twice do not change a maximum.
    """
    lanes = ir.Constant(n.type, LANES)
    minus_infinity = splat(float("-inf"), FLOATS)
    with builder.if_else(builder.icmp_signed(">=", n, lanes)) as (whole_rows, short_rows):
        with whole_rows:
            last = builder.sub(n, lanes)
            summed = tail_mask(builder, builder.sub(lanes, rest))
            step(builder.select(summed, minus_infinity, vector_at(builder, data, last, FLOATS)))
            if following is not None:
                step_ahead(vector_at(builder, following, last, FLOATS))
        with short_rows:
            start = builder.sub(n, rest)
            step(masked_vector_at(builder, data, start, rest, minus_infinity))
            if following is not None:
                nan_bits = builder.bitcast(splat(-1, KEYS), FLOATS)  # the smallest key
                step_ahead(masked_vector_at(builder, following, start, rest, nan_bits))


@intrinsic
def _corrected_vectors(typingctx, row, m):
    """:func:`excess_terms` of a contiguous float32 row."""
    if not _vectors(row, m):
        return None
    return types.UniTuple(types.float64, 2)(row, m), _excess_codegen(corrected=True, ahead=False)


@intrinsic
def _bounded_vectors(typingctx, row, m):
    """:func:`bounded_terms` of a contiguous float32 row."""
    if not _vectors(row, m):
        return None
    return types.UniTuple(types.float64, 3)(row, m), _excess_codegen(corrected=False, ahead=False)


@intrinsic
def _corrected_ahead_vectors(typingctx, row, m, ahead):
    """:func:`excess_terms_ahead` of contiguous float32 rows."""
    if not _vectors(row, m, ahead):
        return None
    result = types.Tuple((types.float64, types.float64, types.int32))
    return result(row, m, ahead), _excess_codegen(corrected=True, ahead=True)


@intrinsic
def _ahead_vectors(typingctx, row, m, ahead):
    """:func:`bounded_terms_ahead` of contiguous float32 rows."""
    if not _vectors(row, m, ahead):
        return None
    result = types.Tuple((types.float64, types.float64, types.float64, types.int32))
    return result(row, m, ahead), _excess_codegen(corrected=False, ahead=True)


# The intrinsics' IR goes into the function that calls them, and Numba puts a function's
# fast-math flags on every float instruction in it: called from a reassociating kernel, the
# TwoSum error term would fold to 0 and the sums' order would be LLVM's. Called from these
# strict functions (inlined, each instruction keeping its own flags), the IR stays as written.
@strict_jit(forceinline=True)
def _corrected_strict(row, m):
    return _corrected_vectors(row, m)


@strict_jit(forceinline=True)
def _bounded_strict(row, m):
    return _bounded_vectors(row, m)


@strict_jit(forceinline=True)
def _corrected_ahead_strict(row, m, ahead):
    return _corrected_ahead_vectors(row, m, ahead)


@strict_jit(forceinline=True)
def _ahead_strict(row, m, ahead):
    return _ahead_vectors(row, m, ahead)


@vector_jit
def rounding_is_negligible(s, ties, bound, gap):
    """Whether plain terms summing to ``s`` (with ``ties`` classes at the maximum) whose
    subtractions' error is at most ``2**-24 bound`` (their reductions' at most
    :data:`REDUCTION_SHARE` of that more) keep the row's loss within :data:`ROUNDING_ULPS` ulp of
    it (false for a NaN bound or gap).

    The loss is at least ``log Z + gap``: ``log Z = log1p(e)``, ``e = Z - 1 = s + ties - 1``,
    and ``gap >= 0`` what the caller knows the loss adds to it (the target's distance below the
    maximum, ``m - x_t``; 0 where it knows nothing). ``log Z`` moves by ``delta e / (1 + e)``:
    relative to the loss, at most ``delta e / ((1 + e) log1p(e) + (1 + e) gap)``, and
    ``(1 + e) log1p(e)`` is at least ``e``, and at least ``1 + e`` once ``log1p(e) >= 1``
    (``e >= 1.72``). The gap matters for spread rows of many classes: 12,500 rows of 32,000
    logits drawn from N(0, 3**2), whose target is a class among the others, are summed again
    for 36% of them without it (``log Z`` alone, about 2.6, is a small part of their loss, about
    14), none with it.
    """
    e = excess_of(s, ties)
    scale = (1.0 + e if e >= 1.75 else e) + (1.0 + e) * gap
    return bound * (1.0 + REDUCTION_SHARE) <= ROUNDING_ULPS * scale


@vector_jit(forceinline=False)
def summed_again(row, m):
    """:func:`excess_terms`, for the rows the plain sums leave too imprecise: a call rather than
    the loops inlined at each place (the kernel's compile time), since few rows take it."""
    return excess_terms(row, m)


@vector_jit
def partial_excess(row, m, gap):
    """``(s, ties)`` in float64 for a row whose maximum is ``m``: ``s = sum exp(x_c - m)`` over
    the classes below ``m``, to float32's precision for float32 rows (see the module), and
    ``ties`` the count of classes at ``m``. ``m`` must be finite for ``s`` to mean anything;
    ``gap``: what the row's loss is known to add to ``log Z`` (:func:`rounding_is_negligible`)."""
    if row.shape[0] < PLAIN_CLASSES:
        return excess_terms(row, m)
    s, ties, bound = bounded_terms(row, m)
    if rounding_is_negligible(s, ties, bound, gap):
        return s, ties
    return summed_again(row, m)


@vector_jit
def corrected_excess(row, m, gap):
    """:func:`partial_excess` of a row of fewer than :data:`PLAIN_CLASSES` classes: its sums
    corrected (:func:`excess_terms`); ``gap`` is not needed."""
    return excess_terms(row, m)


@vector_jit
def corrected_excess_ahead(row, m, ahead, gap):
    """:func:`partial_excess_ahead` of a row of fewer than :data:`PLAIN_CLASSES` classes: its
    sums corrected, with the same bits as :func:`corrected_excess`, and the next row's maximum
    key (:func:`excess_terms_ahead`); ``gap`` is not needed."""
    return excess_terms_ahead(row, m, ahead)


@vector_jit
def partial_excess_ahead(row, m, ahead, gap):
    """``(s, ties, key)``: :func:`partial_excess` of ``row`` and the
    :func:`~.row_vectors.max_key` of the row ``ahead`` (for float32 rows contiguous in memory,
    read in the same loop; see :func:`bounded_terms_ahead`)."""
    s, ties, bound, key = bounded_terms_ahead(row, m, ahead)
    if not rounding_is_negligible(s, ties, bound, gap):
        s, ties = summed_again(row, m)
    return s, ties, key


@vector_jit
def excess_sum(row, m):
    """``Z - 1 = sum_c exp(x_c - m) - 1`` for the row maximum ``m``, in float64
    (:func:`partial_excess`); NaN unless ``m`` is finite (``Z`` then holds ``exp(inf - inf)``,
    as torch's does). Ties add ``ties - 1`` exactly."""
    if not is_finite(m):
        return np.nan
    s, ties = partial_excess(row, m, 0.0)
    return excess_of(s, ties)
