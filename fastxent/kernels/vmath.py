"""Vectorisable float32 ``exp``, ``log`` and ``log1p`` for the CPU kernels (and a float64 ``exp``
of non-positive numbers for the report's binary confidences, :func:`exp_nonpositive64`).

The PyPI llvmlite has no SVML, so ``math.exp``/``np.log`` in a Numba loop become one libm call
per element and the loop does not vectorise. These versions use only ``+ *``, selects and an
int <-> float bit cast (Cephes-style range reduction and minimax polynomials), which LLVM turns
into AVX/AVX-512 code: several times faster than libm for the float32 kernels.

Each function covers the domain its kernels need and no more: ``exp`` of non-positive
arguments (logits minus their maximum, ``-|x|``), ``log`` and ``log1p`` over all floats,
``log1p`` of ``[0, 1]`` (the softplus tail). Accuracy, checked against NumPy over every
251st float32 bit pattern in ``tests/test_vmath.py``: a few ulp, relative error below 4e-7.
Special values follow IEEE/NumPy: ``exp(-inf) = 0``, ``log(0) = -inf``, ``log(x < 0) = nan``,
``log(inf) = inf``, NaN in gives NaN out.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import ELEMENTWISE_OVERLOAD_OPTIONS, elementwise_jit

_F = np.float32

# exp: x = n*ln2 + r with |r| <= ln2/2; ln2 split in two so n*LN2_HI is exact in float32.
_LOG2E = _F(1.44269504088896341)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_SHIFTED_MIN = _F(-87.0)  # exp(-87) = 1.6e-38, still normal: where exps are flushed to 0
_ROUNDER = _F(1.5 * 2**23)  # t = y + 1.5*2**23 rounds y to an integer held in t's low mantissa bits
# One multiply-add for n*ln2 where a caller accounts for its error (emit_exp_reduced's lean form).
_LN2 = _F(0.6931471805599453)
# exp(r) = 1 + r + r^2 P(r), P of degree 3 fitted (minimax, relative) on |r| <= ln2/2: 1.1e-7 before
# rounding, 1.9e-7 evaluated in float32. Cephes' degree 5 reaches 1e-10, which float32 cannot
# hold, for two more multiply-adds in the hot loop of every kernel.
_E0, _E1 = _F(0.499992311000824), _F(0.16667111217975616)
_E2, _E3 = _F(0.04189004749059677), _F(0.008312858641147614)

# log: x = m * 2**e with m in [sqrt(1/2), sqrt(2)); log(x) = e*ln2 + log1p(m - 1).
_SQRT_HALF = _F(0.707106781186547524)
_L0, _L1, _L2 = _F(7.0376836292e-2), _F(-1.1514610310e-1), _F(1.1676998740e-1)
_L3, _L4, _L5 = _F(-1.2420140846e-1), _F(1.4249322787e-1), _F(-1.6668057665e-1)
_L6, _L7, _L8 = _F(2.0000714765e-1), _F(-2.4999993993e-1), _F(3.3333331174e-1)
# log1p(e) = 2 atanh(e / (2 + e)) = s (1 + w Q(w)) with s = e / (1 + e/2) and w = s^2 in
# [0, 4/9] for e in [0, 1]; Q of degree 3 fitted (near-minimax, the relative error of the whole,
# by reweighted least squares): 4.5e-9 before rounding (Q's Taylor series: 1/12 + w/80 + ...).
_Q0, _Q1 = _F(0.0833330203970645), _F(0.012506726597260959)
_Q2, _Q3 = _F(0.0021876440592928), _F(0.0005471050753787312)
_FLT_MIN = _F(1.17549435e-38)
_TWO_23 = _F(8388608.0)

_ONE = _F(1.0)
_HALF = _F(0.5)
_ZERO = _F(0.0)
_INF = _F(np.inf)
_NAN = _F(np.nan)


_INT_OF_FLOAT = {types.float32: types.int32, types.float64: types.int64}


@intrinsic
def bits_of(typingctx, value):
    """The bits of a float as a signed integer of the same width (no conversion)."""
    if value not in _INT_OF_FLOAT:
        return None
    int_type = _INT_OF_FLOAT[value]

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(int_type.bitwidth))

    return int_type(value), codegen


#: The exponent bits of each float type: all set for infinities and NaN.
_EXPONENT_MASKS = {types.float32: 0x7F800000, types.float64: 0x7FF0000000000000}


@intrinsic
def is_finite(typingctx, value):
    """``math.isfinite(value)`` from the exponent bits, whatever the caller's fast-math flags.

    Numba's ``math.isfinite(v)`` tests whether ``v - v`` is ordered, and LLVM folds that
    subtraction to 0 under ``reassoc`` and ``nsz`` (:func:`~.jit.vector_jit`'s flags) where it
    sees where ``v`` comes from: a NaN block sum was found finite. Integer operations on the
    bits leave nothing to fold, and vectorise as well.
    """
    if value not in _EXPONENT_MASKS:
        return None
    mask_value = _EXPONENT_MASKS[value]
    width = _INT_OF_FLOAT[value].bitwidth

    def codegen(context, builder, signature, args):
        mask = ir.Constant(ir.IntType(width), mask_value)
        exponent = builder.and_(builder.bitcast(args[0], mask.type), mask)
        return builder.icmp_unsigned("!=", exponent, mask)

    return types.boolean(value), codegen


@intrinsic
def float_of_bits(typingctx, bits, like):
    """The float of ``like``'s type whose bits are the low bits of the integer ``bits``."""
    if like not in _INT_OF_FLOAT or not isinstance(bits, types.Integer):
        return None
    width = _INT_OF_FLOAT[like].bitwidth

    def codegen(context, builder, signature, args):
        value = args[0]
        if bits.bitwidth > width:
            value = builder.trunc(value, ir.IntType(width))
        elif bits.bitwidth < width:
            value = builder.sext(value, ir.IntType(width))
        return builder.bitcast(value, context.get_value_type(like))

    return like(bits, like), codegen


def splat(value, ty):
    """The constant ``value`` of the LLVM type ``ty``: a scalar, or every lane of a vector."""
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [ir.Constant(ty.element, value)] * ty.count)
    return ir.Constant(ty, value)


