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


@vector_jit
def first_bad_target(targets, num_classes, ignore_index):
    """Index of the first target outside ``[0, num_classes)`` that is not ``ignore_index``, or -1."""
    for i in range(targets.shape[0]):
        t = targets[i]
        if t != ignore_index and (t < 0 or t >= num_classes):
            return i
    return -1
