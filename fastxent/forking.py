"""Forked children of a process that ran a parallel kernel: serial kernels there.

GNU OpenMP (Numba's ``omp`` threading layer, the one it picks on Linux) cannot start a parallel
region in a child forked after the parent started its thread pool: the child prints
"Terminating: fork() called from a process already using GNU OpenMP" and dies, and
``multiprocessing.Pool.map`` waits forever. That is "score in the notebook, then
``Pool.map(fx.score, files)``", and every PyTorch ``DataLoader`` worker. A child forked after a
parallel kernel ran under ``omp`` therefore runs only the serial kernels, which give the same
bits (sums are fixed-order per block whatever the threads) on one core per worker, which is what
a pool of workers wants anyway. ``spawn`` and ``forkserver`` children start fresh and are not
touched.
"""

from __future__ import annotations

import os

import numba

from . import engine


def _after_fork_in_child() -> None:
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran in the parent: the child may start its own pool
        return
    if layer == "omp":
        engine.serial_only("a child forked after its parent ran a parallel kernel under GNU OpenMP")


os.register_at_fork(after_in_child=_after_fork_in_child)
