"""The string key table: string and binary group keys of every Arrow layout get ids in order of
first appearance, nulls one group, across batches, growth of the table, pickling, and keys that
other paths (a row group's dictionary) numbered first."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.groups import GroupKeys
from fastxent.string_key_table import StringKeyTable, key_spans

TEXT_TYPES = [pa.string(), pa.large_string(), pa.string_view()]
BYTES_TYPES = [pa.binary(), pa.large_binary(), pa.binary_view()]


def _first_appearance(batches: list[list]) -> list:
    """The distinct non-null values of ``batches``, in order of first appearance."""
    return [v for v in dict.fromkeys(v for values in batches for v in values) if v is not None]


def _check(keys: GroupKeys, batches: list[list], columns: list[pa.Array]) -> None:
    """Each row's id names its own value (a null, the null key), and the keys other than null
    are numbered in order of first appearance (the null key is numbered once a batch's new
    keys are)."""
    for values, column in zip(batches, columns, strict=True):
        ids = keys.ids(pa.record_batch({"k": column}))
        assert ids.dtype == np.int32
        assert [keys.keys[i] for i in ids] == values
    assert [k for k in keys.keys if k is not None] == _first_appearance(batches)
    assert len(set(keys.keys)) == len(keys.keys)


@pytest.mark.parametrize("typ", TEXT_TYPES + BYTES_TYPES, ids=str)
def test_every_layout_gets_ids_of_first_appearance_with_nulls_one_group(typ):
    words = ["train", "valid", None, "", "test", "train", "é—ü", None, "valid", "x" * 5000]
    values = [w if w is None or typ in TEXT_TYPES else w.encode() for w in words]
    batches = [values[:4], values[4:], values[::-1]]
    pad = "pad" if typ in TEXT_TYPES else b"pad"
    columns = [pa.array([pad, *batch], type=typ).slice(1) for batch in batches]  # offsets into buffers
    _check(GroupKeys(["k"]), batches, columns)


@settings(max_examples=30, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["a", "b", "ab"])), max_size=300),
        min_size=1,
        max_size=5,
    ),
    large=st.booleans(),
)
def test_any_batches_of_strings_get_the_ids_of_first_appearance(batches, large):
    columns = [pa.array(batch, type=pa.large_string() if large else pa.string()) for batch in batches]
    _check(GroupKeys(["k"]), batches, columns)


#: Keys that differ only in a trailing NUL or their length, of 0 to 17 bytes: zero-padded to
#: words, they are told apart by their lengths alone.
_ALIKE = [
    b"",
    b"\0",
    b"\0\0",
    b"a",
    b"a\0",
    b"ab",
    b"abcdefg",
    b"abcdefg\0",
    b"abcdefgh",
    b"abcdefgh" * 2,
    b"abcdefgh" * 2 + b"\0",
]


@settings(max_examples=40, deadline=None)
@given(
    pool=st.lists(
        st.one_of(st.sampled_from(_ALIKE), st.binary(max_size=10)), min_size=1, max_size=4, unique=True
    ),
    picks=st.lists(st.lists(st.integers(0, 4), max_size=200), min_size=1, max_size=4),
    typ=st.sampled_from(BYTES_TYPES),
)
def test_a_few_short_keys_are_told_apart_by_every_byte_and_length(pool, picks, typ):
    """Up to four keys, the few the kernel compares by their first two words and length once a
    batch has numbered them (string_keys.FEW_KEYS): empty keys, NUL bytes, keys that are each
    other's prefixes, keys of 7, 8, 16 and 17 bytes, keys ending at the buffer's last byte; pick
    4 is a null."""
    batches = [[pool[i] if i < len(pool) else None for i in batch] for batch in picks]
    columns = [pa.array(batch, type=typ) for batch in batches]
    _check(GroupKeys(["k"]), batches, columns)


@pytest.mark.parametrize("typ", TEXT_TYPES + BYTES_TYPES, ids=str)
def test_short_keys_differing_in_a_trailing_nul_are_different_keys(typ):
    """Keys known from a batch before are compared by their zero-padded words and length
    (string_keys.FEW_KEYS): keys equal but for a trailing NUL (of 0, 1, 7 and 16 bytes) stay
    apart, the first batch numbering them by the hash table and the next by the few keys."""
    for short in ["", "a", "abcdefg", "abcdefgh" * 2]:
        pair = [short, short + "\0"] if typ in TEXT_TYPES else [short.encode(), short.encode() + b"\0"]
        batches = [pair * 50, pair[::-1] * 50, [pair[1], None, pair[0]] * 30]
        _check(GroupKeys(["k"]), batches, [pa.array(batch, type=typ) for batch in batches])


def test_the_table_grows_through_many_long_keys_and_keeps_their_ids():
    """Thousands of keys of up to 3,000 bytes: the slots, the keys' offsets and their bytes all
    grow, several times within one batch; every row keeps its key's id, and a table pickled mid
    stream goes on with the same ids."""
    rng = np.random.default_rng(3)
    words = [bytes(rng.integers(0, 256, rng.integers(0, 3000), dtype=np.uint8)) for _ in range(4000)]
    words = list(dict.fromkeys(words))  # distinct
    rows = [words[i] for i in rng.integers(0, len(words), 20_000)]
    table = StringKeyTable()
    ids, new_rows = table.ids(key_spans(pa.array(rows[:12_000], pa.binary())), 0)
    table = pickle.loads(pickle.dumps(table))
    more, more_new = table.ids(key_spans(pa.array(rows[12_000:], pa.binary())), new_rows.shape[0])
    got = np.concatenate([ids, more])
    first = {}
    for i, w in enumerate(rows):
        first.setdefault(w, i)
    expected = np.array([sorted(first.values()).index(first[w]) for w in rows])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.concatenate([new_rows, 12_000 + more_new]), sorted(first.values()))
    assert table.count == len(first) and table.slots.shape[0] >= 2 * table.count
    assert table.keys(0, text=False) == list(first)


def test_keys_numbered_from_a_dictionary_first_keep_their_ids_in_plain_batches():
    """A Parquet column chunk can be dictionary-encoded and the next one plain (the dictionary
    fell back): the string table learns the keys the dictionary numbered, and a null key and
    binary keys in between."""
    keys = GroupKeys(["k"])
    first = pa.array(["b", "a", None, "b"]).dictionary_encode()
    np.testing.assert_array_equal(keys.ids(pa.record_batch({"k": first})), [0, 1, 2, 0])
    np.testing.assert_array_equal(keys.ids(pa.record_batch({"k": pa.array([b"a", b"z"])})), [3, 4])
    plain = pa.array(["a", "c", None, "b", "c"])
    np.testing.assert_array_equal(keys.ids(pa.record_batch({"k": plain})), [1, 5, 2, 0, 5])
    second = pa.array(["c", "d"]).dictionary_encode()
    np.testing.assert_array_equal(keys.ids(pa.record_batch({"k": second})), [5, 6])
    np.testing.assert_array_equal(keys.ids(pa.record_batch({"k": pa.array(["d", "e"])})), [6, 7])
    assert keys.keys == ["b", "a", None, b"a", b"z", "c", "d", "e"]


@pytest.mark.parametrize("typ", TEXT_TYPES, ids=str)
def test_in_memory_string_keys_score_as_the_parquet_files_dictionary_keys(tmp_path, typ):
    """Group results keyed by plain strings in memory equal those of the same rows read from
    Parquet, whose pages hold the keys as a dictionary: the same bits, group by group."""
    rng = np.random.default_rng(11)
    n = 5000
    split = np.array(["train", "valid", "test", "holdout"])[rng.integers(0, 4, n)].astype(object)
    split[rng.random(n) < 0.05] = None
    table = pa.table(
        {
            "logits": pa.array(rng.standard_normal(n)),
            "label": pa.array(rng.integers(0, 2, n)),
            "split": pa.array(split, type=pa.string()),
        }
    )
    path = str(tmp_path / "keys.parquet")
    table.to_pandas().to_parquet(path, row_group_size=n)
    expected = fx.score(path, target="label", logits="logits", group_by="split")
    source = table.set_column(2, "split", table["split"].cast(typ))
    got = fx.score(source, target="label", logits="logits", group_by="split", batch_rows=700)
    assert set(got.groups) == set(expected.groups) == {"train", "valid", "test", "holdout", None}
    for key, group in expected.groups.items():
        assert (got.groups[key].total, got.groups[key].rows) == (group.total, group.rows)
