"""Group ids of integer-like keys through a compiled hash table (:mod:`.kernels.key_table`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .kernels import key_table as kernels


def is_integer_like(t: pa.DataType) -> bool:
    """Whether a key column's values are integers underneath: integers, dates, times,
    timestamps, durations (each value its own key, no NaN to gather)."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_duration(t)
    )


def key_bits(column: pa.Array) -> np.ndarray:
    """An integer-like column's values as int64 (a null's slot holds 0): the same key, the same
    number, whatever its type (uint64 by its bits)."""
    t = column.type
    if pa.types.is_uint64(t) or (not pa.types.is_integer(t) and t.bit_width == 64):
        values = column.view(pa.int64())
    elif pa.types.is_integer(t):
        values = column.cast(pa.int64())
    else:  # 32-bit dates and times
        values = column.view(pa.int32()).cast(pa.int64())
    if values.null_count:
        values = values.fill_null(0)
    return np.asarray(values)


def _empty(slots: int) -> tuple[np.ndarray, int]:
    """An empty table of ``slots`` (a power of two): each slot's key and id (-1: empty), and the
    hash's shift."""
    table = np.zeros((slots, 2), dtype=np.int64)
    table[:, 1] = -1
    return table, 64 - (slots.bit_length() - 1)


class KeyTable:
    """The ids of the integer keys met so far, in a table that grows to stay at most half full
    (sized by the keys, not the rows of a batch: 100,000 keys take 4 MB, which mostly stays in
    the cache)."""

    def __init__(self):
        self.slots, self.shift = _empty(1 << 10)
        self.count = 0

    def ids(
        self, values: np.ndarray, valid: np.ndarray | None, next_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, new_rows)``: each row's id (``-1`` for a null), and the rows where keys new to
        the table first appear (their ids are ``next_id``, ``next_id + 1``, ... in that order)."""
        ids = np.empty(values.shape[0], dtype=np.int32)
        new_rows = np.empty(values.shape[0], dtype=np.int64)
        mask = np.empty(0, dtype=np.bool_) if valid is None else valid
        done = total = 0
        while True:
            limit = self.slots.shape[0] // 2 - self.count
            done, added = kernels.find_ids(
                values, mask, self.slots, self.shift, done, limit, next_id + total, ids, new_rows[total:]
            )
            self.count += added
            total += added
            if done == values.shape[0]:
                return ids, new_rows[:total]
            slots, shift = _empty(2 * self.slots.shape[0])
            kernels.rehash(self.slots, shift, slots)
            self.slots, self.shift = slots, shift
