"""Issue 16: the Parquet page reader gives pyarrow's batches, bit for bit, and says where it ran.

A corpus written here by pyarrow (v1 and v2 pages, dictionary pages and the fallback to PLAIN
within a chunk, BYTE_STREAM_SPLIT, every codec, nullable and list columns, page checksums on and
off, small pages and row groups), by Polars and by DuckDB: every batch read through the pages
equals pyarrow's, whole scores agree in every field, and ``Score.readers`` says which reader read
the column chunks. Chunks the reader does not decode (other encodings, strings without a
dictionary, nested lists, a null inside a list) go to pyarrow, from the start or from the row
where they begin.
"""

from __future__ import annotations

import dataclasses
import re

import cramjam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from page_corpus import corpus_table

import fastxent as fx
from fastxent.io import sources
from fastxent.io.pages import READER_VARIABLE, decode, thrift
from fastxent.io.pages.codecs import LZ4, Decompressor
from fastxent.io.pages.layout import chunk_range
from fastxent.io.sources import open_parts

FLOATS = ["logits", "lst", "big", "x", "h", "p"]


WRITERS = {
    "defaults": {},
    "v2-zstd": dict(data_page_version="2.0", compression="zstd"),
    "plain-none-checksums-small-pages": dict(
        use_dictionary=False, compression="none", write_page_checksum=True, data_page_size=2000
    ),
    "byte-stream-split-lz4": dict(use_byte_stream_split=FLOATS, use_dictionary=["label"], compression="lz4"),
    "dictionary-fallback-gzip": dict(dictionary_pagesize_limit=512, data_page_size=4096, compression="gzip"),
    "brotli-v2-checksums-row-groups": dict(
        compression="brotli", data_page_version="2.0", write_page_checksum=True, row_group_size=700
    ),
    "snappy-v2-split-checksums": dict(
        compression="snappy",
        data_page_version="2.0",
        use_byte_stream_split=FLOATS,
        write_page_checksum=True,
        data_page_size=3000,
    ),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pages")
    table = corpus_table()
    paths = {}
    for name, options in WRITERS.items():
        paths[name] = str(root / f"{name}.parquet")
        pq.write_table(table, paths[name], **options)
    return paths


def read_all(path: str, columns: list[str], batch_rows: int, monkeypatch, reader: str):
    """``(table of every batch, Part.reads counts)`` through ``reader`` ("pages" or "pyarrow")."""
    monkeypatch.setenv(READER_VARIABLE, reader)
    part = open_parts(path)[0]
    batches = [batch for _, batch in part.batches(columns, batch_rows)]
    for batch in batches:
        assert batch.num_rows <= batch_rows
    return pa.Table.from_batches(batches), dict(part.reads.counts)


def assert_same_table(a: pa.Table, b: pa.Table) -> None:
    """The same schema, nulls, list lengths and value bits (NaN payloads and -0.0 included)."""
    assert a.schema == b.schema
    for name in a.column_names:
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        assert x.is_null().equals(y.is_null()), name
        x, y = x.filter(x.is_valid()), y.filter(y.is_valid())
        while (
            pa.types.is_list(x.type) or pa.types.is_large_list(x.type) or pa.types.is_fixed_size_list(x.type)
        ):
            assert pc.list_value_length(x).equals(pc.list_value_length(y)), name
            x, y = x.flatten(), y.flatten()
            assert x.is_null().equals(y.is_null()), name
            x, y = x.filter(x.is_valid()), y.filter(y.is_valid())
        xs, ys = x.to_numpy(zero_copy_only=False), y.to_numpy(zero_copy_only=False)
        if xs.dtype.kind == "f":
            xs, ys = xs.view(f"u{xs.dtype.itemsize}"), ys.view(f"u{ys.dtype.itemsize}")
        assert np.array_equal(xs, ys), name


def run_fields(score: fx.Score) -> dict:
    """A score's fields, without the run's timings and readers."""
    out = dataclasses.asdict(score)
    for name in ("elapsed_s", "rows_per_s", "bytes_per_s", "readers", "groups"):
        out.pop(name)
    return out


def assert_same_score(a: fx.Score, b: fx.Score) -> None:
    fa, fb = run_fields(a), run_fields(b)
    for name in fa:
        va, vb = fa[name], fb[name]
        if isinstance(va, float) and va != va:
            assert vb != vb, name
        else:
            assert va == vb, name


def scores(path, monkeypatch, **options) -> tuple[fx.Score, fx.Score]:
    monkeypatch.setenv(READER_VARIABLE, "pages")
    pages = fx.score(path, **options)
    monkeypatch.setenv(READER_VARIABLE, "pyarrow")
    arrow = fx.score(path, **options)
    monkeypatch.delenv(READER_VARIABLE)
    return pages, arrow


ALL = list(corpus_table(1).column_names)


#: The corpus' string columns: read by pages as dictionary codes where their chunks have a
#: dictionary page, by pyarrow otherwise, or from the page where a writer fell back to PLAIN.
STRINGS = ["split", "name"]


def assert_page_reads(reads: dict, path: str, writer: str) -> None:
    """Every chunk of the corpus file read by pages but its string chunks without a dictionary
    page (pyarrow's), and those whose writer fell back to PLAIN pages (both readers')."""
    meta = pq.ParquetFile(path).metadata
    groups = meta.num_row_groups
    leaf = {meta.schema.column(j).name: j for j in range(meta.num_columns)}
    chunks = [meta.row_group(g).column(leaf[name]) for g in range(groups) for name in STRINGS]
    plain_strings = sum(not chunk.has_dictionary_page for chunk in chunks)
    assert reads["pages"] == groups * len(ALL) - plain_strings
    fell_back = reads.get("pyarrow", 0) - plain_strings  # strings gone PLAIN within a chunk
    assert 0 <= fell_back <= len(chunks) - plain_strings
    assert (fell_back > 0) == (writer == "dictionary-fallback-gzip")


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("batch_rows", [1000, 777])
def test_batches_equal_pyarrows(corpus, writer, batch_rows, monkeypatch):
    pages, pages_reads = read_all(corpus[writer], ALL, batch_rows, monkeypatch, "pages")
    arrow, arrow_reads = read_all(corpus[writer], ALL, batch_rows, monkeypatch, "pyarrow")
    assert_same_table(pages, arrow)
    assert pages.schema.field("split").type == pa.dictionary(pa.int32(), pa.string())
    assert_page_reads(pages_reads, corpus[writer], writer)
    groups = pq.ParquetFile(corpus[writer]).metadata.num_row_groups
    assert arrow_reads == {"pyarrow": groups * len(ALL)}


@pytest.mark.parametrize("writer", ["defaults", "byte-stream-split-lz4", "brotli-v2-checksums-row-groups"])
@pytest.mark.parametrize(
    "options",
    [
        dict(target="label", logits="logits"),
        dict(target="label", logits="lst", label_smoothing=0.1),
        dict(target="label", logits="big"),
        dict(target="y", logits="x"),  # binary, nulls skipped
        dict(target="y", logits="h"),  # float16
    ],
    ids=["fixed-size-list", "list", "large-list", "binary-nullable", "float16"],
)
def test_scores_equal_and_say_which_reader(corpus, writer, options, monkeypatch):
    pages, arrow = scores(corpus[writer], monkeypatch, **options)
    assert_same_score(pages, arrow)
    groups = pq.ParquetFile(corpus[writer]).metadata.num_row_groups
    assert pages.readers == {"pages": 2 * groups}
    assert arrow.readers == {"pyarrow": 2 * groups}
    assert pages.to_dict()["readers"] == {"pages": 2 * groups}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_rows=st.integers(1, 4000))