def fma(builder, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma``), for float32 scalars or vectors."""
    ty = a.type
    suffix = f"v{ty.count}f32" if isinstance(ty, ir.VectorType) else "f32"
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), f"llvm.fma.{suffix}")
    return builder.call(fma, [a, b, c])


def _integers_like(ty):
    """The int32 type of the float32 (or vector of float32) type ``ty``."""
    if isinstance(ty, ir.VectorType):
        return ir.VectorType(ir.IntType(32), ty.count)
    return ir.IntType(32)


def emit_exp_reduced(builder, x, lean=False):
    """IR of :func:`exp_reduced32` for a float32 value or a vector of them (every lane alike).

    ``x = n ln2 + r`` with ``n = round(x / ln2)`` by the ``1.5 * 2**23`` trick, so ``2**n``
    comes from the bits of ``t`` without a float -> int conversion; ``r = x - n ln2`` in two
    multiply-adds, ``ln2`` split so that ``n`` times its high part is exact; ``exp(r) = 1 + r +
    r^2 P(r)``, ``P`` of degree 3, as ``(P r^2 + r) + 1``: 1.86e-7 relative at most over every
    float32 in [-87, 0]. The fused multiply-adds are written out, so scalar callers and the
    vector loops round alike.

    ``lean``: two operations fewer, for a loop that runs out of registers (the row sums' plain
    terms, :mod:`.row_excess`: one row in cache, one thread, AMD Zen 3, 9% faster at 1,000
    classes, 12% at 32,000, 14% at 300): ``n ln2`` in one multiply-add with float32's ``ln2``,
    whose error ``1.7e-9`` times ``n`` moves the result by up to ``0.042 |x| 2**-24`` more, for
    callers that bound that error with the rounding of ``x`` itself; and the polynomial by
    Horner's rule from the top, five multiply-adds. Every float32 in [-87, 0]: 4.0e-7 relative
    at most, 1.84e-7 beyond that term. (The Horner form in the corrected sums' loop, whose chain
    is longer, made the kernel 11% slower at 100 classes.)
    """
    ty = x.type
    ints = _integers_like(ty)
    t = fma(builder, x, splat(float(_LOG2E), ty), splat(float(_ROUNDER), ty))
    n = builder.fsub(t, splat(float(_ROUNDER), ty))
    # n times the negated constants: the same bits as -n times them, without an op to negate n
    if lean:
        r = fma(builder, n, splat(-float(_LN2), ty), x)
    else:
        r = fma(builder, n, splat(-float(_LN2_HI), ty), x)
        r = fma(builder, n, splat(-float(_LN2_LO), ty), r)
    p = splat(float(_E3), ty)
    for coefficient in (_E2, _E1, _E0):  # P(r)
        p = fma(builder, p, r, splat(float(coefficient), ty))
    one = splat(1.0, ty)
    if lean:
        p = fma(builder, fma(builder, p, r, one), r, one)
    else:
        p = builder.fadd(fma(builder, p, builder.fmul(r, r), r), one)
    # bits(t) = bits(1.5 * 2**23) + n, and bits(1.5 * 2**23) << 23 vanishes in 32 bits.
    power = builder.shl(builder.bitcast(t, ints), splat(23, ints))
    return builder.bitcast(builder.add(builder.bitcast(p, ints), power), ty)


def emit_exp_difference(builder, x, m):
    """IR of :func:`exp_difference32` for float32 values or vectors of them (every lane alike)."""
    ty = x.type
    d = builder.fsub(x, m)
    back = builder.fsub(d, x)
    error = builder.fadd(builder.fsub(x, builder.fsub(d, back)), builder.fsub(builder.fneg(m), back))
    below, _, y = emit_exp_clamped(builder, d)
    return builder.select(below, splat(0.0, ty), fma(builder, y, error, y))


def emit_exp_clamped(builder, d, lean=False):
    """``(below, clamped, y)`` for float32 ``d <= 0`` (values or vectors): whether ``d`` is below
    the flush threshold, -87 where ``exp`` is 1.6e-38 (false for a NaN ``d``), ``d`` clamped at
    it, and :func:`emit_exp_reduced` of the clamped value (``lean``: see there). The callers set
    flushed terms to 0."""
    floor = splat(float(_SHIFTED_MIN), d.type)
    below = builder.fcmp_ordered("<", d, floor)
    clamped = builder.select(below, floor, d)
    return below, clamped, emit_exp_reduced(builder, clamped, lean)


@intrinsic
def exp_reduced32(typingctx, x):
    """``exp(x)`` for finite ``-87 <= x <= 0``, in float32, vectorisable: no special values
    (:func:`emit_exp_reduced`)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return emit_exp_reduced(builder, args[0])

    return types.float32(x), codegen


