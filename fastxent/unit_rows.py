"""The scored rows of the unit being read, kept for the group-by until the unit ends.

A group's blocks are cut in its own rows of each unit of the source (:mod:`.kernels.groups`).
Folded batch by batch, each of 100,000 groups carries an open block from batch to batch (lanes
of partial sums, 448 bytes a group) and every unit's end closes them all; folded once the unit
has ended, each group's blocks are summed straight from its rows. Keeping a unit's rows costs
24 bytes a row; a unit larger than the limit is folded as it comes, its open blocks carried.
"""

from __future__ import annotations

import numpy as np

#: The most rows kept: 24 MB (a row's group id, loss, denominator and marks), which holds a
#: Parquet row group as pyarrow writes them by default (1,048,576 rows).
UNIT_ROWS_KEPT = 1 << 20


class UnitRows:
    """Rows ``(gid, loss, den, marks)`` added in order, taken as one batch; at most ``limit``
    rows. Its arrays are kept from unit to unit (fresh megabytes cost a page fault every 4 KB)."""

    def __init__(self, limit: int = UNIT_ROWS_KEPT):
        self.limit = limit
        self.rows = 0
        self._arrays = _empty(0)

    def add(self, gid: np.ndarray, loss: np.ndarray, den: np.ndarray, marks: np.ndarray) -> bool:
        """Keep a batch's rows (copied: the caller reuses its arrays); ``False``, keeping
        nothing, if they would pass the limit."""
        n = gid.shape[0]
        end = self.rows + n
        if end > self.limit:
            return False
        if end > self._arrays[0].shape[0]:
            grown = _empty(min(max(end, 2 * self._arrays[0].shape[0]), self.limit))
            for new, old in zip(grown, self._arrays, strict=True):
                new[: self.rows] = old[: self.rows]
            self._arrays = grown
        for kept, values in zip(self._arrays, (gid, loss, den, marks), strict=True):
            kept[self.rows : end] = values
        self.rows = end
        return True

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rows kept, in order (views, valid until the next :meth:`add`); none are kept after."""
        rows, self.rows = self.rows, 0
        return tuple(a[:rows] for a in self._arrays)

    def __getstate__(self):
        return {
            "limit": self.limit,
            "rows": self.rows,
            "_arrays": tuple(a[: self.rows].copy() for a in self._arrays),
        }


def _empty(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.empty(n, dtype=np.int32),
        np.empty(n),
        np.empty(n),
        np.empty(n, dtype=np.int32),
    )
