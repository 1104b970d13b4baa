"""Issue 19 §3: CSV values as their writers meant them.

In a float column every spelling of NaN and infinity is a value (a diverged model's NaN is scored
as NaN, as torch and the same data in Parquet give); only an empty field is null.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx

NANS = ["NaN", "nan", "-nan", "NAN", "-NaN"]
INFS = [("inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf), ("-Infinity", -math.inf)]
INFS += [("+inf", math.inf), ("Inf", math.inf)]


def test_the_reproducer_scores_nan_like_parquet(tmp_path):
    (tmp_path / "n.csv").write_text("label,logit\n1,0.5\n0,NaN\n1,-0.2\n")
    pq.write_table(pa.table({"label": [1, 0, 1], "logit": [0.5, math.nan, -0.2]}), tmp_path / "n.parquet")
    from_csv = fx.score(str(tmp_path / "n.csv"), target="label", logits="logit")
    from_parquet = fx.score(str(tmp_path / "n.parquet"), target="label", logits="logit")
    assert math.isnan(from_csv.loss) and math.isnan(from_parquet.loss)
    assert (from_csv.nulls, from_csv.nonfinite, from_csv.rows) == (0, 1, 3)
    assert (from_parquet.nulls, from_parquet.nonfinite) == (0, 1)


@pytest.mark.parametrize("text", NANS)
def test_every_nan_spelling_is_a_value(tmp_path, text):
    (tmp_path / "p.csv").write_text(f"label,logit\n1,0.5\n0,{text}\n")
    got = fx.score(
        str(tmp_path / "p.csv"), target="label", logits="logit", losses_to=str(tmp_path / "l.parquet")
    )
    assert (got.nulls, got.nonfinite) == (0, 1) and math.isnan(got.loss)
    assert np.isnan(pq.read_table(tmp_path / "l.parquet")["loss"].to_numpy()[1])


@pytest.mark.parametrize("text, value", INFS)
def test_every_infinity_spelling_is_its_value(tmp_path, text, value):
    """Scored like the same float in memory (rows of loss 0, inf or NaN), never a skipped row."""
    (tmp_path / "p.csv").write_text(f"label,logit\n1,{text}\n0,{text}\n1,0.25\n")
    got = fx.score(str(tmp_path / "p.csv"), target="label", logits="logit")
    table = pa.table({"label": [1, 0, 1], "logit": [value, value, 0.25]})
    want = fx.score(table, target="label", logits="logit")
    assert (got.nulls, got.rows, got.nonfinite) == (want.nulls, want.rows, want.nonfinite)
    assert (got.nulls, got.nonfinite) == (0, 2)
    assert got.total == want.total or math.isnan(got.total) and math.isnan(want.total)


def test_only_empty_fields_are_null(tmp_path):
    """An empty field in a float or an integer column is a null row (skipped, counted), in a
    string key column a null key; a NaN next to it is a value."""
    (tmp_path / "p.csv").write_text("label,logit,name\n1,0.5,a\n0,,b\n,0.3,c\n1,nan,\n0,-1.5,d\n")
    got = fx.score(str(tmp_path / "p.csv"), target="label", logits="logit", group_by="name")
    assert (got.rows, got.nulls, got.nonfinite, got.scored) == (5, 2, 1, 3)
    assert set(got.groups) == {"a", "b", "c", "d", None}  # the empty name is a null key
    assert (got.groups["b"].nulls, got.groups["c"].nulls, got.groups["b"].scored) == (1, 1, 0)
    want = fx.binary_cross_entropy_with_logits(np.array([0.5, -1.5]), np.array([1.0, 0.0]), reduction="none")
    assert got.groups["a"].loss == pytest.approx(want[0]) and got.groups["d"].loss == pytest.approx(want[1])
    assert math.isnan(got.groups[None].loss)


def test_multiclass_columns_and_tab_separated_files(tmp_path):
    rows = "label\tp0\tp1\tp2\n0\t0.7\t0.2\t0.1\n2\tnan\t0.5\t0.5\n1\t\t0.5\t0.5\n1\t0.1\tinf\t0\n"
    (tmp_path / "p.tsv").write_text(rows)
    got = fx.score(str(tmp_path / "p.tsv"), target="label", logits=["p0", "p1", "p2"])
    assert (got.rows, got.nulls, got.nonfinite) == (4, 1, 2)
    x = np.array([[0.7, 0.2, 0.1], [math.nan, 0.5, 0.5], [0.1, math.inf, 0.0]])
    want = fx.cross_entropy(x, np.array([0, 2, 1]), reduction="none")
    assert np.isnan(want[1:]).all() and math.isnan(got.loss)


def test_markers_other_than_empty_are_text(tmp_path):
    """NA, NULL and N/A are not nulls: a float column holding one is read as text (write empty
    fields for missing values), and asked for as predictions it says so."""
    (tmp_path / "p.csv").write_text("label,logit\n1,0.5\n0,NA\n")
    with pytest.raises(TypeError, match="'logit' must hold floats .* got string"):
        fx.score(str(tmp_path / "p.csv"), target="label", logits="logit")
