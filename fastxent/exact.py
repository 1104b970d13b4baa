"""An exact, order-independent float64 sum (Shewchuk's expansion), rounded once when read.

Accumulators keep their loss and denominator totals in these, so block sums can be added in any
order, on any worker, and merged without changing a bit.
"""

from __future__ import annotations

import numpy as np

from .kernels.blocks import exact_add, expansion_value
from .kernels.codes import EXPANSION_SIZE


class ExactSum:
    """An exact, order-independent sum of float64 values, rounded once when read."""

    __slots__ = ("terms", "count", "specials")

    def __init__(self):
        self.terms = np.zeros(EXPANSION_SIZE)
        self.count = 0
        self.specials = np.zeros(3, dtype=np.int64)

    def add(self, values) -> None:
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if values.size:
            self.count = exact_add(self.terms, self.count, self.specials, values)

    def merge(self, other: ExactSum) -> None:
        self.add(other.terms[: other.count])
        self.specials += other.specials

    def copy(self) -> ExactSum:
        new = ExactSum()
        new.terms[:] = self.terms
        new.count = self.count
        new.specials[:] = self.specials
        return new

    def value(self) -> float:
        return expansion_value(self.terms, self.count, self.specials)

    def __getstate__(self):
        return self.terms[: self.count].copy(), self.specials.copy()

    def __setstate__(self, state):
        terms, specials = state
        self.terms = np.zeros(EXPANSION_SIZE)
        self.terms[: terms.size] = terms
        self.count = terms.size
        self.specials = specials
