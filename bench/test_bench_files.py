"""File scoring against decode-only reads and SQL/DataFrame peers (``make bench``; not run in CI).

Files come from ``fastxent make-data`` (cached under ``bench/.data``): multiclass 4,000,000 x 100
as one fixed-size-list column and as 100 float columns, and binary 100,000,000 rows. Set
``FASTXENT_BENCH_SCALE=0.01`` for a quick run. Polars and DuckDB are skipped when not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from harness import timed

import fastxent as fx
from fastxent.synthetic import make_table, write_table

SCALE = float(os.environ.get("FASTXENT_BENCH_SCALE", "1"))
DATA = Path(__file__).parent / ".data"
LAYOUTS = {
    "mc_list": dict(rows=int(4e6 * SCALE), classes=100, kind="multiclass", layout="list"),
    "mc_columns": dict(rows=int(4e6 * SCALE), classes=100, kind="multiclass", layout="columns"),
    "binary": dict(rows=int(1e8 * SCALE), classes=1, kind="binary", layout="list"),
}
GROUP_ROWS = {"mc_list": 1 << 17, "mc_columns": 1 << 17, "binary": 1 << 20}


def _file(name: str, fmt: str = "parquet") -> Path:
    spec = LAYOUTS[name]
    path = DATA / f"{name}_{spec['rows']}.{ {'ipc': 'arrow'}.get(fmt, fmt) }"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        rows, classes = spec["rows"], spec["classes"]
        table = make_table(rows, classes, kind=spec["kind"], layout=spec["layout"], seed=0)
        write_table(table, str(path), fmt, GROUP_ROWS[name])
    return path


def _columns(name: str) -> tuple[str, list[str]]:
    if name == "mc_columns":
        return "logit_*", ["label", *(f"logit_{c}" for c in range(100))]
    return "logits", ["label", "logits"]


@pytest.fixture(params=list(LAYOUTS))
def layout(request):
    return request.param


def test_file_fastxent(benchmark, layout):
    path, (logits, _) = _file(layout), _columns(layout)
    fx.score(str(path), target="label", logits=logits)
    timed(benchmark, lambda: fx.score(str(path), target="label", logits=logits))


def test_file_decode_pyarrow(benchmark, layout):
    path, (_, columns) = _file(layout), _columns(layout)
    timed(benchmark, lambda: pq.read_table(path, columns=columns).num_rows)


def test_file_decode_polars(benchmark, layout):
    pl = pytest.importorskip("polars")
    path, (_, columns) = _file(layout), _columns(layout)
    timed(benchmark, lambda: pl.read_parquet(path, columns=columns).height)


@pytest.mark.parametrize("flat", ["mc_columns", "binary"])
def test_file_decode_polars_row_groups(benchmark, flat):
    """Polars decoding one row group at a time, as a scorer with bounded memory would have to use
    it (a slice inside a row group decodes the group's earlier pages again)."""
    pl = pytest.importorskip("polars")
    path, (_, columns) = _file(flat), _columns(flat)
    meta = pq.ParquetFile(path).metadata
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    starts = np.cumsum([0, *groups[:-1]])
    frame = pl.scan_parquet(path, glob=False).select(columns)
    timed(
        benchmark,
        lambda: sum(frame.slice(int(s), n).collect().height for s, n in zip(starts, groups, strict=True)),
    )


def test_file_decode_duckdb(benchmark, layout):
    duckdb = pytest.importorskip("duckdb")
    path, (_, columns) = _file(layout), _columns(layout)
    select = ", ".join(f'"{c}"' for c in columns)
    timed(
        benchmark,
        lambda: duckdb.sql(f"select {select} from read_parquet('{path}')").arrow().read_all().num_rows,
    )


BINARY_LOSS_SQL = (
    "select avg((1 - label) * logits + greatest(-logits, 0) + ln(1 + exp(-abs(logits)))) "
    "from read_parquet('{path}')"
)


def test_binary_loss_duckdb_sql(benchmark):
    duckdb = pytest.importorskip("duckdb")
    path = _file("binary")
    got = benchmark(lambda: duckdb.sql(BINARY_LOSS_SQL.format(path=path)).fetchall()[0][0])
    assert got == pytest.approx(fx.score(str(path), target="label", logits="logits").loss, rel=1e-5)


def test_binary_loss_polars_expression(benchmark):
    pl = pytest.importorskip("polars")
    path = _file("binary")
    x, y = pl.col("logits").cast(pl.Float64), pl.col("label").cast(pl.Float64)
    loss = ((1 - y) * x + (-x).clip(lower_bound=0) + (-x.abs()).exp().log1p()).mean()
    got = benchmark(lambda: pl.scan_parquet(path).select(loss).collect().item())
    assert got == pytest.approx(fx.score(str(path), target="label", logits="logits").loss, rel=1e-5)


def test_ipc_fastxent(benchmark):
    path = _file("mc_list", "ipc")
    fx.score(str(path), target="label", logits="logits")
    benchmark(fx.score, str(path), target="label", logits="logits")


def test_ipc_memory_read(benchmark):
    path = _file("mc_list", "ipc")
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    values = [np.asarray(chunk.flatten()) for chunk in table["logits"].chunks]
    benchmark(lambda: max(float(v.max()) for v in values))


# VmHWM, not getrusage: ru_maxrss of a child started from this (large) process counts the
# parent's memory copied at fork.
RSS_PROBE = (
    "import sys\n"
    "from fastxent.cli import main\n"
    "main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print(int(hwm.split()[1]), file=sys.stderr)\n"
)


def test_peak_rss_of_the_command(benchmark, layout):
    """Peak RSS of ``fastxent score`` in a fresh process (``extra_info["peak_rss_mb"]``)."""
    path, (logits, _) = _file(layout), _columns(layout)
    argv = ["score", str(path), "--target", "label", "--logits", logits, "--format", "json"]

    def run():
        done = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, *argv], check=True, capture_output=True, text=True
        )
        return int(done.stderr.strip().splitlines()[-1]) / 1024

    peak = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["peak_rss_mb"] = peak
