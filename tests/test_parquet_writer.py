"""fastxent's own Parquet writer (per-row outputs): what it writes reads back, bit for bit, in
pyarrow, Polars and DuckDB, for every integer and float type, nullable or not, across page and
row-group boundaries; its statistics are the values' bounds; other types stay with pyarrow."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.io.parquet_writer import RowsWriter, writes
from fastxent.io.parquet_writer.writer import PAGE_ROWS

INTEGERS = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]
FLOATS = [pa.float32(), pa.float64()]


def _written(table: pa.Table, row_group_rows: int = 1000) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    writer = RowsWriter(sink, table.schema)
    writer.write_table(table, row_group_size=row_group_rows)
    writer.close()
    return sink.getvalue()


def _values(typ: pa.DataType, n: int, pattern: str, rng) -> np.ndarray:
    dtype = typ.to_pandas_dtype()
    if pattern == "constant":
        return np.full(n, 7, dtype)
    if pattern == "steps":  # row numbers and ids: one delta
        return (np.arange(n) * 3 + 1).astype(dtype)
    if pa.types.is_floating(typ):
        values = rng.standard_normal(n).astype(dtype)
        values[::97] = np.nan
        values[1::101] = -np.inf
        values[2::103] = -0.0
        return values
    info = np.iinfo(dtype)
    values = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    values[::50] = info.min  # the widest deltas, wrapping
    values[1::50] = info.max
    return values


def _table(typ: pa.DataType, n: int, pattern: str, nullable: bool, rng) -> pa.Table:
    values = _values(typ, n, pattern, rng)
    mask = (rng.random(n) < 0.3) if nullable else None
    array = pa.array(values, type=typ, mask=mask)
    return pa.table([array], schema=pa.schema([pa.field("v", typ, nullable=nullable)]))


def _same(got: pa.Table, want: pa.Table) -> None:
    assert got.schema.equals(want.schema), (got.schema, want.schema)
    for a, b in zip(got.columns, want.columns, strict=True):
        a, b = a.combine_chunks(), b.combine_chunks()
        assert a.is_null().equals(b.is_null())
        if pa.types.is_floating(a.type):  # NaN != NaN: compare the bits
            bits = pa.int32() if a.type == pa.float32() else pa.int64()
            a, b = (x.fill_null(0).view(bits) for x in (a, b))
        assert a.equals(b)


@pytest.mark.parametrize("typ", INTEGERS + FLOATS, ids=str)
@pytest.mark.parametrize("nullable", [False, True])
@pytest.mark.parametrize("pattern", ["random", "steps", "constant"])
def test_every_type_reads_back_bit_for_bit(typ, nullable, pattern):
    rng = np.random.default_rng(zlib.crc32(f"{typ} {nullable} {pattern}".encode()))
    for n, row_groups in ((0, 10), (1, 10), (33, 10), (129, 64), (2500, 1000)):
        table = _table(typ, n, pattern, nullable, rng)
        back = pq.read_table(pa.BufferReader(_written(table, row_groups)))
        _same(back, table)


def test_pages_and_row_groups_split_anywhere():
    """Several pages a column chunk (PAGE_ROWS each), nulls across their boundaries, row groups
    of odd sizes: the same rows come back, in order."""
    rng = np.random.default_rng(5)
    n = PAGE_ROWS + 1000
    table = pa.table(
        {
            "row": pa.array(np.arange(n, dtype=np.int64)),
            "id": pa.array(rng.integers(0, 1 << 40, n), mask=rng.random(n) < 0.5),
            "loss": pa.array(rng.random(n).astype(np.float32)),
        }
    )
    table = table.cast(pa.schema([pa.field("row", pa.int64(), False), table.schema[1], table.schema[2]]))
    for row_groups in (n, PAGE_ROWS - 1, 77_777):
        file = pq.ParquetFile(pa.BufferReader(_written(table, row_groups)))
        assert file.metadata.num_row_groups == -(-n // row_groups)
        _same(file.read(), table)


def test_nullable_columns_without_nulls_and_their_bounds():
    """A nullable column with no null row (a losses file's ``keep`` id) is written with one run
    of definition levels a page; pages of several arrays and row groups of any size read back
    the same, and every integer type's statistics are the bounds of the row group's values in
    the type's own order (unsigned values past the signed range included)."""
    rng = np.random.default_rng(7)
    n = PAGE_ROWS + 3001
    for typ in INTEGERS + FLOATS:
        for pattern in ("random", "steps", "constant"):
            values = _values(typ, n, pattern, rng)
            chunks = [pa.array(part, type=typ) for part in np.split(values, [5, 5, 70_000])]
            table = pa.Table.from_batches(
                [pa.record_batch([c], names=["v"]) for c in chunks],
                schema=pa.schema([pa.field("v", typ, nullable=True)]),
            )
            for row_groups in (n, 77_777):
                file = pq.ParquetFile(pa.BufferReader(_written(table, row_groups)))
                _same(file.read(), table)
                for k in range(file.metadata.num_row_groups):
                    stats = file.metadata.row_group(k).column(0).statistics
                    rows = values[row_groups * k : row_groups * (k + 1)]
                    assert stats.null_count == 0
                    if pa.types.is_integer(typ):
                        assert (stats.min, stats.max) == (rows.min(), rows.max()), (typ, pattern)


@pytest.mark.parametrize("typ", [pa.int64(), pa.uint32(), pa.int8(), pa.float32()], ids=str)
def test_row_groups_of_many_batches_write_each_batchs_pages(typ):
    """A table of many chunks (a losses file's batches, of any sizes, some empty, nulls across
    their ends) written in row groups that start and end inside chunks: the same rows come back,
    and each row group's statistics bound all its chunks' values."""
    rng = np.random.default_rng(8)
    sizes = [0, 1, 700, PAGE_ROWS + 3, 0, 4096, 33, 2 * PAGE_ROWS]
    parts = [_table(typ, n, "random", True, rng) for n in sizes]
    table = pa.concat_tables(parts)
    assert table.column(0).num_chunks == len(sizes)
    for rows in (table.num_rows, 100_000, PAGE_ROWS + 1):
        file = pq.ParquetFile(pa.BufferReader(_written(table, rows)))
        _same(file.read(), table)
        for k in range(file.metadata.num_row_groups):
            stats = file.metadata.row_group(k).column(0).statistics
            values = table.column(0).slice(rows * k, rows).drop_null().to_numpy()
            assert stats.null_count == min(rows, table.num_rows - rows * k) - values.size
            if pa.types.is_integer(typ):
                assert (stats.min, stats.max) == (values.min(), values.max())


def test_statistics_are_the_bounds_of_each_row_group():
    rng = np.random.default_rng(6)
    for typ in INTEGERS:
        table = _table(typ, 3000, "random", True, rng)
        file = pq.ParquetFile(pa.BufferReader(_written(table, 1000)))
        for k in range(file.metadata.num_row_groups):
            stats = file.metadata.row_group(k).column(0).statistics
            rows = table.column(0).slice(1000 * k, 1000).drop_null().to_numpy()
            assert (stats.min, stats.max, stats.null_count) == (rows.min(), rows.max(), 1000 - rows.size)
    floats = _table(pa.float64(), 100, "random", True, rng)
    stats = pq.ParquetFile(pa.BufferReader(_written(floats))).metadata.row_group(0).column(0).statistics
    assert not stats.has_min_max and stats.null_count == floats.column(0).null_count


def test_polars_and_duckdb_read_the_same_values(tmp_path):
    polars = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    rng = np.random.default_rng(7)
    columns = [_table(t, 3000, "random", i % 2 == 1, rng) for i, t in enumerate(INTEGERS + FLOATS)]
    table = pa.table(
        [c.column(0) for c in columns],
        schema=pa.schema([c.schema[0].with_name(f"c{i}") for i, c in enumerate(columns)]),
    )
    path = tmp_path / "rows.parquet"
    path.write_bytes(_written(table).to_pybytes())
    via_polars = polars.read_parquet(path).to_arrow()
    _same(via_polars.cast(table.schema), table)
    result = duckdb.sql(f"select * from '{path}'").arrow()
    via_duckdb = result.read_all() if hasattr(result, "read_all") else result
    _same(via_duckdb.cast(table.schema), table)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=700),
    st.sampled_from([pa.int64(), pa.int32()]),
)
def test_any_integers_read_back(values, typ):
    if typ == pa.int32():
        values = [None if v is None else (v % 2**32) - 2**31 for v in values]
    table = pa.table({"v": pa.array(values, typ)})
    _same(pq.read_table(pa.BufferReader(_written(table, 300))), table)


