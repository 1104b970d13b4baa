"""Multiclass probabilities (``probs=``) are checked as ``log_loss`` checks them (issue 12 item 6)."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main

GOOD = [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]


@pytest.mark.parametrize(
    "row, bad, where",
    [
        ([1.0, 2.0, 3.0], "2.0", "at row 1 of '<table>', class 1"),
        ([np.nan, 0.5, 0.5], "nan", "at row 1 of '<table>', class 0"),
        ([0.5, 0.6, -0.1], "-0.1", "at row 1 of '<table>', class 2"),
    ],
)
def test_score_probs_outside_unit_interval_raise_naming_the_row(row, bad, where):
    table = pa.table({"label": [0, 1, 2], "p": [GOOD[0], row, GOOD[2]]})
    with pytest.raises(ValueError, match=rf"`p` must hold probabilities in \[0, 1\], but has {bad} {where}"):
        fx.score(table, target="label", probs="p")


def test_score_probs_one_column_per_class():
    table = pa.table({"label": [0, 1], "a": [0.2, 0.3], "b": [0.7, 1.5], "c": [0.1, 0.2]})
    with pytest.raises(fx.InputValueError, match=r"but has 1.5 at row 1 of '<table>', class 1"):
        fx.score(table, target="label", probs=["a", "b", "c"])


def test_accumulator_probs_range_checked():
    acc = fx.Accumulator("multiclass", inputs="probs")
    with pytest.raises(
        fx.InputValueError, match=r"`input` must hold probabilities .* 1.25 at row 0, class 2"
    ):
        acc.update(np.array([[0.0, 0.0, 1.25]]), np.array([2]))
    acc.update(np.array(GOOD), np.array([2, 1, 0]))  # valid probabilities still score
    assert acc.result().loss == pytest.approx(fx.log_loss([2, 1, 0], GOOD, labels=[0, 1, 2]), rel=1e-15)


def test_cli_reports_bad_probabilities_in_one_line(tmp_path, capsys):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"label": [0, 1, 2], "p": [GOOD[0], [1.0, 2.0, 3.0], GOOD[2]]}), path)
    code = main(["score", str(path), "--target", "label", "--probs", "p"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("fastxent: error: ")
    assert f"has 2.0 at row 1 of '{path}', class 1. Pass logits (`logits=`)" in err
