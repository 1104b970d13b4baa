"""The page reader's windows of a local file (``pread`` into buffers kept by the reading thread)
and the default batches of files of many class columns (whole decoded row groups)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_page_reader import ALL, WRITERS, assert_page_reads, assert_same_table, corpus, read_all  # noqa: F401

from fastxent.engine import class_rows
from fastxent.io import sources
from fastxent.io.pages import rowgroup
from fastxent.io.pages.cursor import CorruptPage, spread_stride
from fastxent.io.pages.files import LocalFile
from fastxent.options import ScoreOptions
from fastxent.run.plan import prepare


@pytest.mark.parametrize("window", [40, 3000])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_local_windows_smaller_than_a_page(corpus, writer, window, monkeypatch):  # noqa: F811
    """Windows of 40 bytes (every header and body read apart) or of a few pages: each chunk's
    window buffer is read into again and again, and kept for the next row group; the batches
    stay pyarrow's."""
    monkeypatch.setattr(rowgroup, "WINDOW_BYTES", window)
    monkeypatch.setattr(rowgroup, "MIN_WINDOW_BYTES", window)
    pages, reads = read_all(corpus[writer], ALL, 999, monkeypatch, "pages")
    arrow, _ = read_all(corpus[writer], ALL, 999, monkeypatch, "pyarrow")
    assert_same_table(pages, arrow)
    assert_page_reads(reads, corpus[writer], writer)


@pytest.fixture
def numbered(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8)
    path = tmp_path / "bytes.bin"
    path.write_bytes(data.tobytes())
    return str(path), data


def test_each_chunk_has_its_own_window(numbered):
    """Two files and three chunks read in turns in one thread: each read gives the bytes asked
    for (at least ``size``, a window, never past the chunk), read-only, and leaves the other
    chunks' windows as they were."""
    path, data = numbered
    first, second = LocalFile(path), LocalFile(path)
    try:
        a, b, c = first.chunk(0, 6000, 1000), second.chunk(3000, 7000, 1000), first.chunk(6000, 4000, 500)
        wa, wb = a(0, 10), b(3000, 10)
        wc = c(6000, 2000)  # more than the window: read whole
        assert not wa.flags.writeable and wa.dtype == np.uint8
        assert np.array_equal(wa, data[:1000]) and np.array_equal(wb, data[3000:4000])
        assert np.array_equal(wc, data[6000:8000])
        wa = a(5500, 10)  # the chunk ends at 6000
        assert np.array_equal(wa, data[5500:6000])
        assert np.array_equal(wb, data[3000:4000]) and np.array_equal(wc, data[6000:8000])
        assert np.array_equal(b(9500, 500), data[9500:])
    finally:
        first.close()
        second.close()


def test_a_closed_files_windows_serve_the_next(numbered):
    path, data = numbered
    first = LocalFile(path)
    old = first.chunk(0, 5000, 4000)(0, 1)
    first.close()
    second = LocalFile(path)
    try:
        new = second.chunk(2000, 3000, 4000)(2000, 1)
        assert np.shares_memory(old, new)  # the same buffer, read into again
        assert np.array_equal(new, data[2000:5000])
    finally:
        second.close()


def test_a_chunk_read_to_its_end_frees_its_window_for_the_next(numbered):
    """``done()`` hands a chunk's buffer to the file's next chunk (columns read one after
    another share one window); a chunk still open keeps its own, and a buffer too small for the
    next window is replaced, not read past."""
    path, data = numbered
    file = LocalFile(path)
    try:
        first, held = file.chunk(0, 3000, 3000), file.chunk(3000, 1000, 1000)
        a, h = first(0, 1), held(3000, 1)
        first.done()
        b = file.chunk(4000, 2000, 2000)(4000, 1)
        assert np.shares_memory(a, b) and not np.shares_memory(h, b)
        assert np.array_equal(b, data[4000:6000]) and np.array_equal(h, data[3000:4000])
        wide = file.chunk(6000, 4000, 4000)
        assert np.array_equal(wide(6000, 1), data[6000:])  # no free buffer of 4,000 bytes: a new one
        wide.done()
        last = file.chunk(0, 4000, 4000)(0, 1)
        assert np.array_equal(last, data[:4000]) and not np.shares_memory(last, h)
    finally:
        file.close()