def test_any_batch_rows_gives_the_same_bits(corpus, monkeypatch, batch_rows):
    options = dict(target="label", logits="lst", batch_rows=batch_rows)
    pages, arrow = scores(corpus["brotli-v2-checksums-row-groups"], monkeypatch, **options)
    assert_same_score(pages, arrow)


@pytest.mark.parametrize("writer", ["polars", "duckdb"])
def test_other_writers(tmp_path, writer, monkeypatch):
    table = corpus_table(2500, seed=3).select(["label", "logits", "lst", "x", "p", "y"])
    path = str(tmp_path / f"{writer}.parquet")
    if writer == "polars":
        pl = pytest.importorskip("polars")
        pl.from_arrow(table).write_parquet(path, row_group_size=1000)
    else:
        duckdb = pytest.importorskip("duckdb")
        connection = duckdb.connect()
        connection.register("t", table)
        connection.execute(f"COPY t TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000)")
    columns = pq.ParquetFile(path).schema_arrow.names
    pages, reads = read_all(path, columns, 600, monkeypatch, "pages")
    arrow, _ = read_all(path, columns, 600, monkeypatch, "pyarrow")
    assert_same_table(pages, arrow)
    assert reads.get("pages", 0) > 0
    a, b = scores(path, monkeypatch, target="label", logits="lst")
    assert_same_score(a, b)


