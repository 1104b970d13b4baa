"""List pages without nulls read by their row starts (``decode.row_starts``, ``decode.walk_starts``)
instead of every level decoded and walked: the same rows, offsets and errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_page_reader import assert_same_table, read_all

from fastxent.io.pages import decode


def encode_hybrid(levels: np.ndarray, pieces: list[int]) -> bytes:
    """Levels of bit width 1 in the RLE/bit-packed hybrid encoding, cut into runs of about the
    given lengths (a run of equal levels as RLE, any other as bit-packed groups of 8 levels,
    the last group padded only at the end)."""
    out = bytearray()

    def varint(value):
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)

    at = 0
    for length in pieces:
        run = levels[at : at + length]
        if run.size == 0:
            break
        if np.all(run == run[0]):
            varint(run.size << 1)
            out.append(int(run[0]))
        else:
            run = levels[at : at + -(-run.size // 8) * 8]  # whole groups but at the end
            groups = -(-run.size // 8)
            padded = np.zeros(groups * 8, np.uint8)
            padded[: run.size] = run
            varint(groups << 1 | 1)
            out += np.packbits(padded, bitorder="little").tobytes()
        at += run.size
    return bytes(out)


def starts_of(buf: bytes, count: int):
    data = np.frombuffer(buf, np.uint8)
    starts = np.full(count + 1, -7, np.int32)
    found = decode.row_starts(data, 0, data.size, count, starts)
    return found, starts


def levels_of(buf: bytes, count: int):
    data = np.frombuffer(buf, np.uint8)
    out = np.zeros(count, np.uint8)
    return decode.decode_hybrid(data, 0, data.size, 1, count, 1, out), out


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=60),
    pieces=st.lists(st.integers(1, 70), min_size=1, max_size=40),
)
def test_row_starts_are_the_zero_levels(lengths, pieces):
    """Rows of 1 to 40 values (rows of one value make runs of zeros) in runs cut anywhere."""
    levels = np.concatenate([np.r_[0, np.ones(n - 1, np.uint8)] for n in lengths]).astype(np.uint8)
    pieces = pieces + [levels.size]
    buf = encode_hybrid(levels, pieces)
    found, starts = starts_of(buf, levels.size)
    assert found == len(lengths)
    assert starts[:found].tolist() == np.flatnonzero(levels == 0).tolist()
    assert starts[found] == -7  # nothing written past them


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64), count=st.integers(0, 200))
def test_any_bytes_give_what_decode_hybrid_gives(data, count):
    """Bytes no writer made: -1 exactly where decode_hybrid refuses them, else the same zeros."""
    found, starts = starts_of(data, count)
    status, levels = levels_of(data, count)
    if status < 0:
        assert found == -1
    else:
        assert starts[:found].tolist() == np.flatnonzero(levels == 0).tolist()


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    cut=st.integers(0, 300),
    wanted=st.integers(0, 45),
    rows=st.integers(0, 3),
)
def test_walk_starts_equals_walk_list(lengths, cut, wanted, rows):
    """From any level of a page without nulls, for any rows wanted and started: the same stop,
    rows, elements, offsets and status (-1 for a continuation before any row) as the walk of
    every level."""
    reps = np.concatenate([np.r_[0, np.ones(n - 1, np.uint8)] for n in lengths]).astype(np.uint8)
    defs = np.full(reps.size, 3, np.uint8)
    pos = cut % (reps.size + 1)
    starts = np.flatnonzero(reps == 0).astype(np.int32)
    k = int(np.searchsorted(starts, pos))
    wanted = max(wanted, rows)
    expected_offsets = np.full(wanted + 1, -1, np.int64)
    offsets = expected_offsets.copy()
    level, got_rows, elements, status = decode.walk_list(
        reps, defs, pos, reps.size, wanted, rows, 1, 3, expected_offsets, 17
    )
    at, k2, rows2, elements2, status2 = decode.walk_starts(
        starts, k, starts.size, pos, reps.size, wanted, rows, offsets, 17
    )
    assert status2 == status
    if status == 0:
        assert (at, rows2, elements2) == (level, got_rows, elements)
        assert k2 == np.searchsorted(starts, at)
        assert offsets.tolist() == expected_offsets.tolist()


@pytest.mark.parametrize("options", [{}, dict(data_page_version="2.0", compression="none")])
def test_ragged_and_single_value_lists_across_small_pages(tmp_path, monkeypatch, options):
    """Lists of 1 to 9 values and of one value, pages of a few hundred bytes, batches of 37
    rows: the page reader's batches are pyarrow's."""
    rng = np.random.default_rng(5)
    lengths = np.where(rng.random(3000) < 0.3, 1, rng.integers(1, 10, 3000))
    values = rng.standard_normal(int(lengths.sum())).astype(np.float32)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    table = pa.table({"l": pa.ListArray.from_arrays(offsets, values), "y": rng.integers(0, 3, 3000)})
    path = str(tmp_path / "lists.parquet")
    pq.write_table(table, path, data_page_size=300, row_group_size=1100, **options)
    pages, reads = read_all(path, ["l", "y"], 37, monkeypatch, "pages")
    arrow, _ = read_all(path, ["l", "y"], 37, monkeypatch, "pyarrow")
    assert reads.get("pages", 0) == 2 * pq.ParquetFile(path).metadata.num_row_groups
    assert_same_table(pages, arrow)
