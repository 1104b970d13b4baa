"""The features users run daily, against plain scoring of the same file (``make bench``; not CI).

Files as ``fastxent make-data`` writes them (seed 0): binary 20,000,000 rows and multiclass
1,000,000 x 100 (one list column), with a ``user`` column of 100,000 distinct keys added. Each
feature is timed in this process after a warm-up run, beside plain ``fx.score`` of the same file:
``group_by="split"`` (3 keys), ``group_by="user"`` (100,000 keys), ``losses_to`` with
``keep="id"``, and ``fx.report(by="split")`` (plots included). Polars and DuckDB group-bys of the
binary loss are the peers users compare with first. ``FASTXENT_BENCH_SCALE=0.01`` for a quick run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from harness import timed

import fastxent as fx
from fastxent.synthetic import make_table, write_table

SCALE = float(os.environ.get("FASTXENT_BENCH_SCALE", "1"))
DATA = Path(__file__).parent / ".data"
FILES = {
    "binary_20M": dict(rows=int(2e7 * SCALE), classes=1, kind="binary"),
    "mc_1Mx100": dict(rows=int(1e6 * SCALE), classes=100, kind="multiclass"),
}
USERS = 100_000


def _file(name: str) -> Path:
    spec = FILES[name]
    path = DATA / f"features_{name}_{spec['rows']}.parquet"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        table = make_table(spec["rows"], spec["classes"], kind=spec["kind"], seed=0)
        users = np.random.default_rng(0).integers(0, USERS, spec["rows"])
        write_table(table.append_column("user", pa.array(users)), str(path), "parquet")
    return path


FEATURES = {
    "plain": {},
    "group_by_split": {"group_by": "split"},
    "group_by_100k_keys": {"group_by": "user"},
    "losses_to": {"losses_to": "LOSSES", "keep": "id"},
}


@pytest.mark.parametrize("feature", list(FEATURES))
@pytest.mark.parametrize("name", list(FILES))
def test_feature_fastxent(benchmark, tmp_path, name, feature):
    path = str(_file(name))
    options = {
        k: str(tmp_path / "losses.parquet") if v == "LOSSES" else v for k, v in FEATURES[feature].items()
    }
    fx.score(path, target="label", logits="logits", **options)
    timed(benchmark, lambda: fx.score(path, target="label", logits="logits", **options))


@pytest.mark.parametrize("name", list(FILES))
def test_feature_fastxent_report(benchmark, tmp_path, name):
    path = str(_file(name))
    options = dict(out=tmp_path / "report", by="split", target="label", logits="logits")
    fx.report(path, **options)
    timed(benchmark, lambda: fx.report(path, **options))


def _polars_binary_loss():
    pl = pytest.importorskip("polars")
    x, y = pl.col("logits").cast(pl.Float64), pl.col("label").cast(pl.Float64)
    return pl, ((1 - y) * x + (-x).clip(lower_bound=0) + (-x.abs()).exp().log1p()).mean()


@pytest.mark.parametrize("key", ["split", "user"])
def test_feature_polars_group_by(benchmark, key):
    pl, loss = _polars_binary_loss()
    path = _file("binary_20M")
    got = timed(benchmark, lambda: pl.scan_parquet(path).group_by(key).agg(loss).collect())
    assert got.height == len(pl.scan_parquet(path).select(pl.col(key).unique()).collect())


@pytest.mark.parametrize("key", ["split", "user"])
def test_feature_duckdb_group_by(benchmark, key):
    duckdb = pytest.importorskip("duckdb")
    path = _file("binary_20M")
    sql = (
        f"select {key}, avg((1 - label) * logits + greatest(-logits, 0) + ln(1 + exp(-abs(logits)))) "
        f"from read_parquet('{path}') group by {key}"
    )
    timed(benchmark, lambda: duckdb.sql(sql).fetchall())
