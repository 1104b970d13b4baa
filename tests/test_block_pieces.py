"""Batches of few, large blocks are scored in pieces of blocks in parallel (kernels/blocks.py):
the same bits, counts and per-row values as block by block."""

import numba
import numpy as np
import pytest

import fastxent as fx
from fastxent.kernels.blocks import (
    MIN_PIECE_ELEMENTS,
    PIECES,
    block_sums,
    denominator_sum,
    piece_count,
    range_sums,
    sum_block,
    sum_range,
    sum_range_products,
)
from fastxent.kernels.codes import BLOCK_ROWS


def test_piece_count_only_splits_few_large_segments():
    big = 3 * MIN_PIECE_ELEMENTS * 64
    assert piece_count(3, big) == PIECES  # pieces of equal rows, across the segments
    assert piece_count(PIECES, big) == 1  # enough blocks already
    assert piece_count(3, 3 * MIN_PIECE_ELEMENTS * 2) == 4  # a power of two, none under the minimum
    assert piece_count(5, 3 * MIN_PIECE_ELEMENTS * 2) == 1  # no more pieces than segments
    assert piece_count(10, 8 * MIN_PIECE_ELEMENTS) == 1
    assert piece_count(1, 1000) == 1


#: Rows per update small enough that no batch is split (:func:`piece_count` gives 1 piece).
UNSPLIT_ROWS = 256


def _accumulate(x, y, threads, rows_per_update, offset=0, **options):
    """The result of scoring ``x, y`` in updates of ``rows_per_update`` rows on ``threads``."""
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        acc = fx.Accumulator(**options)
        for lo in range(0, len(x), rows_per_update):
            acc.update(x[lo : lo + rows_per_update], y[lo : lo + rows_per_update], offset=offset + lo)
        return acc.result()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def _assert_same(a, b):
    assert a.total == b.total and a.weight == b.weight and a.stderr == b.stderr
    assert (a.scored, a.ignored, a.accuracy) == (b.scored, b.ignored, b.accuracy)


@pytest.mark.parametrize("layout", ["rows", "columns"])
@pytest.mark.parametrize("offset", [0, 700])
def test_pieces_give_the_block_by_block_bits(layout, offset):
    rng = np.random.default_rng(offset)
    n, c = 2 * BLOCK_ROWS + 300, 700  # three segments of 1.4M values: scored in pieces
    assert piece_count(3, n * c) > 1 and piece_count(1, UNSPLIT_ROWS * c) == 1
    x = rng.normal(0, 3, (n, c)).astype(np.float32)
    y = rng.integers(-1, c, n)
    if layout == "columns":
        x = np.asfortranarray(x)
    unsplit = _accumulate(x, y, 1, UNSPLIT_ROWS, offset, ignore_index=-1)
    for threads in (1, 2):
        _assert_same(_accumulate(x, y, threads, n, offset, ignore_index=-1), unsplit)
    assert unsplit.scored == np.sum(y != -1) and unsplit.total > 0


def test_pieces_keep_multilabel_counts():
    rng = np.random.default_rng(9)
    x = rng.normal(0, 3, (BLOCK_ROWS + 5, 600)).astype(np.float32)  # 2 segments: scored in pieces
    y = (rng.random(x.shape) < 0.3).astype(np.float32)
    assert piece_count(2, x.size) > 1
    unsplit = _accumulate(x, y, 1, UNSPLIT_ROWS, kind="multilabel")
    for threads in (1, 2):
        _assert_same(_accumulate(x, y, threads, len(x), kind="multilabel"), unsplit)