def _fallback(path, columns, monkeypatch):
    pages, reads = read_all(path, columns, 500, monkeypatch, "pages")
    arrow, _ = read_all(path, columns, 500, monkeypatch, "pyarrow")
    assert_same_table(pages, arrow)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    part = open_parts(path)[0]
    for _ in part.batches(columns, 500):
        pass
    return reads, part.reads.reasons


def test_other_encodings_fall_back_per_chunk(tmp_path, monkeypatch):
    path = str(tmp_path / "delta.parquet")
    table = corpus_table(1500).select(["label", "logits"])
    pq.write_table(table, path, use_dictionary=False, column_encoding={"label": "DELTA_BINARY_PACKED"})
    reads, reasons = _fallback(path, ["label", "logits"], monkeypatch)
    assert reads == {"pages": 1, "pyarrow": 1}
    assert "DELTA_BINARY_PACKED" in reasons["label"]


def test_nested_lists_and_timestamps_fall_back_strings_do_not(tmp_path, monkeypatch):
    path = str(tmp_path / "types.parquet")
    table = pa.table(
        {
            "name": pa.array(["cat", "dog", None] * 300),
            "nested": pa.array([[[1.0, 2.0]], [[3.0]], []] * 300, pa.list_(pa.list_(pa.float32()))),
            "when": pa.array(np.arange(900).astype("datetime64[s]")),
            "x": pa.array(np.arange(900, dtype=np.float32)),
        }
    )
    pq.write_table(table, path)
    reads, reasons = _fallback(path, ["name", "nested", "when", "x"], monkeypatch)
    assert reads == {"pages": 2, "pyarrow": 2}
    assert set(reasons) == {"nested", "when"}


@pytest.mark.parametrize("null", ["element", "list"])
def test_a_null_in_a_list_switches_to_pyarrow_where_it_begins(tmp_path, monkeypatch, null):
    rows = [[float(i), float(i) + 0.5] for i in range(2000)]
    rows[1234] = [1.0, None] if null == "element" else None
    path = str(tmp_path / "nulls.parquet")
    pq.write_table(pa.table({"v": pa.array(rows, pa.list_(pa.float32()))}), path, data_page_size=1000)
    reads, reasons = _fallback(path, ["v"], monkeypatch)
    assert reads == {"pages": 1, "pyarrow": 1}
    first = re.match(r"from row (\d+) of the row group: a null list or a null element", reasons["v"])
    assert first and int(first.group(1)) <= 1234  # the first row of the batch holding the null


def test_empty_lists_are_read(tmp_path, monkeypatch):
    rows = [[float(i)] * (i % 3) for i in range(1500)]
    path = str(tmp_path / "empty.parquet")
    pq.write_table(pa.table({"v": pa.array(rows, pa.list_(pa.float32()))}), path, data_page_size=700)
    pages, reads = read_all(path, ["v"], 400, monkeypatch, "pages")
    arrow, _ = read_all(path, ["v"], 400, monkeypatch, "pyarrow")
    assert_same_table(pages, arrow)
    assert reads == {"pages": 1}


