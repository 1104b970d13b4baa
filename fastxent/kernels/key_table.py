"""An open-addressing hash table of 64-bit group keys, compiled: each row's group id in one pass.

Integer-like group keys (integers, dates, times, timestamps, durations) are looked up by their
64-bit values, row by row, in a table that persists across batches: a batch of 131,072 rows
with 100,000 distinct keys cost a dictionary encoding and a hash set of every known key rebuilt
by Arrow's ``index_in`` (about 7 ms a batch); here it is one probe a row. Keys new to the table
get the next ids, in the order their first rows come.
"""

from __future__ import annotations

import numpy as np

from .jit import strict_jit

#: Fibonacci hashing's multiplier (2**64 / golden ratio): spreads consecutive keys over the table.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@strict_jit
def _slot(key, shift):
    return np.int64((np.uint64(key) * _MULTIPLIER) >> np.uint64(shift))


@strict_jit
def find_ids(values, valid, slot_keys, slot_ids, shift, next_id, ids, new_rows):
    """``ids[i]``: the id of ``values[i]`` (``-1`` where ``valid`` is not empty and ``valid[i]``
    is false: a null); a value not in the table is added with id ``next_id``, ``next_id + 1``,
    ... and its row recorded in ``new_rows``. ``slot_ids[s] == -1`` marks an empty slot; the
    table (``2**(64 - shift)`` slots) must have room for every row. Returns the new keys' count."""
    mask = slot_keys.shape[0] - 1
    checking = valid.shape[0] > 0
    added = 0
    for i in range(values.shape[0]):
        if checking and not valid[i]:
            ids[i] = -1
            continue
        key = values[i]
        s = _slot(key, shift)
        while slot_ids[s] >= 0 and slot_keys[s] != key:
            s = (s + 1) & mask
        if slot_ids[s] < 0:
            slot_keys[s] = key
            slot_ids[s] = next_id + added
            new_rows[added] = i
            added += 1
        ids[i] = slot_ids[s]
    return added


@strict_jit
def rehash(slot_keys, slot_ids, shift, new_keys, new_ids):
    """Move every entry of a table into an empty larger one (``new_*``, ``2**(64 - shift)`` slots)."""
    mask = new_keys.shape[0] - 1
    for s in range(slot_keys.shape[0]):
        if slot_ids[s] < 0:
            continue
        key = slot_keys[s]
        t = _slot(key, shift)
        while new_ids[t] >= 0:
            t = (t + 1) & mask
        new_keys[t] = key
        new_ids[t] = slot_ids[s]
