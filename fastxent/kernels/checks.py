"""Validation scans run before any kernel: Numba does no bounds checks, so a target outside
``[0, C)`` must be caught here, never read through."""

from __future__ import annotations

from numba import prange

from .jit import serial_and_parallel, vector_jit


def _count_outside_unit(values):
    """How many values are outside ``[0, 1]`` or NaN (a branch-free, vectorised count)."""
    bad = 0
    for i in prange(values.shape[0]):
        v = values[i]
        bad += not (v >= 0.0 and v <= 1.0)
    return bad


COUNT_OUTSIDE_UNIT = serial_and_parallel(_count_outside_unit)


@vector_jit
def first_outside_unit(values):
    """Index of the first value outside ``[0, 1]`` or NaN, or -1."""
    for i in range(values.shape[0]):
        v = values[i]
        if not (v >= 0.0 and v <= 1.0):
            return i
    return -1


def _count_bad_targets(targets, num_classes, ignore_index):
    """How many targets are outside ``[0, num_classes)`` and not ``ignore_index`` (a branch-free,
    vectorised count: the early-exit search below stays scalar, 0.55 ns a target, 22 ms of a
    40M-row batch on one core)."""
    bad = 0
    for i in prange(targets.shape[0]):
        t = targets[i]
        bad += (t != ignore_index) & ((t < 0) | (t >= num_classes))
    return bad


COUNT_BAD_TARGETS = serial_and_parallel(_count_bad_targets)


@vector_jit
def first_bad_target(targets, num_classes, ignore_index):
    """Index of the first target outside ``[0, num_classes)`` that is not ``ignore_index``, or -1."""
    for i in range(targets.shape[0]):
        t = targets[i]
        if t != ignore_index and (t < 0 or t >= num_classes):
            return i
    return -1
