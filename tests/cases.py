"""The option cases the accuracy tests share (CPU and GPU kernels against the float64 oracle).

The peers the benchmarks time, and the test that each computes fastxent's value, are elsewhere:
:mod:`fastxent.bench.cases` and ``tests/test_bench_cases.py``.
"""

from __future__ import annotations

import numpy as np


def logits(rng, n, c, dtype=np.float32, scale=3.0):
    """Realistic logits with a few extreme and -inf values."""
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    if n > 4 and c > 2:
        x[1, 0] = -np.inf
        x[2, :] = x[2, :] * 1e3
    return x


def multiclass_cases(rng, n=3000, c=7):
    """``(name, input, target, kwargs)`` for cross_entropy with class-index targets."""
    x = logits(rng, n, c)
    y = rng.integers(0, c, n)
    y[1] = 1  # the -inf logit is not the target
    y[::11] = -100
    w = rng.random(c) + 0.1
    return [
        ("plain", x, y, {}),
        ("weighted", x, y, {"weight": w}),
        ("smoothing", x, y, {"weight": w, "label_smoothing": 0.15}),
        ("ignore_valid_class", x, np.where(y < 0, 0, y), {"ignore_index": 3}),
        ("float64", x.astype(np.float64), y, {"weight": w, "label_smoothing": 0.05}),
        ("float16", x.astype(np.float16).clip(-6e4, 6e4), y, {}),
        ("wide", logits(rng, 200, 1000), rng.integers(0, 1000, 200), {}),
    ]


def strided(row):
    """The same values as a strided view (layout 'A'): the row kernels' loops, not their vectors."""
    spread = np.repeat(row, 2)[::2]
    assert not spread.flags.c_contiguous or row.shape[0] <= 1
    return spread


def float32_rows(rng, n):
    """Rows of ``n`` float32 values: spread, with ties at the maximum, and with specials."""
    spread = (rng.standard_normal(n) * 4).astype(np.float32)
    tied = spread.copy()
    tied[rng.integers(0, n, 3)] = spread.max()
    special = spread.copy()
    special[rng.integers(0, n, 2)] = -np.inf
    special[rng.integers(0, n)] = -0.0
    return [spread, tied, special]
