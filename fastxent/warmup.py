"""Compile (or load from Numba's cache) every CPU kernel for the dtypes users pass."""

from __future__ import annotations

import time

import numpy as np


def warmup(parallel: bool = True) -> float:
    """Run every loss once on tiny float32 and float64 inputs; return the seconds it took.

    The first run compiles (seconds per kernel); later runs load the on-disk cache.
    ``parallel=True`` also compiles the parallel twins, by running inputs large enough to use
    them.
    """
    from . import api, engine

    started = time.perf_counter()
    rows = engine.PARALLEL_MIN_ELEMENTS // 4 if parallel else 8
    for dtype in (np.float32, np.float64):
        for n in sorted({8, rows}):
            x = np.zeros((n, 4), dtype=dtype)
            y = np.zeros(n, dtype=np.int64)
            for reduction in ("mean", "none"):
                api.cross_entropy(x, y, reduction=reduction)
                api.cross_entropy(np.asfortranarray(x), y, reduction=reduction)  # class by class
                api.cross_entropy(x, np.full((n, 4), 0.25, dtype=dtype), reduction=reduction)
                for labels in (x[:, 0], y):  # float targets, and int64 labels read in place
                    api.binary_cross_entropy_with_logits(x[:, 0], labels, reduction=reduction)
                    api.binary_cross_entropy(x[:, 0] + 0.5, labels, reduction=reduction)
            api.log_loss(np.arange(n) % 2, np.full((n, 2), 0.5, dtype=dtype))
    return time.perf_counter() - started
