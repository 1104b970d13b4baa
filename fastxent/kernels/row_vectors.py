"""A row of float32 logits run as explicit 16-lane vectors: the row maximum of the row-major
multiclass kernel (:mod:`.multiclass`), and the loads, masks and reductions the other vector
loops share (the sums of exponentials, :mod:`.row_excess`; argmax, transposes, halves).

Written as loops, these were vectorised by LLVM as it saw fit, and a row of ``C`` classes ended
in remainders: at ``C = 100`` the maximum ran 64 classes on four vectors, 32 on 8-lane vectors
and 4 one at a time; the exponentials ran two vectors a step, re-loaded their constants every
step (two vectors of live values left too few registers) and the last ``C mod 16`` classes
had to be summed apart, across rows. Emitted here as IR, each loop takes one ``<16 x float>``
vector (16 classes) a step and ends in one masked load of the last ``C mod 16`` classes, whose
missing lanes read as values that change nothing (the smallest key for the maximum, ``-inf``
for the sums): every class of a row runs vector code and a row pays one horizontal reduction
per loop. On AVX2 the backend splits each vector into two ``ymm`` halves, the same arithmetic.
In cache (2,048 rows, one thread, AMD Zen 4) the whole kernel took 0.585 ns a value against
0.619 for the loops at 100 classes, 0.361 against 0.405 at 1,000.
float16 rows are converted into a float32 buffer with the same loads (:mod:`.halves`).

:func:`max_key` takes any row: float32 rows contiguous in memory run the vectors, other rows
(float64, strided views) a loop.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import VECTOR_OVERLOAD_OPTIONS, strict_jit, wide_vectors
from .vmath import ordered_key, splat

#: float32 lanes of one vector (AVX-512's widest).
LANES = 16

_INT32 = ir.IntType(32)
#: One vector of float32 values.
FLOATS = ir.VectorType(ir.FloatType(), LANES)
KEYS = ir.VectorType(_INT32, LANES)
#: The ordered key of a NaN with every bit set: below every other key.
SMALLEST_KEY = -(2**31)


def max_key(row):
    """The largest :func:`~.vmath.ordered_key` of a row's values (a Numba overload: callable
    from compiled code only); a positive NaN has the largest key, so it is the maximum."""
    raise NotImplementedError("max_key is only callable from jitted code")


def is_float32_matrix(array) -> bool:
    """Whether ``array`` (a Numba type) is a C-contiguous 2-d float32 array."""
    return (
        isinstance(array, types.Array)
        and array.ndim == 2
        and array.layout == "C"
        and array.dtype == types.float32
    )


def is_contiguous_vector(array, dtype) -> bool:
    """Whether ``array`` (a Numba type) is a C-contiguous 1-d array of ``dtype``."""
    return isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C" and array.dtype == dtype


@overload(max_key, jit_options=VECTOR_OVERLOAD_OPTIONS)
def _max_key(row):
    if is_contiguous_vector(row, types.float32):
        return lambda row: _max_key_strict(row)
    return _max_key_by_loop


def _max_key_by_loop(row):
    """:func:`max_key` as a loop (LLVM vectorises an integer max reduction, not a float one
    without the ``nnan`` flag)."""
    wide_vectors()
    k = ordered_key(row[0])
    for c in range(1, row.shape[0]):  # indexed loops vectorise; ``for v in row`` does not
        kc = ordered_key(row[c])
        k = kc if kc > k else k
    return k


def broadcast(builder, value, ty):
    """A vector of type ``ty`` with ``value`` in every lane."""
    first = builder.insert_element(ir.Constant(ty, ir.Undefined), value, ir.Constant(_INT32, 0))
    zeros = ir.Constant(ir.VectorType(_INT32, ty.count), [0] * ty.count)
    return builder.shuffle_vector(first, ir.Constant(ty, ir.Undefined), zeros)


def tail_mask(builder, rest, count=LANES, offset=0):
    """Lanes ``j`` of a ``count``-lane vector with ``offset + j < rest`` (``0 < rest < count``)."""
    lanes = ir.Constant(ir.VectorType(_INT32, count), [offset + j for j in range(count)])
    return builder.icmp_signed("<", lanes, broadcast(builder, builder.trunc(rest, _INT32), lanes.type))


def ordered_keys(builder, bits):
    """:func:`~.vmath.ordered_key` of a vector of float32 bits, lane by lane (it is its own
    inverse: the bits of the float whose keys they are)."""
    magnitude = builder.and_(builder.ashr(bits, splat(31, bits.type)), splat(0x7FFFFFFF, bits.type))
    return builder.xor(bits, magnitude)


def _llvm_name(ty):
    """LLVM's overload suffix of a vector type (``v16f32``, ``v16i16``)."""
    element = ty.element
    if isinstance(element, (ir.FloatType, ir.DoubleType)):
        kind = "f32" if isinstance(element, ir.FloatType) else "f64"
    else:
        kind = f"i{element.width}"
    return f"v{ty.count}{kind}"


