"""Group ids of string and binary keys through a compiled hash table (:mod:`.kernels.string_keys`).

A key column of plain strings (pandas, Polars, DuckDB, CSV, a Parquet column chunk whose
dictionary fell back to plain pages) is looked up row by row in a table that persists across
batches, rather than dictionary-encoded by Arrow batch by batch and each batch's dictionary
looked up again: a split of 3 keys over 20M rows in memory, 0.3 s of hashing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .kernels import string_keys as kernels
from .key_table import empty_table

#: Bytes and keys the table has room for at first; both double when full.
_FIRST_BYTES = 1 << 12
_FIRST_KEYS = 1 << 6
_NO_NULLS = np.empty(0, dtype=np.uint8)
_NO_BYTES = np.empty(0, dtype=np.uint8)


def is_string_like(t: pa.DataType) -> bool:
    """Whether a key column holds strings or bytes, of any Arrow layout."""
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
    )


def with_offsets(column: pa.Array) -> pa.Array:
    """A view column (``string_view``, ``binary_view``: Polars' strings) cast to the large
    offsets layout (one copy); other columns as they are. (A source's batches come with
    ``string_view`` cast already: :func:`~.io.labels.plain_label_type`.)"""
    t = column.type
    if pa.types.is_string_view(t):
        return column.cast(pa.large_string())
    if pa.types.is_binary_view(t):
        return column.cast(pa.large_binary())
    return column


def key_spans(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(starts, ends, data, validity, bit_offset)`` of a string or binary column in an offsets
    layout (:func:`with_offsets`): each row's bytes ``data[starts[i]:ends[i]]``, the validity
    bitmap read from bit ``bit_offset`` (empty without nulls)."""
    t, n = column.type, len(column)
    buffers = column.buffers()
    bits = np.frombuffer(buffers[0], dtype=np.uint8) if column.null_count else _NO_NULLS
    wide = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32, count=column.offset + n + 1)
    offsets = offsets[column.offset :]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else _NO_BYTES
    return offsets[:-1], offsets[1:], data, bits, column.offset


class StringKeyTable:
    """The ids of the string (or binary) keys met so far: their bytes, one after another, and
    a hash table of them that grows to stay at most half full."""

    def __init__(self):
        self.slots, self.shift = empty_table(1 << 7, kernels.SLOT_FIELDS)
        self.key_offsets = np.zeros(_FIRST_KEYS + 1, dtype=np.int64)
        self.key_bytes = np.empty(_FIRST_BYTES, dtype=np.uint8)
        self.key_ids = np.empty(_FIRST_KEYS, dtype=np.int32)
        self.count = 0

    def add(self, key: bytes, key_id: int) -> None:
        """Know ``key`` (not known yet) as group ``key_id``: a key numbered by another path."""
        data = np.frombuffer(key, dtype=np.uint8)
        spans = np.array([0], dtype=np.int64), np.array([data.shape[0]], dtype=np.int64)
        ids = np.empty(1, dtype=np.int32)
        new_rows = np.empty(1, dtype=np.int64)
        while self._find(*spans, data, _NO_NULLS, 0, 0, key_id, ids, new_rows)[0] == 0:
            pass

    def ids(self, spans: tuple, next_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, new_rows)`` of a column's :func:`key_spans`: each row's id (``-1`` for a
        null), and the rows where keys new to the table first appear (their ids are
        ``next_id``, ``next_id + 1``, ... in that order; :meth:`keys` gives them)."""
        starts, ends, data, validity, bit_offset = spans
        n = starts.shape[0]
        ids = np.empty(n, dtype=np.int32)
        new_rows = np.empty(n, dtype=np.int64)
        done = total = 0
        while done < n:
            done, added = self._find(
                starts, ends, data, validity, bit_offset, done, next_id + total, ids, new_rows[total:]
            )
            total += added
        return ids, new_rows[:total]

    def keys(self, first: int, text: bool) -> list:
        """The keys numbered ``first`` on (by the table, in order), as ``str`` (``text``) or
        ``bytes``: the bytes it keeps, so no column is read again."""
        offsets, data = self.key_offsets, self.key_bytes
        raw = [data[offsets[k] : offsets[k + 1]].tobytes() for k in range(first, self.count)]
        return [b.decode() for b in raw] if text else raw

    def _find(
        self, starts, ends, data, validity, bit_offset, start, next_id, ids, new_rows
    ) -> tuple[int, int]:
        """One call of the kernel from row ``start``, the table grown first where it stopped
        for room; ``(rows done, keys added)``."""
        done, added = kernels.find_string_ids(
            starts,
            ends,
            data,
            validity,
            bit_offset,
            start,
            self.slots,
            self.shift,
            self.key_offsets,
            self.key_bytes,
            self.count,
            self.slots.shape[0] // 2,
            self.key_ids,
            next_id,
            ids,
            new_rows,
        )
        self.count += added
        if done < starts.shape[0]:  # stopped for room: the row's key is the one to fit
            self._grow(int(ends[done] - starts[done]))
        return done, added

    def _grow(self, key_length: int) -> None:
        """Room for one more key of ``key_length`` bytes: whichever of the slots, the keys'
        offsets and ids, and their bytes is full doubles."""
        used = int(self.key_offsets[self.count])
        if used + key_length > self.key_bytes.shape[0]:
            grown = np.empty(max(2 * self.key_bytes.shape[0], used + key_length), dtype=np.uint8)
            grown[:used] = self.key_bytes[:used]
            self.key_bytes = grown
        if self.count + 1 >= self.key_offsets.shape[0]:
            size = 2 * self.key_ids.shape[0]
            offsets = np.zeros(size + 1, dtype=np.int64)
            offsets[: self.count + 1] = self.key_offsets[: self.count + 1]
            ids = np.empty(size, dtype=np.int32)
            ids[: self.count] = self.key_ids[: self.count]
            self.key_offsets, self.key_ids = offsets, ids
        if self.count + 1 > self.slots.shape[0] // 2:
            self.slots, self.shift = empty_table(2 * self.slots.shape[0], kernels.SLOT_FIELDS)
            kernels.place_keys(self.key_offsets, self.key_bytes, self.count, self.shift, self.slots)
