"""Class-name targets are numbered in the order their type declares (a polars ``Enum``, a pandas
ordered ``Categorical``: an ordered Arrow dictionary), else in sorted order of the names.

The expected losses were computed with torch 2.13 (``F.cross_entropy`` on float64 logits, targets
the declared or the sorted indices) and pasted, so that these tests do not need torch.
"""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.io.columns import plan
from fastxent.io.labels import declared_classes, is_declared

DECLARED = ["zebra", "ant", "cat", "dog"]
NAMES = ["zebra", "ant", "cat", "dog", "ant"]
LOGITS = [
    [2.0, -1.0, 0.5, 0.0],
    [0.1, 3.0, -2.0, 1.0],
    [1.5, 0.2, 2.5, -0.5],
    [-1.0, 0.0, 0.3, 2.2],
    [0.7, 0.7, -0.3, 0.1],
]
#: torch, targets [0, 1, 2, 3, 1] (the declared indices)
DECLARED_LOSS = 0.4546558089070558
#: torch, targets [3, 0, 1, 2, 0] (indices in ["ant", "cat", "dog", "zebra"])
SORTED_LOSS = 2.2746558089070557
#: torch, rows 0, 1, 2, 4 (no row is a "dog"), targets [0, 1, 2, 1]
UNUSED_CLASS_LOSS = 0.5025107166961043


def _polars(dtype, rows=range(5)):
    return pl.DataFrame(
        {
            "y": pl.Series([NAMES[r] for r in rows], dtype=dtype),
            "x": pl.Series([LOGITS[r] for r in rows], dtype=pl.Array(pl.Float64, 4)),
        }
    )


def _pandas(categories, ordered):
    return pd.DataFrame({"y": pd.Categorical(NAMES, categories=categories, ordered=ordered), "x": LOGITS})


def _loss(source):
    return fx.score(source, target="y", logits="x").loss


def test_polars_enum_in_memory_and_in_files(tmp_path):
    frame = _polars(pl.Enum(DECLARED))
    frame.write_parquet(tmp_path / "enum.parquet")
    frame.write_ipc(tmp_path / "enum.arrow")  # a dictionary of string_view
    for source in (frame, str(tmp_path / "enum.parquet"), str(tmp_path / "enum.arrow")):
        assert _loss(source) == pytest.approx(DECLARED_LOSS, rel=1e-12)


def test_pandas_ordered_categorical_in_memory_and_in_a_file(tmp_path):
    frame = _pandas(DECLARED, ordered=True)
    frame.to_parquet(tmp_path / "ordered.parquet")
    assert _loss(frame) == pytest.approx(DECLARED_LOSS, rel=1e-12)
    assert _loss(str(tmp_path / "ordered.parquet")) == pytest.approx(DECLARED_LOSS, rel=1e-12)


def test_unordered_dictionaries_and_plain_strings_are_sorted():
    # an unordered dictionary's order is its encoder's (polars' Categorical: order of appearance)
    assert _loss(_pandas(DECLARED, ordered=False)) == pytest.approx(SORTED_LOSS, rel=1e-12)
    assert _loss(_polars(pl.Categorical)) == pytest.approx(SORTED_LOSS, rel=1e-12)
    assert _loss(_polars(pl.String)) == pytest.approx(SORTED_LOSS, rel=1e-12)


def test_a_declared_class_no_row_holds_keeps_its_index():
    frame = _polars(pl.Enum(DECLARED), rows=[0, 1, 2, 4])
    assert _loss(frame) == pytest.approx(UNUSED_CLASS_LOSS, rel=1e-12)


def test_classes_given_override_the_declared_order():
    given = fx.score(_polars(pl.Enum(DECLARED)), target="y", logits="x", classes=sorted(DECLARED))
    assert given.loss == pytest.approx(SORTED_LOSS, rel=1e-12)


def test_plan_lists_the_declared_classes():
    table = _polars(pl.Enum(DECLARED)).to_arrow()
    batch = table.to_batches()[0]
    assert is_declared(table.schema.field("y").type)
    assert declared_classes(batch.column(0)) == DECLARED
    planned = plan(table.schema, target="y", logits="x", peek=lambda column: batch)
    assert planned.classes == DECLARED


def test_declared_class_count_must_match_the_predictions():
    frame = _polars(pl.Enum([*DECLARED, "eel"]))
    with pytest.raises(fx.InputValueError) as info:
        _loss(frame)
    message = str(info.value)
    assert "5 classes are declared by its type" in message and "the predictions have 4 classes" in message
    assert "'eel'" in message


def test_a_declared_order_from_pyarrow_itself(tmp_path):
    y = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 3, 1], pa.int8()), DECLARED, ordered=True)
    table = pa.table({"y": y, "x": pa.array(LOGITS, pa.list_(pa.float64(), 4))})
    pq.write_table(table, tmp_path / "t.parquet")
    assert _loss(str(tmp_path / "t.parquet")) == pytest.approx(DECLARED_LOSS, rel=1e-12)