@pytest.mark.parametrize(
    "v", [1.0, 7.0, 100.0, 0.5, -3.0, 2.0**-1000, 0.25 * 3, 1.0 / 3, 0.1, 2.0**999, 0.0, -0.0, np.inf, np.nan]
)
def test_denominator_sum_is_sum_block_bit_for_bit(v):
    rng = np.random.default_rng(1)
    for den in (np.full(BLOCK_ROWS, v), np.where(rng.random(BLOCK_ROWS) < 0.01, 0.0, v)):
        want, got = sum_block(den), denominator_sum(den)
        assert np.array_equal(np.array(got), np.array(want), equal_nan=True)
        assert np.signbit(got) == np.signbit(want)
    weights = rng.random(BLOCK_ROWS) + 0.5  # sample weights: every value different
    assert denominator_sum(weights) == sum_block(weights)


def test_block_sums_of_unweighted_rows_are_the_general_sums():
    rng = np.random.default_rng(2)
    loss = rng.exponential(2.0, BLOCK_ROWS)
    loss[[3, 9, 17]] = [np.inf, -0.0, 1e-300]
    for n in (BLOCK_ROWS, 700, 1, 0):
        for values in (loss[:n], np.where(np.arange(n) == 5, np.nan, loss[:n])):
            ones = np.ones(n)
            got = np.zeros(5)
            block_sums(values, ones, got)
            want = [
                sum_block(values),
                sum_block(ones),
                sum_range_products(values, values, 0, n),
                sum_range_products(values, ones, 0, n),
                sum_range_products(ones, ones, 0, n),
            ]
            assert np.array_equal(got, want, equal_nan=True)
            assert np.signbit(got).tolist() == np.signbit(want).tolist()
    weights = np.ones(BLOCK_ROWS)
    weights[100] = 0.5  # one weighted row: the general sums
    got = np.zeros(5)
    block_sums(loss, weights, got)
    assert got[1] == BLOCK_ROWS - 0.5 and got[3] == sum_range_products(loss, weights, 0, BLOCK_ROWS)


@pytest.mark.parametrize("weighted", [False, True])
def test_ranges_of_fewer_rows_than_lanes_give_the_lanes_bits(weighted):
    """range_sums sums fewer than eight rows in one loop: the bits of the eight-lane sums
    (sum_range, sum_range_products) for every length and start, signed zeros, NaN, infinities,
    subnormals and cancellations included, unweighted rows and weighted ones."""
    rng = np.random.default_rng(5)
    specials = [-0.0, np.nan, np.inf, -np.inf, 5e-324, 1e308, -1e308, 0.0, -1.5, 1e-300]
    loss = np.concatenate([rng.exponential(2.0, 40), specials, -rng.exponential(1.0, 30), [-0.0] * 9])
    rng.shuffle(loss[:50])
    den = rng.choice([0.5, 1.0, 3.0, 1e-200], loss.shape[0]) if weighted else np.ones(loss.shape[0])
    for lo in range(loss.shape[0]):
        for hi in range(lo, min(lo + 12, loss.shape[0]) + 1):
            got = range_sums(loss, den, lo, hi)
            want = (
                sum_range(loss, lo, hi),
                sum_range(den, lo, hi),
                sum_range_products(loss, loss, lo, hi),
                sum_range_products(loss, den, lo, hi),
                sum_range_products(den, den, lo, hi),
            )
            assert np.array(got).view(np.int64).tolist() == np.array(want).view(np.int64).tolist(), (lo, hi)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("labels", [np.float32, np.int64])