@elementwise_jit
def exp_flushed32(x):
    """``exp(x)`` for ``x <= 0``, values below ``exp(-87)`` (``-inf`` included) flushed to 0:
    :func:`exp_reduced32` of ``x`` clamped at -87. A NaN ``x`` gives a meaningless result: its
    caller does not need it to be NaN (:func:`softplus_tail32`)."""
    below = x < _SHIFTED_MIN
    y = exp_reduced32(_SHIFTED_MIN if below else x)
    return _ZERO if below else y


@intrinsic
def exp_difference32(typingctx, x, m):
    """``exp(x - m)`` for ``x <= m`` (a logit and its row maximum), with the rounding of
    ``x - m`` corrected, in float32, vectorisable.

    Used only inside ``Z = sum_c exp(x_c - m)``, where the term ``exp(0) = 1`` is always present:
    a term below ``exp(-87) = 1.6e-38`` changes ``Z`` by less than float64 resolves, so it is
    flushed to 0 (as :func:`exp_flushed32` does) and neither overflow nor subnormal results
    need a path of their own; ``exp(-inf) = 0``.

    ``d = fl(x - m)`` is off by up to half an ulp of ``d``, which moves ``exp(d)`` by ``|d|``
    times that: 1e-6 relative at ``d = -17``, the whole loss of a confident row. The exact
    error ``e`` of the subtraction (Knuth's TwoSum, strict IEEE flags so LLVM keeps it) gives
    ``exp(x - m) = exp(d) (1 + e)`` to a few ulp. It is applied to every term without a test:
    where ``d`` is finite, so is ``e``; a flushed term (``-inf`` logits too, whose ``e`` is NaN)
    is set to 0 after it; and a NaN ``x`` or ``m`` (or ``-inf - -inf``) makes ``e`` NaN, so the
    result is NaN whatever :func:`exp_reduced32` made of ``d``. Two selects in all: the hot loop
    of every multiclass kernel runs this
    (:func:`emit_exp_difference`; the row-major kernel's vectors in :mod:`.row_vectors`).
    """
    if x != types.float32 or m != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return emit_exp_difference(builder, *args)

    return types.float32(x, m), codegen


