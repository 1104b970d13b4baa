"""The integer key table: ids in order of first appearance, whether the keys sit in its direct
table (they span at most DENSE_SPAN values) or its hash table (wider), and across the move from
one to the other."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastxent.key_table import DENSE_SPAN, KeyTable

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


class Reference:
    """Ids numbered in order of first appearance, by a Python dict."""

    def __init__(self):
        self.ids: dict[int, int] = {}

    def batch(self, values, valid, next_id):
        ids, new_rows = [], []
        for i, v in enumerate(values.tolist()):
            if valid is not None and not valid[i]:
                ids.append(-1)
                continue
            if v not in self.ids:
                self.ids[v] = next_id + len(new_rows)
                new_rows.append(i)
            ids.append(self.ids[v])
        return np.array(ids, dtype=np.int32), np.array(new_rows, dtype=np.int64)


def check_batches(batches, table=None):
    """Feed ``(values, valid)`` batches to a table and the reference; every id and new row
    equal. Returns the table."""
    table = table or KeyTable()
    reference = Reference()
    next_id = 0
    for values, valid in batches:
        values = np.asarray(values, dtype=np.int64)
        ids, new_rows = table.ids(values, valid, next_id)
        want_ids, want_rows = reference.batch(values, valid, next_id)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(new_rows, want_rows)
        next_id += new_rows.size
        assert table.count == len(reference.ids)
    return table


def test_dense_keys_stay_in_the_direct_table():
    rng = np.random.default_rng(0)
    table = check_batches([(rng.integers(0, 100_000, 20_000), None) for _ in range(6)])
    assert table.dense is not None and table.dense.shape[0] <= DENSE_SPAN


@pytest.mark.parametrize("step", [1, 37, 5000, -1, -5000])
def test_keys_that_creep_up_or_down_batch_by_batch(step):
    """Day numbers and the like: the direct table grows (with room on the side the keys grow
    to) and keeps every id."""
    table = check_batches([(np.arange(500) * np.sign(step) + k * step * 500, None) for k in range(40)])
    spread = 40 * abs(step) * 500
    assert (table.dense is not None) == (spread <= DENSE_SPAN)


@pytest.mark.parametrize("first_wide", [True, False])
def test_keys_spreading_beyond_the_span_move_to_the_hash_table_and_keep_their_ids(first_wide):
    rng = np.random.default_rng(1)
    narrow = [(rng.integers(-50, 3000, 4000), None) for _ in range(3)]
    wide = [(rng.integers(-(2**40), 2**40, 4000), None), (rng.integers(-50, 3000, 4000), None)]
    table = check_batches(wide + narrow if first_wide else narrow + wide)
    assert table.dense is None
    check_batches([(rng.integers(0, 10, 100), None)], KeyTable())  # a fresh table starts direct


@pytest.mark.parametrize(
    "values",
    [
        [INT64_MIN, INT64_MIN + 5, INT64_MIN],
        [INT64_MAX, INT64_MAX - 3, INT64_MAX],
        [INT64_MIN, INT64_MAX, 0],
        [INT64_MAX - DENSE_SPAN + 1, INT64_MAX],
        [INT64_MIN + DENSE_SPAN - 1, INT64_MIN],
    ],
)
def test_keys_at_the_ends_of_int64(values):
    """The direct table's room may lie beyond the largest int64 or be cut at the smallest; keys
    a whole int64 apart go to the hash table."""
    values = np.array(values, dtype=np.int64)
    table = check_batches([(values, None), (values[::-1], None), (values + 0, None)])
    assert (table.dense is not None) == (int(values.max()) - int(values.min()) < DENSE_SPAN)


@pytest.mark.parametrize("end, step", [(INT64_MIN, 1), (INT64_MAX, -1)])
def test_the_direct_table_grows_towards_the_ends_of_int64(end, step):
    """Keys met one batch at a time, each nearer an end of int64: the table's room is cut at
    the end."""
    batches = [(np.array([end + step * k]), None) for k in (10, 3000, 1, 0, 70_000)]
    table = check_batches(batches)
    assert table.dense is not None


def test_nulls_get_minus_one_and_their_stored_values_are_no_keys():
    """A null's slot holds 0 (:func:`~fastxent.key_table.key_bits`): it neither becomes a key
    nor widens the direct table."""
    values = np.array([2**50, 0, 2**50 + 7, 0], dtype=np.int64)
    valid = np.array([True, False, True, False])
    table = check_batches([(values, valid), (np.zeros(3, np.int64), np.zeros(3, np.bool_))])
    assert table.dense is not None and table.count == 2


def test_a_table_pickled_mid_stream_goes_on_with_the_same_ids():
    rng = np.random.default_rng(2)
    batches = [rng.integers(0, 900, 1000), rng.integers(0, 2000, 1000), rng.integers(0, 2**45, 50)]
    straight, copied = KeyTable(), KeyTable()
    next_id = 0
    for k, values in enumerate(batches):
        if k == 1:
            copied = pickle.loads(pickle.dumps(copied))
        ids, new_rows = straight.ids(values, None, next_id)
        copied_ids, copied_rows = copied.ids(values, None, next_id)
        np.testing.assert_array_equal(copied_ids, ids)
        np.testing.assert_array_equal(copied_rows, new_rows)
        next_id += new_rows.size
    assert copied.dense is None and copied.count == straight.count


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.tuples(
            st.sampled_from([0, -(2**20), 2**40, INT64_MIN, INT64_MAX - 2**21]),
            st.sampled_from([1, 3, 1000, DENSE_SPAN // 2, DENSE_SPAN, 2**30]),
            st.integers(0, 300),
            st.integers(0, 2**32 - 1),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_batches_of_keys_get_the_ids_of_first_appearance(batches):
    fed = []
    for center, spread, rows, seed, with_nulls in batches:
        rng = np.random.default_rng(seed)
        low = max(center, INT64_MIN)
        high = min(center + spread, INT64_MAX)
        values = rng.integers(low, high, rows, endpoint=True, dtype=np.int64)
        valid = rng.random(rows) < 0.8 if with_nulls else None
        if valid is not None:
            values[~valid] = 0
        fed.append((values, valid))
    check_batches(fed)


@pytest.mark.parametrize("entries", [1, 2, 3, 4, 5, 40])
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_dictionary_ids_map_every_code_and_count_those_outside(entries, dtype):
    """Each row's id is its code's mapping entry, by selects up to SELECTED_ENTRIES entries and by
    loads beyond, for every width of code; codes outside the mapping (negative, or past it) are
    counted and take the first entry; with a validity bitmap, a null takes the last entry."""
    from fastxent.kernels.key_table import SELECTED_ENTRIES, dictionary_ids

    rng = np.random.default_rng(entries)
    mapping = rng.permutation(100)[:entries].astype(np.int32)
    codes = rng.integers(0, entries, 1000).astype(dtype)
    codes[[3, 500]] = [-1, entries]  # outside, either side
    want = mapping[np.where((codes >= 0) & (codes < entries), codes, 0)]
    out = np.empty(codes.size, np.int32)
    assert dictionary_ids(codes, np.empty(0, np.uint8), 0, mapping, out) == 2
    assert out.tolist() == want.tolist()
    assert (entries <= SELECTED_ENTRIES) == (entries < 5)
    valid = rng.random(codes.size + 3) < 0.8
    bits = np.packbits(valid, bitorder="little")
    out = np.empty(codes.size, np.int32)
    outside = dictionary_ids(codes, bits, 3, mapping, out)
    valid = valid[3:]
    assert outside == int(np.sum(valid & ((codes < 0) | (codes >= entries))))
    assert out.tolist() == np.where(valid, want, mapping[-1]).tolist()