@pytest.mark.parametrize("first", [0, 1000])
def test_fused_binary_block_sums_are_the_row_function_bits(dtype, labels, first):
    """Full blocks of unweighted logits are summed by binary_block_sums, with their row values
    where asked: the bits of the row function (binary_rows) and block_sums, row values included;
    and the same sums whether a batch asks for row values or not."""
    from fastxent import engine
    from fastxent.kernels.binary import binary_block_sums, binary_rows
    from fastxent.spec import LossSpec

    rng = np.random.default_rng(3)
    n = 5 * BLOCK_ROWS + 77
    x = (rng.standard_normal(n) * 6).astype(dtype)
    x[[5, 2100, 4500, 7000]] = [np.inf, -np.inf, np.nan, 90.0]
    y = (rng.random(n) < 0.4).astype(labels)
    for pos_weight in (None, np.array([2.5])):
        spec = LossSpec("binary") if pos_weight is None else LossSpec("binary", pos_weight=pos_weight)
        (chunk,) = engine.chunks(spec, x, y)
        lo, hi = BLOCK_ROWS, 2 * BLOCK_ROWS
        out = np.zeros(5)
        fused_rows = engine.RowValues.empty(BLOCK_ROWS, predicted=True)
        done, counts = binary_block_sums(chunk.args, lo, hi, out, *fused_rows)
        assert done and counts[0] == BLOCK_ROWS and out[1] == out[4] == BLOCK_ROWS
        assert np.array_equal(out[3], out[0], equal_nan=True)
        general_rows = engine.RowValues.empty(BLOCK_ROWS, predicted=True)
        assert binary_rows(chunk.args, lo, hi, *general_rows) == counts
        assert counts[2] == np.count_nonzero(~np.isfinite(general_rows.loss)) == 1  # the -inf logit
        want = np.zeros(5)
        block_sums(general_rows.loss, general_rows.den, want)
        assert np.array_equal(out, want, equal_nan=True)
        for got, expected in zip(fused_rows, general_rows, strict=True):
            assert got.tobytes() == expected.tobytes()
        for moments in (False, True):  # the loss and denominator, or all five sums
            fused = engine.run_blocks(chunk, first, moments=moments)
            with_rows = engine.run_blocks(chunk, first, engine.RowValues.empty(n), moments=moments)
            for got, expected in zip(fused, with_rows, strict=True):
                assert np.array_equal(got, expected, equal_nan=True)
        assert fused[1][:, 3].sum() > 0 and fused[1][:, 2].sum() == 3  # correct and nonfinite counts
    weighted = engine.chunks(LossSpec("binary"), x, y, sample_weight=np.ones(n))
    assert not binary_block_sums(next(weighted).args, 0, BLOCK_ROWS, out, *engine.RowValues.empty(0))[0]


def _eight_lane_sum(values):
    """sum_range's order in plain Python floats: eight lanes, their tree, the rest in order."""
    terms = [float(v) for v in values]
    full = len(terms) - len(terms) % 8
    lanes = [0.0] * 8
    for i in range(full):
        lanes[i % 8] += terms[i]
    rest = 0.0
    for t in terms[full:]:
        rest += t
    s0, s1, s2, s3, s4, s5, s6, s7 = lanes
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + rest


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 5, 8, 1000, BLOCK_ROWS])
def test_vector_lanes_are_the_scalar_order_bit_for_bit(dtype, n):
    """The eight running sums run as one vector (kernels/lanes.py) on contiguous arrays, lane by
    lane on strided ones: both are the Python-ordered sum, -0.0, infinities and NaN included."""
    rng = np.random.default_rng(n)
    values = (rng.standard_normal(2 * n) * 10.0 ** rng.integers(-30, 30, 2 * n)).astype(dtype)
    if n >= 8:
        values[[1, 3]] = [-0.0, 1e-40]
    for v in (values[:n], values[::2]):  # contiguous, and a strided view
        want = _eight_lane_sum(list(v))
        assert np.array_equal(np.float64(sum_block(v)), np.float64(want))
    assert np.signbit(sum_block(np.full(9, -0.0, dtype))) == np.signbit(_eight_lane_sum([-0.0] * 9))
    special = np.ones(max(n, 16), dtype)
    special[[2, 10]] = [np.inf, -np.inf]
    assert np.isnan(sum_block(special))
    if dtype == np.float64 and n:
        weights = rng.random(n) + 0.5
        want = _eight_lane_sum(list(values[:n] * weights))
        assert sum_range_products(values[:n], weights, 0, n) == want