def vector_at(builder, data, index, ty=FLOATS):
    """The ``ty.count`` values from ``data[index]`` on (unaligned), as the vector type ``ty``."""
    return builder.load(builder.bitcast(builder.gep(data, [index]), ty.as_pointer()), align=1)


def store_vector_at(builder, vector, data, index):
    """Store ``vector`` from ``data[index]`` on (unaligned)."""
    builder.store(vector, builder.bitcast(builder.gep(data, [index]), vector.type.as_pointer()), align=1)


def masked_vector_at(builder, data, index, rest, passthru):
    """The ``rest`` values from ``data[index]`` on (``0 < rest <`` the lanes of ``passthru``),
    the other lanes ``passthru``: nothing is read past them (``llvm.masked.load``)."""
    ty = passthru.type
    pointer = builder.bitcast(builder.gep(data, [index]), ty.as_pointer())
    signature = ir.FunctionType(ty, [pointer.type, _INT32, ir.VectorType(ir.IntType(1), ty.count), ty])
    load = cgutils.get_or_insert_function(builder.module, signature, f"llvm.masked.load.{_llvm_name(ty)}.p0")
    mask = tail_mask(builder, rest, ty.count)
    return builder.call(load, [pointer, ir.Constant(_INT32, 1), mask, passthru])


def masked_store_at(builder, vector, data, index, mask):
    """Store the lanes of ``vector`` that ``mask`` selects from ``data[index]`` on, nothing else
    (``llvm.masked.store``)."""
    ty = vector.type
    pointer = builder.bitcast(builder.gep(data, [index]), ty.as_pointer())
    signature = ir.FunctionType(ir.VoidType(), [ty, pointer.type, _INT32, mask.type])
    name = f"llvm.masked.store.{_llvm_name(ty)}.p0"
    builder.call(
        cgutils.get_or_insert_function(builder.module, signature, name),
        [vector, pointer, ir.Constant(_INT32, 1), mask],
    )


def over_vectors(builder, n, step):
    """Call ``step(i, rest)`` for ``i = 0, 16, ...``: ``rest`` is ``None`` for whole vectors,
    then the count of the last ``n mod 16`` values when there are any."""
    zero, lanes = ir.Constant(n.type, 0), ir.Constant(n.type, LANES)
    whole = builder.and_(n, ir.Constant(n.type, -LANES))
    with cgutils.for_range_slice(builder, zero, whole, lanes) as (i, _):
        step(i, None)
    rest = builder.sub(n, whole)
    with builder.if_then(builder.icmp_signed(">", rest, zero)):
        step(whole, rest)


def reduced(builder, vector, combine):
    """``combine`` of the lanes of ``vector`` as a tree: halves, then quarters... (a fixed
    order, so the same row gives the same bits)."""
    count = vector.type.count
    while count > 1:
        half = count // 2
        lanes = ir.VectorType(_INT32, half)
        low = builder.shuffle_vector(vector, vector, ir.Constant(lanes, list(range(half))))
        high = builder.shuffle_vector(vector, vector, ir.Constant(lanes, list(range(half, count))))
        vector = combine(low, high)
        count = half
    return builder.extract_element(vector, ir.Constant(_INT32, 0))


def larger_keys(builder, a, b):
    """The larger of the keys ``a`` and ``b`` (signed integers or vectors of them), lane by lane."""
    return builder.select(builder.icmp_signed(">", a, b), a, b)


def over_row(context, builder, array_type, array_value, passthru, step):
    """Run ``step(vector, i)`` over a contiguous float32 row, ``i`` the vector's first index:
    whole vectors, then the last ``n mod 16`` values in one masked vector whose other lanes are
    ``passthru``."""
    array = context.make_array(array_type)(context, builder, array_value)

    def load(i, rest):
        if rest is None:
            step(vector_at(builder, array.data, i), i)
        else:
            step(masked_vector_at(builder, array.data, i, rest, passthru), i)

    over_vectors(builder, builder.extract_value(array.shape, 0), load)


@intrinsic
def _max_key_vectors(typingctx, row):
    """:func:`max_key` of a contiguous float32 row, 16 keys a step (``max_c ordered_key(x_c)``)."""
    if not is_contiguous_vector(row, types.float32):
        return None

    def codegen(context, builder, signature, args):
        running = cgutils.alloca_once_value(builder, splat(SMALLEST_KEY, KEYS))  # a register

        def step(values, _):
            keys = ordered_keys(builder, builder.bitcast(values, KEYS))
            builder.store(larger_keys(builder, keys, builder.load(running)), running)

        nan_bits = builder.bitcast(splat(-1, KEYS), FLOATS)
        over_row(context, builder, signature.args[0], args[0], nan_bits, step)
        return reduced(builder, builder.load(running), lambda a, b: larger_keys(builder, a, b))

    return types.int32(row), codegen


# An intrinsic's IR goes into the function that calls it, with that function's fast-math flags
# (:mod:`.row_excess`): called from this strict function, inlined, the IR stays as written.
@strict_jit(forceinline=True)
def _max_key_strict(row):
    return _max_key_vectors(row)
