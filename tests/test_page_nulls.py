"""Validity of nullable flat columns read by pages: written only once a batch meets a null."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_page_reader import assert_same_table, read_all

import fastxent as fx


@pytest.mark.parametrize("first_null", [0, 1, 337, 998, 999, 1500, None])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_nulls_anywhere_after_pages_without_them(tmp_path, monkeypatch, first_null, version):
    """Pages of ~60 values without nulls, then (from ``first_null`` on) a null every 7 rows, in
    batches of 999 rows: each batch's nulls (none, all before, some) are pyarrow's."""
    rng = np.random.default_rng(3)
    n = 3000
    values = rng.standard_normal(n).astype(np.float32)
    mask = np.zeros(n, bool)
    if first_null is not None:
        mask[first_null::7] = True
    table = pa.table({"x": pa.array(values, mask=mask), "y": pa.array(values.astype(np.float64))})
    path = str(tmp_path / "nulls.parquet")
    pq.write_table(table, path, data_page_size=256, data_page_version=version, use_dictionary=False)
    pages, reads = read_all(path, ["x", "y"], 999, monkeypatch, "pages")
    arrow, _ = read_all(path, ["x", "y"], 999, monkeypatch, "pyarrow")
    assert reads == {"pages": 2}
    assert_same_table(pages, arrow)
    batches = pages.to_batches()
    expected = [int(mask[k : k + 999].sum()) for k in range(0, n, 999)]
    assert [b.column(0).null_count for b in batches] == expected
    assert all(b.column(1).null_count == 0 and b.column(1).buffers()[0] is None for b in batches)


def test_a_null_prediction_is_counted_or_refused_after_clean_pages(tmp_path, monkeypatch):
    """A null logit in the last page of a row group: the default (``nulls="skip"``) counts it,
    ``nulls="error"`` names its row."""
    rng = np.random.default_rng(4)
    logits = rng.standard_normal(5000).astype(np.float32)
    mask = np.zeros(5000, bool)
    mask[4321] = True
    table = pa.table({"logits": pa.array(logits, mask=mask), "label": rng.integers(0, 2, 5000)})
    path = str(tmp_path / "late_null.parquet")
    pq.write_table(table, path, data_page_size=512)
    monkeypatch.setenv("FASTXENT_PARQUET_READER", "pages")
    score = fx.score(path, target="label", logits="logits")
    assert score.nulls == 1 and score.rows == 5000 and score.scored == 4999
    with pytest.raises(fx.InputValueError, match="row 4321"):
        fx.score(path, target="label", logits="logits", nulls="error")
