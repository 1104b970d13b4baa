"""Score options: one frozen value, validated once, before any input is opened."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastxent as fx
from fastxent.options import ScoreOptions


def test_options_are_normalised_hashable_and_picklable():
    options = ScoreOptions(
        target="label",
        logits="logits",
        group_by="split",
        keep=["id"],
        class_weight=np.array([1, 2, 3]),
        pos_weight=2,
        ignore_index=np.int64(3),
        label_smoothing=np.float32(0.25),
        batch_rows=np.int32(4096),
    )
    assert options.group_by == ("split",) and options.keep == ("id",)
    assert options.class_weight == (1.0, 2.0, 3.0) and options.pos_weight == (2.0,)
    assert type(options.ignore_index) is int and options.ignore_index == 3
    assert options.label_smoothing == 0.25 and options.batch_rows == 4096
    assert pickle.loads(pickle.dumps(options)) == options and hash(options) == hash(
        pickle.loads(pickle.dumps(options))
    )
    with pytest.raises(AttributeError):
        options.nulls = "error"  # frozen: a run's options cannot change under it


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ({"kind": "multi"}, ValueError, "`kind` must be one of"),
        ({"nulls": "drop"}, ValueError, "`nulls` must be one of"),
        ({"device": "gpu"}, ValueError, "`device` must be one of"),
        ({"batch_rows": 0}, ValueError, "`batch_rows` must be a positive integer"),
        ({"batch_rows": True}, ValueError, "`batch_rows` must be a positive integer"),
        ({"ignore_index": 1.5}, TypeError, "`ignore_index` must be an integer"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ({"group_by": ["a", 3]}, TypeError, "`group_by` must be a column name"),
        ({"class_weight": [[1.0, 2.0]]}, ValueError, "must be 1-D"),
    ],
)
def test_a_bad_option_is_refused_before_the_source_is_opened(tmp_path, bad, error, match):
    missing = str(tmp_path / "no-such-file.parquet")  # opening it would be another error
    with pytest.raises(error, match=match):
        fx.score(missing, target="label", logits="logits", **bad)
    report_options = {"by" if k == "group_by" else k: v for k, v in bad.items()}
    with pytest.raises(error, match=match):
        fx.report(missing, out=tmp_path / "out", target="label", logits="logits", **report_options)
