"""Property tests: chunk invariance, thread-count determinism, random options, bad input."""

import pickle

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.kernels import reference as ref
from fastxent.kernels.codes import BLOCK_ROWS

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _data(seed, n, c, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 4).astype(dtype)
    y = rng.integers(-1, c, n)
    return x, y


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3 * BLOCK_ROWS + 50),
    c=st.integers(1, 9),
    cuts=st.lists(st.integers(0, 3 * BLOCK_ROWS + 50), max_size=5),
    order=st.randoms(use_true_random=False),
)
def test_split_update_merge_in_any_order_is_bit_identical(seed, n, c, cuts, order):
    x, y = _data(seed, n, c)
    whole = fx.Accumulator(ignore_index=-1)
    whole.update(x, y)
    bounds = sorted({0, n, *(k for k in cuts if k < n)})
    parts = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        acc = fx.Accumulator(ignore_index=-1)
        acc.update(x[lo:hi], y[lo:hi], offset=lo)
        parts.append(pickle.loads(pickle.dumps(acc)))  # as if from another process
    order.shuffle(parts)
    merged = fx.Accumulator(ignore_index=-1)
    for acc in parts:
        merged.merge(acc)
    a, b = whole.result(), merged.result()
    assert a.total == b.total or (np.isnan(a.total) and np.isnan(b.total))
    assert a.weight == b.weight
    assert (a.scored, a.ignored, a.rows) == (b.scored, b.ignored, b.rows)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, BLOCK_ROWS + 50),
    c=st.sampled_from([17, 31, 32, 33, 100, 255, 256, 300]),
    cuts=st.lists(st.integers(1, BLOCK_ROWS + 50), max_size=4),
)
def test_rows_of_many_classes_have_the_same_bits_in_any_batches(seed, n, c, cuts):
    # a row's sums read the next row's maximum, except the last row of a batch: both must give
    # the same bits, as must rows summed corrected straight away and those summed plain first
    # (the float64 total: float32 row losses would round most differences away)
    x, y = _data(seed, n, c)
    whole = fx.Accumulator(ignore_index=-1)
    whole.update(x, y)
    merged = fx.Accumulator(ignore_index=-1)
    bounds = sorted({0, n, *(k for k in cuts if k < n)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        part = fx.Accumulator(ignore_index=-1)
        part.update(x[lo:hi], y[lo:hi], offset=lo)
        merged.merge(part)
    assert whole.result().total == merged.result().total


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5000))
def test_batch_size_does_not_change_the_bits(seed, batch):
    x, y = _data(seed, 9000, 5)
    whole = fx.Accumulator(ignore_index=-1)
    whole.update(x, y)
    streamed = fx.Accumulator(ignore_index=-1)
    for lo in range(0, len(y), batch):
        streamed.update(x[lo : lo + batch], y[lo : lo + batch])
    assert whole.result().total == streamed.result().total


def test_one_and_two_threads_give_identical_bits():
    x, y = _data(7, 300_000, 10)
    results = []
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        results.append(
            (
                fx.cross_entropy(x, y, ignore_index=-1),
                fx.binary_cross_entropy_with_logits(x[:, 0], x[:, 1] > 0),
            )
        )
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert results[0] == results[1]


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    c=st.integers(2, 40),
    smoothing=st.floats(0, 1),
    weighted=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_random_options_match_the_oracle(seed, n, c, smoothing, weighted, dtype, reduction):
    x, y = _data(seed, n, c, dtype)
    w = np.random.default_rng(seed).random(c) + 0.05 if weighted else None
    got = fx.cross_entropy(x, y, w, ignore_index=-1, reduction=reduction, label_smoothing=smoothing)
    want = ref.cross_entropy(x, y, w, ignore_index=-1, reduction=reduction, label_smoothing=smoothing)
    if np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 2e-6, abs=1e-12)


BAD_VALUES = st.sampled_from(
    [
        ("target", np.array([0, 5, 1])),
        ("target", np.array([0, -3, 1])),
        ("target", np.array([0.0, 1.0, 1.0])),
        ("target", np.array([[0, 1, 1]])),
        ("input", np.array([[1, 2], [3, 4], [5, 6]])),
        ("input", np.array([["a", "b"]] * 3)),
        ("weight", np.ones(3)),
        ("smoothing", 1.5),
        ("reduction", "avg"),
    ]
)


