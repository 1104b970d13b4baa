"""An open-addressing hash table of 64-bit group keys, compiled: each row's group id in one pass.

Integer-like group keys (integers, dates, times, timestamps, durations) are looked up by their
64-bit values, row by row, in a table that persists across batches: a batch of 131,072 rows
with 100,000 distinct keys cost a dictionary encoding and a hash set of every known key rebuilt
by Arrow's ``index_in`` (about 7 ms a batch); here it is one probe a row. Keys new to the table
get the next ids, in the order their first rows come. While the keys met span few values
(:data:`fastxent.key_table.DENSE_SPAN`), the table is direct instead: each key's id at its
offset from the smallest key (:func:`find_dense_ids`).
"""

from __future__ import annotations

import numpy as np

from .jit import strict_jit

#: Fibonacci hashing's multiplier (2**64 / golden ratio): spreads consecutive keys over the table.
MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@strict_jit(forceinline=True)
def slot_of(key, shift):
    """The slot of a 64-bit ``key`` (or hash) in a table of ``2**(64 - shift)`` slots: the top
    bits of ``key * MULTIPLIER``. Inlined where it is called (the string table's lookups too)."""
    return np.int64((np.uint64(key) * MULTIPLIER) >> np.uint64(shift))


@strict_jit
def find_ids(values, valid, slots, shift, start, limit, next_id, ids, new_rows):
    """``ids[i]``: the id of ``values[i]``, from row ``start`` on (``-1`` where ``valid`` is not
    empty and ``valid[i]`` is false: a null); a value not in the table is added with id
    ``next_id``, ``next_id + 1``, ... and its row recorded in ``new_rows`` (from its start).

    ``slots`` ``(2**(64 - shift), 2)`` holds each slot's key and id side by side (one cache line
    a probe; ``id == -1``: empty). The table takes at most ``limit`` new keys: the loop stops
    before the row that would add one more, for the caller to grow the table and go on from
    there. Returns ``(rows done, keys added)``.
    """
    mask = slots.shape[0] - 1
    checking = valid.shape[0] > 0
    added = 0
    for i in range(start, values.shape[0]):
        if checking and not valid[i]:
            ids[i] = -1
            continue
        key = values[i]
        s = slot_of(key, shift)
        while slots[s, 1] >= 0 and slots[s, 0] != key:
            s = (s + 1) & mask
        if slots[s, 1] < 0:
            if added == limit:
                return i, added
            slots[s, 0] = key
            slots[s, 1] = next_id + added
            new_rows[added] = i
            added += 1
        ids[i] = slots[s, 1]
    return values.shape[0], added


@strict_jit
def place(keys, ids, shift, slots):
    """Put each of ``keys`` (distinct, none in the table) with its id ``ids[k]`` into the hash
    table ``slots`` (``2**(64 - shift)`` slots, see :func:`find_ids`): a table grown, or made
    from a direct one."""
    mask = slots.shape[0] - 1
    for k in range(keys.shape[0]):
        key = keys[k]
        s = slot_of(key, shift)
        while slots[s, 1] >= 0:
            s = (s + 1) & mask
        slots[s, 0] = key
        slots[s, 1] = ids[k]


@strict_jit
def key_range(values, valid):
    """``(smallest, largest)`` of ``values`` (but where ``valid`` is not empty and
    ``valid[i]`` is false); ``(1, 0)`` when there is none."""
    checking = valid.shape[0] > 0
    low, high = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for i in range(values.shape[0]):
        if not checking or valid[i]:
            low = min(low, values[i])
            high = max(high, values[i])
    if low > high:
        return np.int64(1), np.int64(0)
    return low, high


@strict_jit
def find_dense_ids(values, valid, low, dense, next_id, ids, new_rows):
    """:func:`find_ids` by a direct table: ``dense[v - low]`` is the id of key ``v`` (``-1``:
    none yet), and every (valid) value lies in ``[low, low + len(dense))``
    (:func:`key_range`). One load a row from a table of 4 bytes a value (100,000 dense keys:
    400 KB, which stays in a core's own cache), and no probing. Returns how many keys were
    added."""
    checking = valid.shape[0] > 0
    added = 0
    for i in range(values.shape[0]):
        if checking and not valid[i]:
            ids[i] = -1
            continue
        at = values[i] - low
        found = dense[at]
        if found < 0:
            found = next_id + added
            dense[at] = found
            new_rows[added] = i
            added += 1
        ids[i] = found
    return added


#: Up to this many dictionary entries, :func:`dictionary_ids` picks each row's id by selects
#: (a split's 3 keys: 131,072 rows in 0.02 ms rather than 0.12 by a load from the mapping).
SELECTED_ENTRIES = 4


@strict_jit
def _selected_ids(codes, mapping, out):
    """:func:`dictionary_ids` of codes without nulls into a mapping of 1 to
    :data:`SELECTED_ENTRIES` entries: a select per entry, which vectorises where a load at each
    row's code does not. A code outside the mapping gets its first entry, as there."""
    size = mapping.shape[0]
    first = mapping[0]
    second = mapping[min(1, size - 1)]
    third = mapping[min(2, size - 1)]
    fourth = mapping[min(3, size - 1)]
    outside = 0
    for i in range(codes.shape[0]):
        code = np.int64(codes[i])
        outside += np.uint64(code) >= np.uint64(size)
        found = first
        found = second if code == 1 and size > 1 else found
        found = third if code == 2 and size > 2 else found
        found = fourth if code == 3 and size > 3 else found
        out[i] = found
    return outside


@strict_jit
def dictionary_ids(codes, validity, offset, mapping, out):
    """``out[i] = mapping[codes[i]]``: each row's group id from its dictionary code, in one pass.

    ``validity`` is the codes' Arrow validity bitmap (bit ``offset + i``, least significant bit
    first; empty when no code is null): a null row gets the mapping's last entry, the null
    key's slot. Returns how many valid codes fall outside the mapping (0 unless the indices are
    corrupt); their rows get the first entry.
    """
    if validity.shape[0] == 0 and 0 < mapping.shape[0] <= SELECTED_ENTRIES:
        return _selected_ids(codes, mapping, out)
    size = np.uint64(mapping.shape[0])
    null_code = np.int64(mapping.shape[0]) - 1
    outside = 0
    if validity.shape[0] == 0:
        for i in range(codes.shape[0]):
            code = np.int64(codes[i])
            inside = np.uint64(code) < size  # a negative code wraps to a large one
            outside += not inside
            out[i] = mapping[code if inside else 0]
    else:
        for i in range(codes.shape[0]):
            bit = offset + i
            code = np.int64(codes[i]) if (validity[bit >> 3] >> (bit & 7)) & 1 else null_code
            inside = np.uint64(code) < size
            outside += not inside
            out[i] = mapping[code if inside else 0]
    return outside