def test_only_integer_and_float_tables_are_written_here():
    assert writes(pa.schema([("a", pa.int8()), ("b", pa.float64())]))
    for other in (pa.string(), pa.bool_(), pa.float16(), pa.dictionary(pa.int32(), pa.string()), pa.date32()):
        assert not writes(pa.schema([("a", pa.int64()), ("b", other)]))
    assert not writes(pa.schema([]))
    with pytest.raises(TypeError, match="integer and float columns"):
        RowsWriter(pa.BufferOutputStream(), pa.schema([("s", pa.string())]))
    writer = RowsWriter(pa.BufferOutputStream(), pa.schema([("a", pa.int64())]))
    with pytest.raises(ValueError, match="schema"):
        writer.write_table(pa.table({"a": pa.array([1.0])}), 10)


@pytest.mark.parametrize("keep", [["id"], ["name"], []])
def test_a_losses_file_reads_back_as_the_row_losses(tmp_path, keep):
    """The losses file (this writer for integer and float columns, pyarrow with a string kept):
    one row per input row, the row losses of reduction="none", read back by pyarrow."""
    rng = np.random.default_rng(8)
    n = 20_000
    logits = rng.standard_normal(n).astype(np.float32)
    labels = rng.integers(0, 2, n)
    source = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {"label": labels, "logits": logits, "id": np.arange(n) * 5, "name": [f"r{i}" for i in range(n)]}
        ),
        source,
        row_group_size=3000,
    )
    out = tmp_path / "losses.parquet"
    fx.score(str(source), target="label", logits="logits", losses_to=str(out), keep=keep)
    back = pq.read_table(out)
    want = fx.binary_cross_entropy_with_logits(logits, labels.astype(np.float32), reduction="none")
    assert back.column_names == ["row", *keep, "loss", "predicted"]
    assert np.array_equal(back.column("row").to_numpy(), np.arange(n))
    assert np.array_equal(back.column("loss").to_numpy(), np.asarray(want))
    assert np.array_equal(back.column("predicted").to_numpy(), (logits > 0).astype(np.int8))
    if keep == ["id"]:
        assert np.array_equal(back.column("id").to_numpy(), np.arange(n) * 5)
    assert not back.schema.field("row").nullable and not back.schema.field("loss").nullable