@settings(max_examples=30, deadline=None)
@given(bad=BAD_VALUES)
def test_bad_input_always_gives_a_clean_error(bad):
    what, value = bad
    args = {"input": np.zeros((3, 2), np.float32), "target": np.array([0, 1, 1])}
    kwargs = {}
    if what in args:
        args[what] = value
    elif what == "weight":
        kwargs["weight"] = value
    elif what == "smoothing":
        kwargs["label_smoothing"] = value
    else:
        kwargs["reduction"] = value
    with pytest.raises(fx.FastxentError) as info:
        fx.cross_entropy(args["input"], args["target"], **kwargs)
    assert isinstance(info.value, (ValueError, TypeError))
    assert "`" in str(info.value)  # names the argument


def _merge_tree(accumulators: list, rng) -> fx.Accumulator:
    """Merge copies of ``accumulators`` pairwise in a random tree, in random order."""
    pool = [pickle.loads(pickle.dumps(acc)) for acc in accumulators]
    while len(pool) > 1:
        i, j = sorted(rng.sample(range(len(pool)), 2))
        right, left = pool.pop(j), pool.pop(i)
        pool.append(left.merge(right) if rng.random() < 0.5 else right.merge(left))
    return pool[0]


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(0, 2 * BLOCK_ROWS + 9), min_size=1, max_size=6),
    batch=st.integers(1, 3000),
    trees=st.randoms(use_true_random=False),
)
def test_accumulators_without_offsets_merge_in_any_tree_to_the_same_bits(seed, sizes, batch, trees):
    """One accumulator per worker, each fed its own batches (no `offset`): any merge order and
    grouping gives the same total, as torchmetrics' merge_state users expect."""
    x, y = _data(seed, sum(sizes), 5)
    accumulators, lo = [], 0
    for size in sizes:
        acc = fx.Accumulator(ignore_index=-1)
        for start in range(lo, lo + size, batch):
            acc.update(x[start : min(start + batch, lo + size)], y[start : min(start + batch, lo + size)])
        accumulators.append(acc)
        lo += size
    first, second = _merge_tree(accumulators, trees), _merge_tree(accumulators, trees)
    assert first.totals() == second.totals() or np.isnan(first.totals()[0])
    assert first.result().rows == second.result().rows == sum(sizes)
    want = fx.cross_entropy(x.astype(np.float64), y, ignore_index=-1, reduction="sum") if len(y) else 0.0
    assert first.totals()[0] == pytest.approx(want, rel=1e-5)


def test_offsets_in_one_merge_side_only_is_a_clear_error():
    a, b = fx.Accumulator(), fx.Accumulator()
    a.update(np.zeros((3, 2)), np.zeros(3, np.int64))
    b.update(np.zeros((3, 2)), np.zeros(3, np.int64), offset=3)
    with pytest.raises(fx.InputValueError, match="pass `offset=` to every update of both, or to neither"):
        a.merge(b)


FORK_SCRIPT = """
import multiprocessing as mp, sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import fastxent as fx

def loss(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300_000, 4)).astype(np.float32)
    wide = fx.score("wide.parquet", target="label", logits="c*").total  # two threads take its columns
    return fx.cross_entropy(x, rng.integers(0, 4, 300_000)), wide

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    columns = {f"c{j}": rng.standard_normal(5000).astype(np.float32) for j in range(12)}
    table = pa.table({**columns, "label": rng.integers(0, 12, 5000)})
    pq.write_table(table, "wide.parquet", row_group_size=1000)
    fx.cross_entropy(np.zeros((300_000, 4), np.float32), np.zeros(300_000, np.int64))  # a parallel kernel
    fx.score("wide.parquet", target="label", logits="c*")  # the parent's threads took a row group's columns
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        print(repr(pool.map_async(loss, [1, 2]).get(timeout=120)))
    print(repr([loss(1), loss(2)]))
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_pool_workers_after_a_parallel_kernel_give_the_parents_bits(tmp_path, method):
    """GNU OpenMP kills a child forked after the parent's parallel region; forked children run
    the serial kernels instead (fastxent/forking.py), with the same bits; and children of a
    parent whose threads read a wide Parquet file read it with threads of their own."""
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(FORK_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), method], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    children, parent = done.stdout.splitlines()
    assert children == parent and "Terminating" not in done.stderr
