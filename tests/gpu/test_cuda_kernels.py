"""The CUDA kernels against the CPU kernels: every loss and option, small grids with ragged tails.

Under the simulator each CUDA thread is a Python thread, so the grids are small: a few blocks of
128 rows and a partial last block.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from numba import cuda

import fastxent as fx
from fastxent import gpu
from tests.cases import logits

RNG = np.random.default_rng(42)
N, C = 300, 7  # 128-thread blocks: threads with three rows, two and none


def _both(fn, *args, **kwargs):
    return fn(*args, **kwargs, device="cpu"), fn(*args, **kwargs, device="cuda")


def _close(cpu, on_gpu, rtol):
    np.testing.assert_allclose(on_gpu, cpu, rtol=rtol, atol=0)


MULTICLASS = [
    ("plain", {}),
    ("weighted", {"weight": RNG.random(C) + 0.1}),
    ("smoothing", {"weight": RNG.random(C) + 0.1, "label_smoothing": 0.15}),
    ("ignore_valid_class", {"ignore_index": 3}),
]


@pytest.mark.parametrize("name,kwargs", MULTICLASS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_cpu(name, kwargs, dtype, reduction):
    x = logits(np.random.default_rng(1), N, C).astype(dtype)
    if dtype == np.float16:
        x = np.clip(x, -6e4, 6e4).astype(np.float16)
    y = np.random.default_rng(2).integers(0, C, N)
    y[1] = 1
    y[::11] = -100
    x[5] = np.nan  # a NaN row that is ignored: it must not leak
    y[5] = -100
    y = np.where(y < 0, kwargs.get("ignore_index", -100), y)
    cpu, on_gpu = _both(fx.cross_entropy, x, y, reduction=reduction, **kwargs)
    _close(cpu, on_gpu, 1e-12 if dtype == np.float64 else 1e-6)


def test_nll_loss_soft_targets_and_wide_rows():
    x = logits(np.random.default_rng(3), N, C)
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    logp = (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(np.float32)
    y = np.random.default_rng(4).integers(0, C, N)
    _close(*_both(fx.nll_loss, logp, y), 1e-6)
    q = np.random.default_rng(5).dirichlet(np.ones(C), N).astype(np.float32)
    _close(*_both(fx.cross_entropy, x, q, label_smoothing=0.1), 1e-6)
    # one thread block a row, a Python thread per CUDA thread on the simulator: a few rows
    wide = np.random.default_rng(6).standard_normal((6, 600)).astype(np.float32) * 4
    wide_y = np.random.default_rng(7).integers(0, 600, 6)
    wide_y[3] = -100
    for kwargs in ({}, {"label_smoothing": 0.2, "weight": np.linspace(0.5, 2, 600)}):
        _close(*_both(fx.cross_entropy, wide, wide_y, **kwargs), 1e-6)
    _close(*_both(fx.cross_entropy, wide, wide_y, reduction="none"), 1e-6)


# One thread a row (70 classes) and one thread block a row (600). The simulator takes ~40 s for
# the wide case (a Python thread per CUDA thread, switched at each of the reductions' barriers).
ON_A_REAL_GPU = pytest.mark.skipif(gpu.simulated(), reason="slow on the simulator; the real GPU runs it")


@pytest.mark.parametrize(
    "classes,dtype",
    [(70, np.float64), (70, np.float32), pytest.param(600, np.float64, marks=ON_A_REAL_GPU)],
)
def test_special_rows_match_cpu(classes, dtype):
    """Special rows: the first maximum (ties), -inf, NaN and +inf logits,
    confident rows (losses ~1e-9, to the accuracy promise), ignored rows; losses, counts and
    accuracy as on the CPU."""
    rng = np.random.default_rng(21)
    n = 23
    x = (rng.standard_normal((n, classes)) * 3).astype(dtype)
    y = rng.integers(0, classes, n)
    x[0, 5] = x[0, 40] = 50.0  # a tie at the maximum: the target is the first of the two...
    y[0] = 5
    x[1, 5] = x[1, 40] = 50.0  # ... or the second (not a correct prediction)
    y[1] = 40
    x[2, :] = -np.inf  # every logit -inf: NaN, as torch
    x[3, 7] = np.nan
    x[4, 9] = np.inf
    x[5, 11] = -np.inf
    y[5] = 11  # the target's logit is -inf: an infinite loss
    x[6:16, 3] = 30.0  # confident rows, right and wrong
    y[6:11] = 3
    y[[7, 18, 22]] = -100
    x[18] = np.nan  # an ignored NaN row does not leak
    for weight, smoothing in ((None, 0.0), (np.linspace(0.5, 2, classes), 0.1)):
        cpu, on_gpu = _both(fx.cross_entropy, x, y, weight, reduction="none", label_smoothing=smoothing)
        np.testing.assert_allclose(on_gpu, cpu, rtol=1e-12 if dtype == np.float64 else 1e-6)
        results = []
        for device in ("cpu", "cuda"):
            acc = fx.Accumulator("multiclass", class_weight=weight, label_smoothing=smoothing, device=device)
            acc.update(x[6:], y[6:])  # finite rows only: a loss to compare
            results.append(acc.result())
        cpu_score, gpu_score = results
        assert (gpu_score.scored, gpu_score.ignored, gpu_score.accuracy) == (
            cpu_score.scored,
            cpu_score.ignored,
            cpu_score.accuracy,
        )
        _close(cpu_score.loss, gpu_score.loss, 1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_binary_losses_match_cpu(reduction):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((N, 3)) * 4).astype(np.float32)
    x[0, 0], x[1, 1] = 1e4, -1e4
    t = (rng.random((N, 3)) < 0.4).astype(np.float32)
    pw = np.array([0.5, 2.0, 3.0])
    _close(*_both(fx.binary_cross_entropy_with_logits, x[:, 0], t[:, 0], reduction=reduction), 1e-6)
    multilabel = _both(
        fx.binary_cross_entropy_with_logits, x, t, pos_weight=pw, weight=np.array([1.0, 0.5, 2.0])
    )
    _close(*multilabel, 1e-6)
    p = 0.5 * (1 + np.tanh(x.astype(np.float64) / 2))  # the logistic function, without overflow
    p[2, 0], p[3, 1] = 0.0, 1.0  # torch's -100 clamp
    _close(*_both(fx.binary_cross_entropy, p, t, reduction=reduction), 1e-12)


def test_probabilities_follow_log_loss_rules():
    p = np.random.default_rng(9).dirichlet(np.ones(C), N)
    p[0] = np.eye(C)[0]  # clipped
    y = np.random.default_rng(10).integers(0, C, N)
    results = []
    for device in ("cpu", "cuda"):
        acc = fx.Accumulator("multiclass", inputs="probs", device=device)
        acc.update(p, y)
        results.append((acc.result().loss, acc.unnormalised_rows, acc.result().accuracy))
    _close(results[0][0], results[1][0], 1e-12)
    assert results[0][1:] == results[1][1:]
    binary = [fx.Accumulator("binary", inputs="probs", device=d) for d in ("cpu", "cuda")]
    for acc in binary:
        acc.update(p[:, 0], (y == 0).astype(np.float64))
    _close(binary[0].result().loss, binary[1].result().loss, 1e-12)


def test_counts_and_device_are_reported():
    x = logits(np.random.default_rng(11), N, C)
    y = np.random.default_rng(12).integers(0, C, N)
    y[:10] = -100
    scores = []
    for device in ("cpu", "cuda"):
        acc = fx.Accumulator("multiclass", device=device)
        acc.update(x, y)
        scores.append(acc.result())
    cpu, on_gpu = scores
    assert on_gpu.device == "cuda" and cpu.device == "cpu"
    assert (on_gpu.scored, on_gpu.ignored, on_gpu.nonfinite, on_gpu.accuracy) == (
        cpu.scored,
        cpu.ignored,
        cpu.nonfinite,
        cpu.accuracy,
    )
    # the same batches give the same bits on every run
    again = fx.Accumulator("multiclass", device="cuda")
    again.update(x, y)
    assert again.result().total == on_gpu.total


def test_device_resident_input_is_scored_in_place_and_validated():
    x = logits(np.random.default_rng(13), N, C)
    y = np.random.default_rng(14).integers(0, C, N)
    on_device = cuda.to_device(x), cuda.to_device(y)
    _close(fx.cross_entropy(x, y, device="cpu"), fx.cross_entropy(*on_device), 1e-6)  # auto -> cuda
    y_bad = y.copy()
    y_bad[201] = C + 3
    with pytest.raises(fx.InputValueError, match=f"class {C + 3} at row 201"):
        fx.cross_entropy(cuda.to_device(x), cuda.to_device(y_bad))
    with pytest.raises(fx.InputTypeError, match="device='cpu'"):
        fx.cross_entropy(cuda.to_device(x), y, device="cpu")
    p = cuda.to_device(np.array([0.2, 1.5, 0.3]))
    with pytest.raises(fx.InputValueError, match="probabilities in \\[0, 1\\], but has 1.5"):
        fx.binary_cross_entropy(p, cuda.to_device(np.array([0.0, 1.0, 1.0])))


def test_score_on_the_gpu_streams_batches(tmp_path):
    from fastxent.synthetic import make_table

    table = make_table(700, 5, seed=15, nulls=0.05)
    cpu = fx.score(table, target="label", logits="logits", group_by="split", batch_rows=256)
    on_gpu = fx.score(table, target="label", logits="logits", group_by="split", batch_rows=256, device="cuda")
    assert on_gpu.device == "cuda" and on_gpu.nulls == cpu.nulls
    _close(cpu.loss, on_gpu.loss, 1e-6)
    for key, group in cpu.groups.items():
        _close(group.loss, on_gpu.groups[key].loss, 1e-6)
    out = tmp_path / "rows.parquet"
    fx.score(pa.table(table), target="label", logits="logits", losses_to=str(out), device="cuda")
    assert out.exists()


def test_integer_binary_labels_of_a_source_reach_the_gpu_as_read():
    """``fx.score`` hands binary labels to the kernels in the dtype they were read in; on the
    GPU every such dtype must give the bits of the same labels as floats."""
    rng = np.random.default_rng(18)
    x = (rng.standard_normal(N) * 4).astype(np.float32)
    labels = rng.integers(0, 2, N)

    def on_gpu(y):
        return fx.score(pa.table({"x": x, "y": y}), target="y", logits="x", device="cuda")

    floats = on_gpu(labels.astype(np.float32))
    for dtype in (np.int64, np.int32, np.uint8, np.bool_):
        got = on_gpu(labels.astype(dtype))
        assert (got.total, got.accuracy) == (floats.total, floats.accuracy)
    _close(fx.score(pa.table({"x": x, "y": labels}), target="y", logits="x").loss, floats.loss, 1e-6)


def test_auto_takes_the_gpu_for_device_arrays_only_and_cuda_is_accepted():
    host = np.zeros((1 << 14, 1 << 12), np.float32)  # large, but on the host: the CPU is faster
    assert gpu.choose("auto", host) == "cpu"
    assert gpu.choose("auto", cuda.to_device(host[:4])) == "cuda"
    assert gpu.choose("cuda", host) == "cuda"


def test_streaming_uses_several_chunks(monkeypatch):
    import fastxent.gpu_engine as engine

    monkeypatch.setattr(engine, "CHUNK_BYTES", 1)  # one 128-row chunk at a time: many streams turns
    x = logits(np.random.default_rng(16), N, C)
    y = np.random.default_rng(17).integers(0, C, N)
    _close(fx.cross_entropy(x, y, device="cpu"), fx.cross_entropy(x, y, device="cuda"), 1e-6)
    sw = np.random.default_rng(18).random(N)
    results = []
    for device in ("cpu", "cuda"):
        acc = fx.Accumulator("binary", device=device)
        acc.update(x[:, 0], (y == 0).astype(np.float32), sw, weight=np.full(N, 0.5))
        results.append(acc.result().loss)
    _close(*results, 1e-6)


@pytest.mark.parametrize("bad", [1.5, -0.25, np.nan])
def test_probabilities_on_the_gpu_outside_the_unit_interval_raise(bad):
    p = np.random.default_rng(13).dirichlet(np.ones(C), N)
    p[7, 2] = bad
    acc = fx.Accumulator("multiclass", inputs="probs", device="cuda")
    with pytest.raises(fx.InputValueError, match=r"probabilities in \[0, 1\].*flat position 51"):
        acc.update(cuda.to_device(p), cuda.to_device(np.zeros(N, np.int64)))


@pytest.mark.parametrize("family", ["multiclass", "binary"])
def test_gpu_bits_do_not_depend_on_how_batches_cut_the_stream(family):
    """Thread blocks are aligned to the stream's 2048-row blocks; a block cut by batches is summed
    on the host in the threads' order (kernels/gpu_sum_order.py), so every split gives the same
    bits."""
    n = 2048 + 300
    x = logits(np.random.default_rng(14), n, 3)
    y = np.random.default_rng(15).integers(0, 3, n)
    if family == "binary":  # finite logits (the multiclass rows hold -inf, which makes NaN here)
        x, y = (np.random.default_rng(16).standard_normal(n) * 4).astype(np.float32), (y == 0) * 1.0
    results = []
    for cuts in ([n], [1000, 1348], [2048, 300], [7, 2341]):
        acc = fx.Accumulator(family, device="cuda")
        for part_x, part_y in zip(
            np.split(x, np.cumsum(cuts)[:-1]), np.split(y, np.cumsum(cuts)[:-1]), strict=True
        ):
            acc.update(part_x, part_y)
        results.append(acc.totals())
    assert all(r == results[0] for r in results)
    cpu = fx.Accumulator(family)
    cpu.update(x, y)
    _close(cpu.totals()[0], results[0][0], 1e-6)  # float32 rows: the GPU computes them in float64


def test_gpu_standard_error_matches_the_cpu_for_any_batches():
    """The blocks' products (loss², loss·den, den²) are summed like the losses: the same bits for
    every split, the CPU's value within float rounding."""
    n = 2048 + 300
    x = logits(np.random.default_rng(16), n, 3)
    y = np.random.default_rng(17).integers(0, 3, n)
    y[::11] = -100
    errors = []
    for cuts in ([n], [7, 2341], [2048, 300]):
        acc = fx.Accumulator(device="cuda")
        for part_x, part_y in zip(
            np.split(x, np.cumsum(cuts)[:-1]), np.split(y, np.cumsum(cuts)[:-1]), strict=True
        ):
            acc.update(part_x, part_y)
        errors.append(acc.result().stderr)
    assert errors[1] == errors[0] and errors[2] == errors[0]
    cpu = fx.Accumulator()
    cpu.update(x, y)
    _close(cpu.result().stderr, errors[0], 1e-6)
