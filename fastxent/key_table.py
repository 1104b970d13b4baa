"""Group ids of integer-like keys through a compiled table: direct while the keys span few values,
hashed beyond (:mod:`.kernels.key_table`)."""

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


#: Keys are looked up in a direct table (:func:`~.kernels.key_table.find_dense_ids`) while the
#: keys met span at most this many values (ids numbered from 0, day numbers, small codes): 4 MB of
#: ids at most, and 100,000 dense keys take 400 KB, which stay in a core's own cache where the hash
#: table's 4 MB do not (scoring 20M rows by 100,000 users: 0.29 ms a batch of 131,072 rows
#: against 2.1, 0.045 s of the run against 0.325). Keys spread wider go to the hash table, for good.
DENSE_SPAN = 1 << 20
#: The smallest direct table: a few keys close together cost one allocation.
_FIRST_DENSE = 1 << 10
_INT64_MIN = -(1 << 63)


def empty_table(slots: int, fields: int = 2) -> tuple[np.ndarray, int]:
    """An empty hash table of ``slots`` (a power of two) rows of ``fields`` int64: field 1 of
    every slot -1 (empty; the integer table's slots are a key and its id, the string table's
    :data:`~.kernels.string_keys.SLOT_FIELDS`), and the hash's shift
    (:func:`~.kernels.key_table.slot_of`)."""
    table = np.zeros((slots, fields), dtype=np.int64)
    table[:, 1] = -1
    return table, 64 - (slots.bit_length() - 1)


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


class KeyTable:
    """The ids of the integer keys met so far: a direct table of ids (``dense[key - low]``)
    while the keys span at most :data:`DENSE_SPAN` values, then a hash table that grows to stay
    at most half full (sized by the keys, not the rows of a batch: 100,000 keys take 4 MB)."""

    def __init__(self):
        self.dense: np.ndarray | None = np.full(0, -1, dtype=np.int32)
        self.low = 0  # the key of dense[0]
        self.slots, self.shift = empty_table(1 << 10)
        self.count = 0

    def ids(
        self, values: np.ndarray, valid: np.ndarray | None, next_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, new_rows)``: each row's id (``-1`` for a null), and the rows where keys new to
        the table first appear (their ids are ``next_id``, ``next_id + 1``, ... in that order)."""
        ids = np.empty(values.shape[0], dtype=np.int32)
        new_rows = np.empty(values.shape[0], dtype=np.int64)
        mask = np.empty(0, dtype=np.bool_) if valid is None else valid
        if self.dense is not None:
            low, high = (int(v) for v in kernels.key_range(values, mask))
            if self._cover(low, high):
                added = kernels.find_dense_ids(values, mask, self.low, self.dense, next_id, ids, new_rows)
                self.count += added
                return ids, new_rows[:added]
            self._to_hash()
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
            self._rehash(2 * self.slots.shape[0])

    def _cover(self, low: int, high: int) -> bool:
        """Make the direct table cover the keys ``[low, high]`` (none if ``low > high``); False
        if it would span more than :data:`DENSE_SPAN` values. It grows to a power of two (or the
        limit), its room on the side the keys grew to: keys that creep up batch by batch (days)
        copy the table a few times, not every batch."""
        dense = self.dense
        if low > high:
            return True
        if dense.shape[0] == 0:
            self.low = low
            top = low - 1
        else:
            top = self.low + dense.shape[0] - 1
            if low >= self.low and high <= top:
                return True
        new_low, new_top = min(low, self.low), max(high, top)
        needed = new_top - new_low + 1
        if needed > DENSE_SPAN:
            return False
        size = min(max(_power_of_two_at_least(needed), _FIRST_DENSE), DENSE_SPAN)
        if low < self.low:  # room below
            new_low = max(new_top - size + 1, _INT64_MIN)
        grown = np.full(size, -1, dtype=np.int32)
        at = self.low - new_low
        grown[at : at + dense.shape[0]] = dense
        self.dense, self.low = grown, new_low
        return True

    def _to_hash(self) -> None:
        """Move the direct table's keys into the hash table, which takes every key from now on."""
        known = np.flatnonzero(self.dense >= 0)
        keys = known.astype(np.int64) + np.int64(self.low)
        ids = self.dense[known].astype(np.int64)
        self.dense = None
        self._rehash(max(_power_of_two_at_least(2 * keys.shape[0] + 1), self.slots.shape[0]), keys, ids)

    def _rehash(self, size: int, keys: np.ndarray | None = None, ids: np.ndarray | None = None) -> None:
        """A hash table of ``size`` slots holding the table's keys (or ``keys`` with ``ids``)."""
        if keys is None:
            live = self.slots[:, 1] >= 0
            keys, ids = self.slots[live, 0], self.slots[live, 1]
        self.slots, self.shift = empty_table(size)
        kernels.place(keys, ids, self.shift, self.slots)
