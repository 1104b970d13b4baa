"""Files written by different tools score together: their column types are unified
(:func:`fastxent.io.schemas.unify_part_schemas`), and only what truly differs is refused."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.io.schemas import unified_type, unify_part_schemas
from fastxent.io.sources import open_parts

LOGITS = [[1.0, 2.0, 3.0], [0.5, 0.1, 0.2], [2.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.5, 0.5, -0.5]]
NAMES = ["zebra", "ant", "cat", "ant", "zebra"]


@pytest.fixture
def mixed(tmp_path):
    """One data set written in four pieces by pandas, polars (Parquet and IPC) and DuckDB."""
    root = tmp_path / "mixed"
    root.mkdir()
    pd.DataFrame({"y": NAMES[:2], "x": LOGITS[:2], "id": [0, 1]}).to_parquet(root / "a_pandas.parquet")
    pl.DataFrame(
        {"y": NAMES[2:3], "x": pl.Series(LOGITS[2:3], dtype=pl.Array(pl.Float64, 3)), "id": [2]}
    ).write_parquet(root / "b_polars.parquet")
    pl.DataFrame(  # string_view names, int32 ids
        {
            "y": NAMES[3:4],
            "x": pl.Series(LOGITS[3:4], dtype=pl.Array(pl.Float64, 3)),
            "id": pl.Series([3], dtype=pl.Int32),
        }
    ).write_ipc(root / "c_polars.arrow")
    duckdb.sql(
        "COPY (SELECT 'zebra' AS y, [1.5, 0.5, -0.5]::DOUBLE[] AS x, 4 AS id) "
        f"TO '{root / 'd_duckdb.parquet'}' (FORMAT PARQUET)"
    )
    return root


def test_the_tools_write_different_types(mixed):
    types = {part.name.rsplit("/", 1)[-1]: part.schema.field("y").type for part in open_parts(str(mixed))}
    assert {str(t) for t in types.values()} == {"large_string", "string_view", "string"}


def test_unify_part_schemas_of_four_tools(mixed):
    unified = unify_part_schemas(open_parts(str(mixed)), ["x", "y", "id"])
    assert unified == {"x": pa.list_(pa.float64()), "y": pa.large_string(), "id": pa.int64()}


def test_mixed_files_score_as_their_concatenation(mixed):
    result = fx.score(str(mixed), target="y", logits="x", group_by="id")
    sorted_classes = sorted(set(NAMES))
    want = fx.cross_entropy(np.array(LOGITS), np.array([sorted_classes.index(n) for n in NAMES]))
    assert result.rows == 5 and result.loss == pytest.approx(want, rel=1e-12)
    assert list(result.groups) == [0, 1, 2, 3, 4]  # int32 and int64 ids: one kind of key


@pytest.mark.parametrize(
    "a,b,want",
    [
        (pa.string(), pa.string_view(), pa.large_string()),
        (pa.dictionary(pa.int8(), pa.string(), True), pa.string(), pa.large_string()),
        (pa.dictionary(pa.int8(), pa.string_view()), pa.dictionary(pa.int8(), pa.large_string()), None),
        (pa.list_(pa.float32(), 3), pa.list_(pa.field("element", pa.float64())), pa.list_(pa.float64())),
        (pa.fixed_shape_tensor(pa.float32(), [3]), pa.list_(pa.float32(), 3), pa.list_(pa.float32(), 3)),
        (pa.large_list(pa.float16()), pa.list_(pa.float32()), pa.large_list(pa.float32())),
        (pa.int32(), pa.uint8(), pa.int32()),
        (pa.bool_(), pa.int64(), pa.int64()),
        (pa.null(), pa.string(), pa.string()),
    ],
)
def test_unified_type(a, b, want):
    if want is None:  # the same dictionary of names, but for string_view (read as large_string)
        want = pa.dictionary(pa.int8(), pa.large_string())
    assert unified_type(a, b) == want and unified_type(b, a) == want


@pytest.mark.parametrize(
    "a,b",
    [
        (pa.list_(pa.float32(), 3), pa.list_(pa.float32(), 4)),
        (pa.fixed_shape_tensor(pa.float32(), [4]), pa.list_(pa.float32(), 3)),
        (pa.string(), pa.int64()),
        (pa.dictionary(pa.int32(), pa.string()), pa.int64()),
        (pa.list_(pa.float32()), pa.float32()),
        (pa.date32(), pa.timestamp("s")),
    ],
)
def test_what_truly_differs_is_refused(a, b):
    assert unified_type(a, b) is None and unified_type(b, a) is None


def _write(path, **columns):
    pq.write_table(pa.table(columns), path)
    return str(path)


def test_refusals_name_both_files(tmp_path):
    x3 = pa.array([[0.0, 1.0, 2.0]], pa.list_(pa.float32(), 3))
    x4 = pa.array([[0.0, 1.0, 2.0, 3.0]], pa.list_(pa.float32(), 4))
    a = _write(tmp_path / "a.parquet", x=x3, y=pa.array(["cat"]))
    b = _write(tmp_path / "b.parquet", x=x3, y=pa.array([1]))
    c = _write(tmp_path / "c.parquet", x=x4, y=pa.array(["cat"]))
    with pytest.raises(fx.InputValueError) as info:
        unify_part_schemas(open_parts([a, b]), ["x", "y"])
    assert str(info.value) == (
        f"column 'y' holds numbers (int64) in '{b}' but class names (string) in '{a}'; files scored "
        "together must hold the same classes and kind of values in it."
    )
    with pytest.raises(fx.InputValueError, match=f"column 'x' holds 4 values per row .* in '{c}' but 3"):
        unify_part_schemas(open_parts([a, c]), ["x", "y"])
    d = _write(tmp_path / "d.parquet", x=x3)
    with pytest.raises(fx.InputValueError, match=f"'{d}' has no column 'y' \\(which '{a}' has\\)"):
        unify_part_schemas(open_parts([a, d]), ["x", "y"])


def test_an_all_null_column_takes_the_type_of_the_others(tmp_path):
    x = pa.array([[0.0, 1.0]], pa.list_(pa.float32(), 2))
    a = _write(tmp_path / "a.parquet", x=x, w=pa.nulls(1))
    b = _write(tmp_path / "b.parquet", x=x, w=pa.array(["s"]))
    c = _write(tmp_path / "c.parquet", x=x, w=pa.array([2.0]))
    assert unify_part_schemas(open_parts([a, b]), ["w"]) == {"w": pa.string()}
    with pytest.raises(fx.InputValueError, match=f"in '{c}' but class names \\(string\\) in '{b}'"):
        unify_part_schemas(open_parts([a, b, c]), ["w"])
