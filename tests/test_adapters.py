"""A polars LazyFrame and a Hugging Face Dataset scored directly (:mod:`fastxent.io.adapters`).

``fastxent.io.memory.memory_parts`` asks the adapters first.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import fastxent as fx
from fastxent.io import adapters

datasets = pytest.importorskip("datasets")

RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(3000, 4)).astype(np.float32)
LABELS = RNG.integers(0, 4, 3000)


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "preds.parquet"
    pl.DataFrame(
        {"label": LABELS, "logits": pl.Series(LOGITS, dtype=pl.Array(pl.Float32, 4)), "id": np.arange(3000)}
    ).write_parquet(path, row_group_size=1000)
    return path


def test_a_lazy_frame_scores_only_its_needed_columns(parquet):
    def never(_):
        raise AssertionError("a column no one asked for was computed")

    lazy = pl.scan_parquet(parquet).with_columns(
        unused=pl.col("id").map_batches(never, return_dtype=pl.Int64)
    )
    result = fx.score(lazy, target="label", logits="logits", batch_rows=512)
    assert result.rows == 3000
    assert result.loss == fx.score(pl.read_parquet(parquet), target="label", logits="logits").loss


def test_a_lazy_frame_query_is_scored_as_it_filters(parquet):
    lazy = pl.scan_parquet(parquet).filter(pl.col("label") != 3)
    result = fx.score(lazy, target="label", logits="logits")
    kept = LABELS != 3
    assert result.rows == int(kept.sum())
    assert result.loss == pytest.approx(fx.cross_entropy(LOGITS[kept], LABELS[kept]), rel=1e-6)


def _dataset():
    return datasets.Dataset.from_dict({"label": LABELS, "logits": LOGITS.tolist()})


def test_a_hugging_face_dataset_and_its_selections():
    dataset = _dataset()
    name, schema, rows, _ = adapters.adapt(dataset)
    assert (name, rows, schema.field("logits").type) == ("<Dataset>", 3000, pa.list_(pa.float64()))
    assert fx.score(dataset, target="label", logits="logits").loss == pytest.approx(
        fx.cross_entropy(LOGITS, LABELS), rel=1e-6
    )
    picked = dataset.shuffle(seed=0).select(range(100))  # rows through an indices mapping
    order = np.asarray(picked["label"])
    result = fx.score(picked, target="label", logits="logits")
    assert result.rows == 100
    assert result.loss == pytest.approx(fx.cross_entropy(np.asarray(picked["logits"]), order), rel=1e-6)


def test_a_dataset_dict_names_its_splits():
    splits = datasets.DatasetDict({"train": _dataset(), "test": _dataset()})
    with pytest.raises(fx.InputTypeError) as info:
        adapters.adapt(splits)
    assert str(info.value) == (
        "`source` is a DatasetDict of the splits 'train', 'test'; pass one of them, e.g. `source['train']`."
    )


def test_other_objects_are_not_adapted():
    assert adapters.adapt(pa.table({"a": [1]})) is None and adapters.adapt("a.parquet") is None