def test_remote_files_read_pages_by_range(corpus, monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    with open(corpus["snappy-v2-split-checksums"], "rb") as f:
        memory.pipe("/pages/remote.parquet", f.read())
    monkeypatch.setenv(READER_VARIABLE, "pages")
    try:
        options = dict(target="label", logits="logits")
        remote = fx.score("memory://pages/remote.parquet", **options)
        local = fx.score(corpus["snappy-v2-split-checksums"], **options)
    finally:
        memory.rm("/pages", recursive=True)
    assert_same_score(remote, local)
    assert remote.readers == local.readers == {"pages": 2}


@pytest.mark.parametrize("writer", ["defaults", "v2-zstd", "brotli-v2-checksums-row-groups"])
def test_remote_windows_smaller_than_a_page(corpus, writer, monkeypatch):
    """Windows of 40 bytes: every page is read by asking Python for more bytes, its header and
    its body apart; the batches stay pyarrow's."""
    fsspec = pytest.importorskip("fsspec")
    from fastxent.io.pages import rowgroup

    memory = fsspec.filesystem("memory")
    with open(corpus[writer], "rb") as f:
        memory.pipe("/windows/remote.parquet", f.read())
    monkeypatch.setattr(rowgroup, "WINDOW_BYTES", 40)
    monkeypatch.setattr(rowgroup, "MIN_WINDOW_BYTES", 40)
    try:
        remote, reads = read_all("memory://windows/remote.parquet", ALL, 999, monkeypatch, "pages")
    finally:
        memory.rm("/windows", recursive=True)
    local, _ = read_all(corpus[writer], ALL, 999, monkeypatch, "pyarrow")
    assert_same_table(remote, local)
    assert reads == {"pages": pq.ParquetFile(corpus[writer]).metadata.num_row_groups * len(ALL)}


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32, np.uint16, np.uint8])
def test_dictionary_values_gathered_for_any_size(dtype):
    """Dictionary indices become values for every width: two values (binary labels) by a
    select, other dictionaries by a gather; nothing past ``count`` is written."""
    rng = np.random.default_rng(5)
    width = np.dtype(dtype).itemsize
    for size in (1, 2, 3, 200):
        values = rng.integers(0, 250, size).astype(dtype)
        indices = rng.integers(0, size, 1000).astype(np.int32)
        out = np.zeros(1000 * width, np.uint8)
        decode.gather(values.view(np.uint8), indices, 997, out, width)
        np.testing.assert_array_equal(out.view(dtype)[:997], values[indices[:997]])
        assert not out.view(dtype)[997:].any()