#: :func:`exp_nonpositive64`: ln 2 in two parts (fdlibm's: ``n * _LN2_HI64`` is exact for
#: ``|n| < 2**11``), the float64 rounder, and the Taylor coefficients ``1/k!`` of ``exp(r)``.
_LOG2E64 = 1.4426950408889634
_LN2_HI64 = 6.93147180369123816490e-01
_LN2_LO64 = 1.90821492927058770002e-10
_ROUNDER64 = 1.5 * 2.0**52
_EXP_FLOOR64 = -708.0  # exp(-708) = 3.3e-308, still normal: where exps are flushed to 0
_EXP_TAYLOR64 = tuple(1.0 / np.prod(np.arange(1.0, k + 1.0)) for k in range(13))


@elementwise_jit
def exp_nonpositive64(x):
    """``exp(x)`` in float64 for ``x <= 0``, vectorisable; values below ``exp(-708)``
    (``-inf`` included) flushed to 0, NaN in gives NaN out.

    ``x = n ln 2 + r`` with ``|r| <= ln2/2`` (two-part ln 2), ``exp(r)`` by its Taylor
    polynomial of degree 12 (truncation below ``0.347**13 / 13! = 2e-16``) and ``2**n`` put in
    by the exponent bits: within 2 ulp of ``exp``.
    """
    below = x < _EXP_FLOOR64
    y = _EXP_FLOOR64 if below else x
    n = (y * _LOG2E64 + _ROUNDER64) - _ROUNDER64
    r = (y - n * _LN2_HI64) - n * _LN2_LO64
    p = _EXP_TAYLOR64[-1]
    for k in range(len(_EXP_TAYLOR64) - 2, -1, -1):  # Horner, from the highest power down
        p = p * r + _EXP_TAYLOR64[k]
    scaled = p * float_of_bits((np.int64(n) + 1023) << 52, x)
    return x if x != x else (0.0 if below else scaled)


@elementwise_jit
def log32(x):
    """``log(x)`` in float32, vectorisable (Cephes ``logf``: mantissa/exponent split + polynomial).

    Subnormal inputs are scaled by ``2**23`` first so their exponent is read correctly.
    """
    tiny = x < _FLT_MIN
    xs = x * _TWO_23 if tiny else x
    bits = bits_of(xs)
    e = ((bits >> 23) & 0xFF) - 126
    m = float_of_bits((bits & 0x007FFFFF) | 0x3F000000, _ONE)  # m in [0.5, 1)
    e = e - 23 if tiny else e
    low = m < _SQRT_HALF
    e = e - 1 if low else e
    f = (m + m - _ONE) if low else (m - _ONE)
    ef = np.float32(e)
    z = f * f
    y = (((((((_L0 * f + _L1) * f + _L2) * f + _L3) * f + _L4) * f + _L5) * f + _L6) * f + _L7) * f
    y = (y + _L8) * f * z
    y = y + ef * _LN2_LO
    y = y - _HALF * z
    y = f + y + ef * _LN2_HI
    y = -_INF if x == _ZERO else y
    y = _NAN if x < _ZERO else y
    y = _INF if x == _INF else y
    return x if x != x else y


