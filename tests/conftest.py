"""The suite's shared set-up: each of the kernels that many test files call compiled once per run.

Most of a cold run is Numba compiling, and the test processes share the on-disk kernel cache but
not their compilations: two processes that both reach the multiclass drivers before either has
cached them compile them twice (a cold two-process run compiled three of them twice: 88 of its
730 s of compiling). So each pytest-xdist worker first compiles its share of them, the workers
splitting the list, and every later call, in any worker, loads them from the cache. A warm cache
makes this a few loads.
"""

from __future__ import annotations

import os

import numpy as np

#: The parallel multiclass drivers (rows of 100 classes, > engine.PARALLEL_MIN_ELEMENTS in all):
#: 25-40 s each to compile, on two cores one process each. float16 rows are read as their bits;
#: float16 columns are converted to float32 first, so they share float32's column driver.
SHARED_KERNELS = [
    (np.float32, "C"),
    (np.float64, "C"),
    (np.float16, "C"),
    (np.float32, "F"),
    (np.float64, "F"),
]


def _compile(dtype, order: str) -> None:
    import fastxent as fx

    rng = np.random.default_rng(0)
    x = np.asarray(rng.normal(0, 3, (4129, 100)), dtype=dtype, order=order)
    fx.cross_entropy(x, rng.integers(0, 100, x.shape[0]))


def pytest_sessionstart(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return  # one process compiles nothing twice; the simulator run tests the GPU kernels
    index, workers = int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    for dtype, order in SHARED_KERNELS[index::workers]:
        _compile(dtype, order)
