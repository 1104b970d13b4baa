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
