"""Sources read as one piece (CSV and TSV files, Arrow IPC stream-format files, pandas and
Polars frames) are cut into units of ``UNIT_ROWS`` rows however they come batched: their totals
and groups are the bits of a Parquet file of ``UNIT_ROWS``-row row groups, for any
``batch_rows``. (In-memory Arrow objects: ``test_sources_in_memory``; a Delta table is read as
its live Parquet files, their row groups the units.)"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.io import part

ROWS, UNIT = 5000, 1000


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """Binary float64 logits (float32 losses sum exactly, and blocks would not show), string
    labels, and a string key of three values and a null."""
    rng = np.random.default_rng(5)
    split = np.array(["train", "valid", "test"], dtype=object)[rng.integers(0, 3, ROWS)]
    split[rng.random(ROWS) < 0.03] = None
    return pa.table(
        {
            "logits": pa.array(rng.normal(0.0, 3.0, ROWS)),
            "label": pa.array(np.array(["neg", "pos"])[rng.integers(0, 2, ROWS)]),
            "split": pa.array(split, type=pa.string()),
        }
    )


def _csv(table, tmp_path, suffix=".csv"):
    path = tmp_path / f"rows{suffix}"
    options = pacsv.WriteOptions(delimiter="\t" if suffix == ".tsv" else ",")
    pacsv.write_csv(table, path, write_options=options)
    return str(path)


def _ipc_stream(table, tmp_path):
    path = tmp_path / "rows.arrows"
    with ipc.new_stream(str(path), table.schema) as writer:
        writer.write_table(table, max_chunksize=700)
    return str(path)


def _pandas(table, tmp_path):
    pytest.importorskip("pandas")
    return table.to_pandas()


def _polars(table, tmp_path):
    pl = pytest.importorskip("polars")
    return pl.from_arrow(table)  # strings as string_view


SOURCES = {
    "csv": _csv,
    "tsv": lambda t, p: _csv(t, p, ".tsv"),
    "ipc stream": _ipc_stream,
    "pandas": _pandas,
    "polars": _polars,
}


@pytest.mark.parametrize("shape", list(SOURCES))
def test_a_source_read_as_one_piece_scores_as_parquet_of_unit_row_groups(tmp_path, monkeypatch, table, shape):
    reference, whole_file = str(tmp_path / "reference.parquet"), str(tmp_path / "whole.parquet")
    pq.write_table(table, reference, row_group_size=UNIT)
    pq.write_table(table, whole_file)  # one row group
    source = SOURCES[shape](table, tmp_path)
    options = dict(target="label", logits="logits", group_by="split")
    whole = fx.score(whole_file, **options)
    monkeypatch.setattr(part, "UNIT_ROWS", UNIT)
    expected = fx.score(reference, **options)
    assert whole.total != expected.total  # units matter to the bits: the test can tell them apart
    expected_groups = {k: (g.total, g.rows) for k, g in expected.groups.items()}
    assert set(expected_groups) == {"train", "valid", "test", None}
    for batch_rows in (333, UNIT, 4096):
        got = fx.score(source, **options, batch_rows=batch_rows)
        assert (got.total, got.rows) == (expected.total, expected.rows), batch_rows
        assert {k: (g.total, g.rows) for k, g in got.groups.items()} == expected_groups, batch_rows
