"""Which rows of a batch hold a null: a null row, or a null inside a row's list of values.

Rows with a null in the predictions, target or weight are skipped and counted (or rejected), so
the kernels only ever see complete rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def null_rows(batch: pa.RecordBatch, names: list[str]) -> np.ndarray | None:
    """Boolean mask of the rows of ``batch`` with a null in any of the columns ``names`` (a null
    row, or a null inside a row's list); ``None`` if there is none."""
    mask = None
    for name in names:
        column = batch.column(name)
        bad = np.asarray(column.is_null()) if column.null_count else None
        if _is_list(column.type):  # a tensor column (an extension type) holds no nulls inside
            inner = _inner_nulls(column)
            if inner is not None:
                bad = inner if bad is None else bad | inner
        if bad is not None:
            mask = bad if mask is None else mask | bad
    return mask if mask is not None and mask.any() else None


def _inner_nulls(column: pa.Array) -> np.ndarray | None:
    """Which rows of a list column hold a null value (``None`` if none does).

    Read from the column's own offsets into its whole values array, which is how a slice
    (a batch after the first) and a null row backed by values address them: ``flatten()``
    skips a null row's values, so its positions do not line up with the offsets.
    """
    if pa.types.is_fixed_size_list(column.type):
        size = column.type.list_size
        offsets = (np.arange(len(column) + 1, dtype=np.int64) + column.offset) * size
    else:
        offsets = np.asarray(column.offsets)
    if not len(column):
        return None
    first, last = int(offsets[0]), int(offsets[-1])
    values = column.values.slice(first, last - first)
    if not values.null_count:
        return None
    # nulls before each offset: a row's count is the difference at its two ends
    before = np.concatenate(([0], np.cumsum(np.asarray(values.is_null()), dtype=np.int64)))
    return before[offsets[1:] - first] > before[offsets[:-1] - first]
