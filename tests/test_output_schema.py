"""Output a pipeline can keep: typed group keys in JSON, the run recorded, Arrow/pandas tables of
the groups, and a readable ``Score``."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math

import numpy as np
import pyarrow as pa
import pytest

import fastxent as fx
from fastxent.cli import main, render
from fastxent.group_scores import GroupScores, canonical_key


def _groups(keys, names=None, kind="multiclass"):
    """GroupScores of ``keys`` (in that order of ids), group g having loss g + 0.5."""
    n = len(keys)
    total = np.arange(n) + 0.5
    counts = np.arange(1, n + 1, dtype=np.int64)
    columns = {
        "loss": total.copy(),
        "stderr": np.full(n, 0.125),
        "total": total,
        "weight": np.ones(n),
        "rows": counts,
        "scored": counts,
        "ignored": np.zeros(n, np.int64),
        "nulls": np.zeros(n, np.int64),
        "nonfinite": np.zeros(n, np.int64),
        "accuracy": np.full(n, 0.25),
        "perplexity": np.exp(total) if kind == "multiclass" else None,
    }
    return GroupScores(list(keys), columns, kind, "cpu", names=names)


def _score(groups=None, classes=None):
    return fx.Score(
        loss=0.75,
        stderr=0.25,
        total=1.5,
        weight=2.0,
        rows=3,
        scored=2,
        ignored=1,
        nulls=0,
        nonfinite=0,
        accuracy=0.5,
        perplexity=math.exp(0.75),
        kind="multiclass",
        device="cpu",
        elapsed_s=0.5,
        rows_per_s=6.0,
        bytes_per_s=96.0,
        groups=groups if groups is not None else {},
        classes=classes,
    )


def test_group_keys_are_objects_with_typed_values():
    groups = _groups([("test", 0), ("train", 1)], names=["split", "fold"]).ordered(
        [("train", 1), ("test", 0)]
    )
    doc = json.loads(_score(groups).to_json())
    assert [g["key"] for g in doc["groups"]] == [{"split": "train", "fold": 1}, {"split": "test", "fold": 0}]
    assert doc["groups"][0] == {
        "key": {"split": "train", "fold": 1},
        "loss": 1.5,
        "stderr": 0.125,
        "total": 1.5,
        "weight": 1.0,
        "rows": 2,
        "scored": 2,
        "ignored": 0,
        "nulls": 0,
        "nonfinite": 0,
        "accuracy": 0.25,
        "perplexity": math.exp(1.5),
    }


def test_json_round_trips_to_dict():
    score = _score(_groups([1, 2, None], names=["id"]), classes=["zebra", "ant"])
    assert json.loads(score.to_json()) == score.to_dict()
    assert score.to_dict()["classes"] == ["zebra", "ant"]
    assert [g["key"]["id"] for g in score.to_dict()["groups"]] == [1, 2, None]


def test_json_of_special_keys_and_values():
    day = datetime.date(2024, 5, 1)
    score = _score(_groups([day, float("nan")], names=["day"]))
    doc = json.loads(score.to_json())
    assert [g["key"]["day"] for g in doc["groups"]] == ["2024-05-01", None]
    nan_loss = dataclasses.replace(score, loss=float("nan"), total=float("inf"))
    assert json.loads(nan_loss.to_json())["loss"] is None and json.loads(nan_loss.to_json())["total"] == "inf"


def test_groups_to_arrow_and_pandas():
    groups = _groups([("b", 2), ("a", 1)], names=["split", "loss"]).ordered([("a", 1), ("b", 2)])
    table = _score(groups).to_arrow()
    assert table.column_names == ["split", "group_loss", *fx.Score.STATS]  # "loss" is a statistic
    assert table.column("split").to_pylist() == ["a", "b"]
    assert table.column("group_loss").to_pylist() == [1, 2]
    assert table.column("loss").to_pylist() == [1.5, 0.5]  # group ids 1 and 0, in key order
    assert table.schema.field("rows").type == pa.int64()
    frame = groups.to_pandas()
    assert frame["loss"].tolist() == [1.5, 0.5] and frame["split"].tolist() == ["a", "b"]


def test_arrow_of_mixed_keys_and_of_a_score_without_groups():
    table = _groups([1, "x"], names=["part"], kind="binary").to_arrow()
    assert table.column("part").to_pylist() == ["1", "x"]  # no common type: text
    assert table.column("perplexity").null_count == 2  # binary: no perplexity
    total = _score().to_arrow()
    assert total.num_rows == 1 and total.column("loss").to_pylist() == [0.75]


def test_default_key_names():
    assert _groups(["a"]).names == ["group"]
    assert _groups([("a", 1)]).names == ["group_0", "group_1"]


def test_readable_repr():
    score = _score(_groups(["test", "train"], names=["split"]), classes=["zebra", "ant"])
    assert repr(score) == (
        "Score(multiclass, cpu)\n"
        "  loss        0.75 ± 0.25\n"
        "  accuracy    0.5\n"
        "  perplexity  2.117\n"
        "  rows        3: 2 scored, 1 ignored, 0 null, 0 non-finite\n"
        "  classes     zebra, ant\n"
        "  groups      2 ('test': 0.5, 'train': 1.5)\n"
        "  time        0.5 s (6 rows/s, 0 MB/s)"
    )


def test_many_classes_are_listed_short():
    score = _score(classes=[f"c{i}" for i in range(100)])
    assert score.listed_classes() == "c0, c1, c2, c3, c4, c5, c6, c7, c8, ..., c99 (100 classes)"


def test_table_shows_the_classes_and_json_records_the_run():
    score = _score(_groups([("test", 0)], names=["split", "fold"]), classes=["zebra", "ant"])
    table = render(score, "table").splitlines()
    assert table[0].split()[:3] == ["split,", "fold", "loss"]  # the group_by columns head the keys
    assert table[2].startswith("test, 0")
    assert table[-2] == "classes (in index order): zebra, ant"
    doc = json.loads(render(score, "json", {"fastxent_version": fx.__version__, "inputs": ["a.parquet"]}))
    assert doc["fastxent_version"] == fx.__version__ and doc["inputs"] == ["a.parquet"]
    assert doc["classes"] == ["zebra", "ant"] and doc["device"] == "cpu"
    lines = [json.loads(line) for line in render(score, "jsonl").splitlines()]
    assert [line["group"] for line in lines] == [{"split": "test", "fold": 0}, None]
    assert "elapsed_s" not in lines[0] and lines[1]["elapsed_s"] == 0.5


def test_cli_json_records_inputs_options_and_version(tmp_path, capsys):
    path = tmp_path / "mc.parquet"
    assert main(["make-data", str(path), "--rows", "200", "--classes", "3"]) == 0
    capsys.readouterr()
    argv = ["score", str(path), "--target", "label", "--logits", "logits", "--label-smoothing", "0.1"]
    assert main([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fastxent_version"] == fx.__version__ and doc["inputs"] == [str(path)]
    assert doc["options"]["label_smoothing"] == 0.1 and doc["options"]["target"] == "label"
    assert doc["options"]["kind"] == "auto" and doc["kind"] == "multiclass"
    want = fx.score(str(path), target="label", logits="logits", label_smoothing=0.1)
    assert doc["loss"] == want.loss and doc["groups"] == [] and doc["classes"] is None


@pytest.mark.parametrize(
    "keys",
    [
        [5, -3, 2**63 + 7, 0, 2**62],  # beyond int64: NumPy's uint64
        [5, -3, 2**64 + 1, 0],  # beyond 64 bits: Python's sort
        [3, 1, 2, -(2**63)],
        [True, False],
        ["b", "a", "ä", ""],
        [1.5, -0.0, -2.0],
        [1.5, float("nan"), None, -2.0],
        [2, "a", None, 1.0, ("x", 1)],
        [("b", 2), ("a", None), ("a", 1), (None, 0)],
    ],
)
def test_groups_are_iterated_in_key_order(keys):
    """Nulls, then NaN, last, mixed types by type name: the order of a Python sort by
    (null, NaN, type name, value), whichever way the keys are sorted."""

    def sort_key(key):
        parts = key if isinstance(key, tuple) else (key,)
        return tuple((v is None, v != v, type(v).__name__, v if v == v else 0) for v in parts)

    keys = [canonical_key(k) for k in keys]  # as a run's keys are: one NaN object
    in_order = _groups(keys).in_key_order()
    expected = sorted(keys, key=sort_key)
    assert list(in_order) == expected
    losses = [keys.index(k) + 0.5 for k in expected]
    assert [in_order[k].loss for k in in_order] == losses
    assert in_order.to_arrow()["loss"].to_pylist() == losses
