"""In-memory sources (pandas, Polars, DuckDB, Arrow streams) score to the same bits as the same
data read from a Parquet file, and single-use streams are read once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.io import part
from fastxent.run.plan import prepare
from fastxent.score import execute

ROWS = 6000
NAMES = np.array(["ant", "bee", "cat", "dog", "eel"])
BATCH = 700  # rows per batch of the Arrow streams: planning must look past the first batch


def _data(kind: str, dtype=np.float32):
    """``(logits, names)``: five classes whose last ("eel") first turns up at row 4000, or two."""
    rng = np.random.default_rng(7)
    if kind == "binary":
        return rng.normal(0.0, 3.0, ROWS).astype(dtype), np.array(["neg", "pos"])[rng.integers(0, 2, ROWS)]
    index = rng.integers(0, 4, ROWS)
    index[4000::3] = 4
    return rng.standard_normal((ROWS, len(NAMES))).astype(dtype), NAMES[index]


def _table(x: np.ndarray, names, label_type: pa.DataType | None = None) -> pa.Table:
    logits = pa.array(x) if x.ndim == 1 else pa.FixedSizeListArray.from_arrays(x.reshape(-1), x.shape[1])
    return pa.table({"logits": logits, "label": pa.array(names).cast(label_type or pa.string())})


def _from_parquet(tmp_path, x: np.ndarray, names: np.ndarray) -> fx.Score:
    """The score of the data written to a Parquet file of one row group (a stream is one unit)."""
    path = str(tmp_path / "reference.parquet")
    pq.write_table(_table(x, names), path, row_group_size=ROWS)
    return fx.score(path, target="label", logits="logits")


def _same(got: fx.Score, want: fx.Score) -> None:
    assert (got.loss, got.total, got.weight) == (want.loss, want.total, want.weight)
    assert (got.rows, got.scored, got.nulls) == (want.rows, want.scored, want.nulls)
    assert got.accuracy == want.accuracy
    assert got.kind == want.kind and np.isfinite(got.loss)


class CStream:
    """An object speaking only the Arrow C stream protocol, in several batches."""

    def __init__(self, table: pa.Table):
        self.table = pa.Table.from_batches(table.to_batches(max_chunksize=BATCH))

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def _arrow_reader(x, names):
    return _table(x, names).to_reader(max_chunksize=BATCH)


def _c_stream(x, names):
    return CStream(_table(x, names))


def _pandas(x, names, cells="arrays"):
    pd = pytest.importorskip("pandas")
    if x.ndim == 2:  # an object column of NumPy arrays (or lists): pyarrow infers list<...>
        x = list(x) if cells == "arrays" else [row.tolist() for row in x]
    return pd.DataFrame({"logits": x, "label": names})


def _pandas_categorical(x, names):
    pd = pytest.importorskip("pandas")
    frame = _pandas(x, names)
    return frame.assign(label=pd.Categorical(names, categories=[*sorted(set(names)), "unused"]))


def _polars(x, names, logits=None, label=None):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"logits": x, "label": names})  # (N, C) -> Array(Float32, C); str -> String
    return frame.with_columns(
        *([pl.col("logits").cast(logits(pl))] if logits else []),
        *([pl.col("label").cast(label(pl, sorted(set(names))))] if label else []),
    )


def _polars_list(x, names):
    return _polars(x, names, logits=lambda pl: pl.List(pl.Float32))


def _polars_categorical(x, names):
    return _polars(x, names, label=lambda pl, classes: pl.Categorical)


def _polars_enum(x, names):  # declared in sorted order: the classes' order is not in question here
    return _polars(x, names, label=lambda pl, classes: pl.Enum(classes))


def _duckdb(x, names):
    duckdb = pytest.importorskip("duckdb")
    connection = duckdb.connect()
    connection.register("predictions", _table(x, names))
    return connection.sql("select logits, label from predictions")


COMMON_FRAMES = {
    "arrow reader": _arrow_reader,
    "arrow c stream": _c_stream,
    "pandas": _pandas,
    "pandas categorical": _pandas_categorical,
    "polars string_view": _polars,
    "polars categorical": _polars_categorical,
    "duckdb": _duckdb,
}
# multiclass: pandas arrays -> list<float>, polars Array -> fixed_size_list, List -> large_list
MULTICLASS_FRAMES = COMMON_FRAMES | {"polars list": _polars_list, "polars enum": _polars_enum}


@pytest.mark.parametrize("frame", list(MULTICLASS_FRAMES))
def test_multiclass_string_target_equals_the_parquet_file(tmp_path, frame):
    x, names = _data("multiclass")
    got = fx.score(MULTICLASS_FRAMES[frame](x, names), target="label", logits="logits")
    want = _from_parquet(tmp_path, x, names)
    assert want.kind == "multiclass" and want.rows == ROWS
    assert want.total == fx.score(_table(x, names), target="label", logits="logits").total
    _same(got, want)


@pytest.mark.parametrize("frame", list(COMMON_FRAMES))
def test_binary_string_target_equals_the_parquet_file(tmp_path, frame):
    x, names = _data("binary")
    got = fx.score(COMMON_FRAMES[frame](x, names), target="label", logits="logits")
    want = _from_parquet(tmp_path, x, names)
    assert want.kind == "binary" and want.loss == fx.binary_cross_entropy_with_logits(x, names == "pos")
    _same(got, want)


@pytest.mark.parametrize("cells", ["arrays", "lists"])
def test_pandas_float64_arrays_and_lists_score_as_list_of_double(tmp_path, cells):
    x, names = _data("multiclass", np.float64)
    got = fx.score(_pandas(x, names, cells), target="label", logits="logits")
    _same(got, _from_parquet(tmp_path, x, names))


STRING_TYPES = [pa.large_string(), pa.string_view()]
DICTIONARY_TYPES = [pa.dictionary(pa.int32(), pa.string_view()), pa.dictionary(pa.int8(), pa.large_string())]


def _with_null_labels(tmp_path, label_type):
    """``(table, reference Parquet file)``: every 97th label null, labels of ``label_type``."""
    x, names = _data("multiclass")
    with_nulls = pa.array(np.where(np.arange(ROWS) % 97 == 5, None, names).tolist(), pa.string())
    path = str(tmp_path / "reference.parquet")
    pq.write_table(_table(x, with_nulls), path, row_group_size=ROWS)
    return _table(x, with_nulls, label_type), path


@pytest.mark.parametrize("label_type", STRING_TYPES + DICTIONARY_TYPES, ids=str)
@pytest.mark.parametrize("stream", [False, True], ids=["table", "reader"])
def test_every_string_type_maps_classes_and_skips_nulls(tmp_path, label_type, stream):
    table, path = _with_null_labels(tmp_path, label_type)
    source = table.to_reader(max_chunksize=BATCH) if stream else table
    got = fx.score(source, target="label", logits="logits")
    want = fx.score(path, target="label", logits="logits")
    assert want.nulls == len(range(5, ROWS, 97)) and want.scored == ROWS - want.nulls
    _same(got, want)


@pytest.mark.parametrize("label_type", STRING_TYPES + DICTIONARY_TYPES, ids=str)
def test_every_string_type_groups_with_a_null_key(tmp_path, label_type):
    table, path = _with_null_labels(tmp_path, label_type)
    got = fx.score(table.to_reader(max_chunksize=BATCH), target="label", logits="logits", group_by="label")
    want = fx.score(path, target="label", logits="logits", group_by="label")
    assert list(got.groups) == list(want.groups) == [*NAMES, None]
    for key in NAMES:
        _same(got.groups[key], want.groups[key])
    assert got.groups[None].nulls == want.groups[None].nulls == want.nulls > 0


def _counted_reader(table: pa.Table, pulled: list) -> pa.RecordBatchReader:
    def batches():
        for batch in table.to_batches(max_chunksize=BATCH):
            pulled.append(batch.num_rows)
            yield batch

    return pa.RecordBatchReader.from_batches(table.schema, batches())


def test_a_stream_is_read_once_and_only_as_far_as_its_classes(tmp_path):
    x, names = _data("multiclass")
    table = _table(x, names).cast(pa.schema([("logits", pa.list_(pa.float32())), ("label", pa.string())]))
    pulled: list = []
    job = prepare(_counted_reader(table, pulled), target="label", logits="logits")
    assert job.plan.classes == list(NAMES) and job.plan.num_classes == 5
    assert len(pulled) == 4000 // BATCH + 1  # up to the batch where "eel" first turns up
    got = execute(job, [])
    assert sum(pulled) == ROWS and len(pulled) == -(-ROWS // BATCH)  # each batch pulled once
    _same(got, _from_parquet(tmp_path, x, names))
    with pytest.raises(fx.InputValueError, match="<stream> is a single-use stream and has been read"):
        execute(job, [])


def test_a_stream_with_more_or_fewer_names_than_classes_fails():
    x, names = _data("multiclass")
    names = np.where(names == "eel", "fox", names)
    names[4500] = "eel"  # a sixth name after five were found: planning has stopped looking
    with pytest.raises(fx.InputValueError, match="class 'eel' at row 4500 of '<stream>', which is not"):
        fx.score(_arrow_reader(x, names), target="label", logits="logits")
    with pytest.raises(fx.InputValueError, match="4 distinct names were found but the predictions have 5"):
        fx.score(_arrow_reader(x[:4000], names[:4000]), target="label", logits="logits")


def test_a_stream_whose_first_rows_are_null_takes_the_width_from_the_first_value():
    x, names = _data("multiclass")
    logits = pa.array([None] * 3 + list(x[3:600]), pa.list_(pa.float32()))
    table = pa.table({"logits": logits, "label": names[:600]})
    options = dict(target="label", logits="logits", classes=list(NAMES))  # "eel" comes after row 600
    got = fx.score(table.to_reader(max_chunksize=2), **options)
    assert got.nulls == 3 and got.scored == 597
    _same(got, fx.score(table, **options))
    with pytest.raises(fx.InputValueError, match="'logits': the source is empty or the column is all nulls"):
        fx.score(table.slice(0, 3).to_reader(max_chunksize=2), **options)


def test_a_polars_lazy_frame_scores_as_its_frame():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"logits": [0.5, -1.0, 2.0], "label": [1, 0, 0]})
    lazy = fx.score(frame.lazy(), target="label", logits="logits")
    assert (lazy.total, lazy.rows) == (fx.score(frame, target="label", logits="logits").total, 3)


@pytest.mark.parametrize("shape", ["table", "chunked", "batch", "stream"])
def test_in_memory_units_are_fixed_row_spans(tmp_path, monkeypatch, shape):
    """An in-memory source is cut into units of ``UNIT_ROWS`` rows whatever its chunks and
    batches: it scores, total and groups, to the bits of a Parquet file with row groups of that
    many rows (each row group a unit), for any ``batch_rows``."""
    x, names = _data("multiclass", np.float64)  # float32 losses sum exactly: blocks would not show
    table = _table(x, names).append_column("split", pa.array(np.array(["a", "b", "c"])[np.arange(ROWS) % 3]))
    path = str(tmp_path / "units.parquet")
    pq.write_table(table, path, row_group_size=1000)
    expected = fx.score(path, target="label", logits="logits", group_by="split")
    expected_groups = {k: (g.total, g.rows) for k, g in expected.groups.items()}
    whole = fx.score(table, target="label", logits="logits")  # one unit: fewer rows than UNIT_ROWS
    assert whole.total != expected.total  # units matter to the bits: the test can tell them apart
    assert whole.total == pytest.approx(expected.total, rel=1e-12)
    monkeypatch.setattr(part, "UNIT_ROWS", 1000)
    sources = {
        "table": lambda: table,
        "chunked": lambda: pa.Table.from_batches(table.to_batches(max_chunksize=BATCH)),
        "batch": lambda: table.combine_chunks().to_batches()[0],
        "stream": lambda: pa.RecordBatchReader.from_batches(
            table.schema, table.to_batches(max_chunksize=BATCH)
        ),
    }
    for batch_rows in (333, 1000, 4096):
        source = sources[shape]()
        got = fx.score(source, target="label", logits="logits", group_by="split", batch_rows=batch_rows)
        assert (got.total, got.rows) == (expected.total, expected.rows)
        assert {k: (g.total, g.rows) for k, g in got.groups.items()} == expected_groups