def test_a_row_group_decoded_whole_reads_each_chunk_once(tmp_path, monkeypatch):
    """A row group decoded in one batch reads its column chunks one after another, each in one
    window (the whole budget, :data:`~fastxent.io.pages.rowgroup.WINDOW_BYTES`, rather than a
    share of it per column) and all through one buffer for each of the two threads taking its
    40 columns (:func:`~fastxent.io.pages.rowgroup._taken`); decoded in several batches, the columns
    share the budget and read their chunks in pieces. The batches are pyarrow's either way."""
    rng = np.random.default_rng(3)
    n, classes = 20_000, 40
    table = pa.table({f"c{k}": rng.standard_normal(n).astype(np.float32) for k in range(classes)})
    path = str(tmp_path / "columns.parquet")
    pq.write_table(table, path, row_group_size=n, compression="snappy")
    names = table.column_names
    monkeypatch.setattr(rowgroup, "WINDOW_BYTES", 1 << 20)  # a share: 26 KB, a third of a chunk
    reads, buffers = [], set()
    read_into = LocalFile.read_into

    def counted(self, buffer, offset):
        reads.append(offset)
        buffers.add(buffer.__array_interface__["data"][0])
        return read_into(self, buffer, offset)

    monkeypatch.setattr(LocalFile, "read_into", counted)
    whole, counts = read_all(path, names, n, monkeypatch, "pages")
    assert counts == {"pages": classes}
    assert len(reads) == classes and 1 <= len(buffers) <= 2
    assert_same_table(whole, table)
    reads.clear()
    monkeypatch.setattr(sources, "PAGES_DECODE_BYTES", 1 << 20)  # batches of 5,000 rows decoded
    pieces, _ = read_all(path, names, n // 4, monkeypatch, "pages")
    assert len(reads) > 2 * classes
    assert_same_table(pieces, table)


def test_a_chunk_past_the_end_of_the_file_is_truncation(numbered):
    path, _ = numbered
    file = LocalFile(path)
    try:
        read = file.chunk(9000, 2000, 100)
        assert read(9000, 1000).size == 1000
        with pytest.raises(CorruptPage, match="truncated"):
            read(9500, 600)
    finally:
        file.close()


def test_default_batches_of_class_columns_are_whole_row_groups(tmp_path):
    """A file of 100 class columns in row groups of 65,536 rows is scored a row group a batch:
    its columns reach the kernels as one array, the classes padded apart (spread_stride), read
    in place (a slice of a decoded batch would be copied)."""
    rng = np.random.default_rng(1)
    n, classes = 131_072, 100
    columns = {f"c{k}": rng.standard_normal(n).astype(np.float32) for k in range(classes)}
    table = pa.table({"label": rng.integers(0, classes, n), **columns})
    path = str(tmp_path / "columns.parquet")
    pq.write_table(table, path, row_group_size=65_536)
    job = prepare(path, ScoreOptions(target="label", logits=list(columns)))
    batches = [batch for _, batch in job.parts[0].batches(job.plan.columns(), job.batch_rows)]
    assert [batch.num_rows for batch in batches] == [65_536, 65_536]
    x, _, _ = job.plan.arrays(batches[1], lambda row: f"row {row}", None)
    rows = class_rows(x)
    assert rows.shape == (classes, spread_stride(65_536 * 4, 4) // 4) and not rows.flags.writeable
    assert not x.flags.writeable
    assert np.array_equal(x[:, 7], columns["c7"][65_536:])
