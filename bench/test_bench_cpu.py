"""CPU benchmarks against peers (``make bench``; not run in CI). Medians, same process, 2 threads.

Sizes follow the issue: multiclass 4,000,000 x 100 and 40,000,000 x 10, binary 100,000,000.
Set ``FASTXENT_BENCH_SCALE=0.01`` for a quick run. torch is skipped when not installed. The
multiclass data comes from the tests' case generator (``tests/cases.py``).
"""

import os

import numpy as np
import pytest

import fastxent as fx
from tests.cases import logits

SCALE = float(os.environ.get("FASTXENT_BENCH_SCALE", "1"))
SHAPES = {"mc_4Mx100": (int(4e6 * SCALE), 100), "mc_40Mx10": (int(4e7 * SCALE), 10)}


@pytest.fixture(scope="module", params=list(SHAPES))
def multiclass(request):
    n, c = SHAPES[request.param]
    rng = np.random.default_rng(0)
    return logits(rng, n, c), rng.integers(0, c, n)  # the tests' case generator


@pytest.fixture(scope="module")
def binary():
    n = int(1e8 * SCALE)
    rng = np.random.default_rng(0)
    return rng.standard_normal(n, dtype=np.float32), (rng.random(n, dtype=np.float32) < 0.5).astype(
        np.float32
    )


def test_multiclass_fastxent(benchmark, multiclass):
    x, y = multiclass
    fx.cross_entropy(x, y)
    benchmark(fx.cross_entropy, x, y)


def test_multiclass_torch(benchmark, multiclass):
    torch = pytest.importorskip("torch")
    x, y = (torch.from_numpy(a) for a in multiclass)
    benchmark(torch.nn.functional.cross_entropy, x, y)


def test_multiclass_numpy(benchmark, multiclass):
    x, y = multiclass

    def numpy_ce():
        m = x.max(axis=1, keepdims=True)
        lse = np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]
        return float(np.mean(lse - x[np.arange(len(y)), y]))

    benchmark(numpy_ce)


def test_multiclass_memory_read(benchmark, multiclass):
    benchmark(np.max, multiclass[0])


def test_binary_fastxent(benchmark, binary):
    fx.binary_cross_entropy_with_logits(*binary)
    benchmark(fx.binary_cross_entropy_with_logits, *binary)


def test_binary_torch(benchmark, binary):
    torch = pytest.importorskip("torch")
    x, t = (torch.from_numpy(a) for a in binary)
    benchmark(torch.nn.functional.binary_cross_entropy_with_logits, x, t)