def test_hadoop_framed_lz4():
    data = np.arange(5000, dtype=np.float32).view(np.uint8)
    framed = b""
    for piece in (data[:7000], data[7000:]):
        block = bytes(cramjam.lz4.compress_block(piece.tobytes(), store_size=False))
        framed += piece.size.to_bytes(4, "big") + len(block).to_bytes(4, "big") + block
    out = Decompressor(LZ4)(np.frombuffer(framed, np.uint8), data.size)
    assert np.array_equal(out, data)
    raw = bytes(cramjam.lz4.compress_block(data.tobytes(), store_size=False))
    assert np.array_equal(Decompressor(LZ4)(np.frombuffer(raw, np.uint8), data.size), data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_page_headers_of_any_bytes_never_read_outside(data):
    buf = np.frombuffer(data, np.uint8)
    out = np.empty(thrift.SLOTS, np.int64)
    assert thrift.parse_page_header(buf, 0, buf.size, out) <= buf.size


def test_dask_tasks_read_pages_with_the_same_bits(corpus, monkeypatch):
    distributed = pytest.importorskip("distributed")
    fxdask = pytest.importorskip("fastxent.dask")
    path = corpus["brotli-v2-checksums-row-groups"]
    options = dict(target="label", logits="lst", batch_rows=500)
    monkeypatch.setenv(READER_VARIABLE, "pages")  # worker threads of this process see it
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        on_dask = fxdask.score(path, client=client, **options)
    monkeypatch.setenv(READER_VARIABLE, "pyarrow")
    assert_same_score(on_dask, fx.score(path, **options))
    assert on_dask.readers == {"pages": 2 * pq.ParquetFile(path).metadata.num_row_groups}


def test_debug_and_info_say_which_reader(corpus, monkeypatch, capsys):
    from fastxent.cli import main

    monkeypatch.setenv(READER_VARIABLE, "pages")
    path = corpus["defaults"]
    assert main(["score", path, "--target", "label", "--logits", "logits", "--debug"]) == 0
    assert (
        f"'{path}' row group 0: pages read ['logits', 'label']; pyarrow read none" in capsys.readouterr().err
    )
    assert main(["info"]) == 0
    assert "parquet reader   pages for every column it decodes (cramjam" in capsys.readouterr().out
    monkeypatch.delenv(READER_VARIABLE)
    assert main(["info"]) == 0
    assert "parquet reader   pages for files with a list column or up to 1,024 flat columns (8 in" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv(READER_VARIABLE, "pyarrow")
    assert main(["info"]) == 0
    assert f"parquet reader   pyarrow ({READER_VARIABLE}=pyarrow)" in capsys.readouterr().out
    monkeypatch.setenv(READER_VARIABLE, " ")  # empty: the default
    assert main(["info"]) == 0
    said = "up to 1,024 flat columns (8 in a remote store) of any codec but brotli"
    assert f"{said} (cramjam {cramjam.__version__}), pyarrow for the rest" in capsys.readouterr().out
    # a misspelt choice is an error, not silently the default
    monkeypatch.setenv(READER_VARIABLE, "Pagse")
    wrong = f"{READER_VARIABLE} must be one of auto, pages, pyarrow, got 'Pagse'."
    assert main(["info"]) == 0
    assert f"parquet reader   none: {wrong}" in capsys.readouterr().out
    assert main(["score", path, "--target", "label", "--logits", "logits"]) == 1
    assert capsys.readouterr().err == f"fastxent: error: {wrong}\n"
    with pytest.raises(fx.InputValueError, match="must be one of auto, pages, pyarrow"):
        fx.score(path, target="label", logits="logits")


def test_the_default_reads_through_pages_lists_and_a_few_flat_columns(corpus, monkeypatch, tmp_path):
    """``auto``: a row group with a list column among the columns read is read through the page
    reader, and so are at most MANY_FLAT_COLUMNS flat columns the page reader can read, of any
    codec but brotli, pyarrow reading the columns it cannot (a string column) beside them; more
    flat columns, or brotli ones, through pyarrow whole. Row groups of more than
    FEW_FLAT_COLUMNS page-read flat columns are decoded one at a time. The batches are pyarrow's
    either way."""
    path = corpus["defaults"]
    rng = np.random.default_rng(2)
    wide = str(tmp_path / "wide.parquet")
    pq.write_table(pa.table({f"c{j}": rng.standard_normal(900) for j in range(40)}), wide, row_group_size=300)
    text = str(tmp_path / "text.parquet")
    pq.write_table(pa.table({"x": rng.standard_normal(900), "s": ["a", "b", "c"] * 300}), text)
    packed = str(tmp_path / "zstd.parquet")
    lists = pa.array(list(rng.standard_normal((900, 3))), type=pa.list_(pa.float64()))
    pq.write_table(pa.table({"x": rng.standard_normal(900), "lst": lists}), packed, compression="zstd")
    wide_zstd, brotli = str(tmp_path / "wide-zstd.parquet"), str(tmp_path / "brotli.parquet")
    pq.write_table(pq.read_table(wide), wide_zstd, row_group_size=300, compression="zstd")
    pq.write_table(pa.table({"x": rng.standard_normal(900)}), brotli, compression="brotli")
    monkeypatch.setattr(sources, "MANY_FLAT_COLUMNS", 32)
    workers = []
    prefetch = sources.ordered_prefetch

    def counted(jobs, threads, ahead):
        workers.append(threads)
        return prefetch(jobs, threads, ahead)

    monkeypatch.setattr(sources, "ordered_prefetch", counted)
    cases = [
        (path, ["label", "lst", "x"], "pages", None, 2),
        (path, ["label", "x", "h", "p", "y", "i8", "u32"], "pages", None, 2),
        (wide, [f"c{j}" for j in range(8)], "pages", None, 2),
        (wide, [f"c{j}" for j in range(32)], "pages", None, 1),
        (wide, [f"c{j}" for j in range(33)], "pyarrow", "more than 32 flat columns are read", 2),
        (text, ["x", "s"], "pages", None, 2),  # a string column: dictionary codes
        (packed, ["x"], "pages", None, 2),
        (packed, ["x", "lst"], "pages", None, 2),
        (wide_zstd, [f"c{j}" for j in range(8)], "pages", None, 2),
        (wide_zstd, [f"c{j}" for j in range(9)], "pages", None, 1),
        (brotli, ["x"], "pyarrow", "its flat columns are BROTLI, which pyarrow decompresses faster", 2),
    ]
    for file, columns, reader, reason, threads in cases:
        monkeypatch.delenv(READER_VARIABLE, raising=False)
        part = open_parts(file)[0]
        batches = [batch for _, batch in part.batches(columns, 700)]
        assert workers[-1] == threads
        arrow, _ = read_all(file, columns, 700, monkeypatch, "pyarrow")
        assert_same_table(pa.Table.from_batches(batches), arrow)
        groups = pq.ParquetFile(file).metadata.num_row_groups
        per_group = reader if isinstance(reader, dict) else {reader: len(columns)}
        assert dict(part.reads.counts) == {r: n * groups for r, n in per_group.items()}
        if reason is not None:
            assert reason in part.reads.reasons[columns[0]]


def _wide_table(rows: int) -> pa.Table:
    """20 class columns, float32 and float64 (two with nulls), and int64 labels with a null at row 1000."""
    rng = np.random.default_rng(7)
    columns = {}
    for j in range(20):
        values = rng.standard_normal(rows).astype([np.float32, np.float64][j % 2])
        mask = (rng.random(rows) < 0.05) if j in (3, 14) else None
        columns[f"c{j:02d}"] = pa.array(values, mask=mask)
    labels = rng.integers(0, 20, rows)
    columns["label"] = pa.array(labels, mask=np.arange(rows) == 1000)
    return pa.table(columns)


def table_column(path: str, name: str) -> pa.ChunkedArray:
    return pq.read_table(path, columns=[name]).column(name)


def test_many_flat_columns_are_taken_by_two_threads(tmp_path, monkeypatch):
    """A row group of more than FEW_FLAT_COLUMNS page-read flat columns has its columns taken by
    two threads side by side: the batches are pyarrow's (nullable columns among them, batches
    inside and across row groups), the score pyarrow's, and of two damaged columns the first in
    column order is named, every time, whichever thread met it first."""
    from fastxent.io.pages import rowgroup

    path = str(tmp_path / "wide.parquet")
    pq.write_table(
        _wide_table(3000), path, row_group_size=1500, data_page_size=2000, write_page_checksum=True
    )
    helpers = []
    taken = rowgroup._taken

    def counted(cursors, m, shared, helper):
        helpers.append(helper is not None)
        return taken(cursors, m, shared, helper)

    monkeypatch.setattr(rowgroup, "_taken", counted)
    columns = [f"c{j:02d}" for j in range(20)] + ["label"]
    for batch_rows in (700, 1500):
        pages, reads = read_all(path, columns, batch_rows, monkeypatch, "pages")
        arrow, _ = read_all(path, columns, batch_rows, monkeypatch, "pyarrow")
        assert_same_table(pages, arrow)
        assert reads == {"pages": 2 * len(columns)}
    assert helpers and all(helpers)
    options = dict(target="label", logits="c*", batch_rows=700)
    a, b = scores(path, monkeypatch, **options)
    assert_same_score(a, b)
    null_rows = pc.or_(
        pc.or_(pc.is_null(table_column(path, "c03")), pc.is_null(table_column(path, "c14"))),
        pc.is_null(table_column(path, "label")),
    )
    assert a.nulls == pc.sum(null_rows).as_py() > 0
    data = np.fromfile(path, np.uint8)
    meta = pq.ParquetFile(path).metadata
    for leaf in (12, 5):  # the later column damaged first: the helper may well take it first
        start, size = chunk_range(meta.row_group(1).column(leaf))
        data[start + size // 2 : start + size // 2 + 8] ^= 0xFF  # inside a page's values
    damaged = tmp_path / "damaged.parquet"
    data.tofile(damaged)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    for _ in range(3):
        with pytest.raises(
            fx.InputValueError, match=r"row group 1, column 'c05': the page at byte \d+ fails its CRC"
        ):
            fx.score(str(damaged), **options)


def test_wide_files_scored_from_many_threads_at_once(tmp_path, monkeypatch):
    """Runs in threads of the caller's, each with its own helper taking columns beside its row
    group's thread, give the bits of a run alone, and so do their groups."""
    import threading

    path = str(tmp_path / "wide.parquet")
    table = _wide_table(3000).append_column("split", pa.array(["train", "test", "val"] * 1000))
    pq.write_table(table, path, row_group_size=1000, data_page_size=2000, write_page_checksum=True)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    options = dict(target="label", logits="c*", group_by="split", batch_rows=700)
    alone = fx.score(path, **options)
    got = []

    def score_twice():
        got.extend(fx.score(path, **options) for _ in range(2))

    threads = [threading.Thread(target=score_twice) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8
    for score in got:
        assert_same_score(score, alone)
        for key, group in alone.groups.items():
            assert run_fields(score.groups[key]) == run_fields(group)