@elementwise_jit
def log1p_unit32(e):
    """``log(1 + e)`` for ``0 <= e <= 1`` (the softplus tail ``log1p(exp(-|x|))``), vectorisable.

    ``log1p(e) = 2 atanh(s/2) = s (1 + w Q(w))`` with ``s = e / (1 + e/2)`` and ``w = s^2 <= 4/9``:
    no exponent split and no select: eight operations (one division), where the reduction of
    :func:`log32` it replaces (a select at ``sqrt 2``, a degree-6 polynomial) took sixteen and made
    the binary kernel's tail 20% slower in cache (Zen 3). ``s`` is ``e``'s own rounding of the
    quotient, so tiny ``e`` keep full relative accuracy: 1.8e-7 relative at most over every
    float32 in ``[0, 1]``. No special values to handle: the caller's ``e`` is an exponential of a
    non-positive number.
    """
    s = e / (e * _HALF + _ONE)
    w = s * s
    q = ((_Q3 * w + _Q2) * w + _Q1) * w + _Q0
    return (s * w) * q + s


@elementwise_jit
def softplus_tail32(x):
    """``log1p(exp(-|x|))`` in float32 (the softplus tail), vectorisable: :func:`exp_flushed32`
    then :func:`log1p_unit32`, 3e-7 relative.

    Tails below ``exp(-87) = 1.6e-38`` (``|x| > 87``) are flushed to 0: float32 cannot hold
    them to 1e-6 anyway. A NaN ``x`` gives a meaningless tail: the loss it goes into is NaN
    through its ``x`` term, so no select is spent on it.
    """
    return log1p_unit32(exp_flushed32(-abs(x)))


@elementwise_jit
def log1p32(x):
    """``log(1 + x)`` in float32, vectorisable, accurate for tiny ``x``.

    Uses ``log1p(x) = log(u) * x / (u - 1)`` with ``u = 1 + x`` rounded (Goldberg): the factor
    corrects the rounding error of ``u``.
    """
    u = _ONE + x
    d = u - _ONE
    ratio = x / d if d != _ZERO else _ONE
    y = log32(u) * ratio
    y = x if d == _ZERO else y
    return _INF if x == _INF else y


def ordered_key(value):
    """Map a float to a signed integer of its width with the same order.

    Negative floats get their magnitude bits flipped, so integer comparison orders them
    correctly: ``-0.0`` sorts just below ``+0.0``, a positive NaN above ``+inf``.
    :func:`float_of_key` inverts it.
    """
    raise NotImplementedError("ordered_key is only callable from jitted code")


def float_of_key(key, like):
    """The float (of ``like``'s type) whose :func:`ordered_key` is ``key``."""
    raise NotImplementedError("float_of_key is only callable from jitted code")


def empty_keys(n, like):
    """An uninitialised array of ``n`` :func:`ordered_key` values for floats of ``like``'s type."""
    raise NotImplementedError("empty_keys is only callable from jitted code")


@overload(ordered_key, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _ordered_key(value):
    if value == types.float32:
        return lambda value: np.int32(bits_of(value) ^ ((bits_of(value) >> 31) & 0x7FFFFFFF))
    if value == types.float64:
        mask = np.int64(0x7FFFFFFFFFFFFFFF)
        return lambda value: bits_of(value) ^ ((bits_of(value) >> 63) & mask)
    return None


@overload(float_of_key, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _float_of_key(key, like):
    if like == types.float32:
        return lambda key, like: float_of_bits(key ^ ((key >> 31) & 0x7FFFFFFF), like)
    if like == types.float64:
        mask = np.int64(0x7FFFFFFFFFFFFFFF)
        return lambda key, like: float_of_bits(key ^ ((key >> 63) & mask), like)
    return None


@overload(empty_keys, jit_options=ELEMENTWISE_OVERLOAD_OPTIONS)
def _empty_keys(n, like):
    if like == types.float32:
        return lambda n, like: np.empty(n, dtype=np.int32)
    if like == types.float64:
        return lambda n, like: np.empty(n, dtype=np.int64)
    return None
