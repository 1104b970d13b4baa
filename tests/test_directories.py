"""Issue 19 §2: directories read as the engines that wrote them.

A corpus of directories written here by pyarrow.dataset, Polars, DuckDB, pandas, a Spark-like
layout, links and compressed CSVs, each scored and compared with ``pyarrow.dataset``'s reading of
the same directory: the same rows, the loss to 1e-12, the same partition types and group keys.
Table formats (Delta, Iceberg, Hudi) are never read as plain directories.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.errors import InputValueError
from fastxent.io.directories import hive_partitions
from fastxent.io.sources import open_parts

LOGITS = ["logit_0", "logit_1", "logit_2"]


def _table(rows: int = 240, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)) * 3
    return pa.table(
        {
            "label": rng.integers(0, 3, rows),
            **{name: x[:, c] for c, name in enumerate(LOGITS)},
            "month": pa.array([("2024_01", "2024_02", None)[i % 3] for i in range(rows)]),
            "run": rng.integers(1, 4, rows),
            "stamp": [("2024-01-01 00:00:00", "a/b c%d")[i % 2] for i in range(rows)],
        }
    )


def _loss(table: pa.Table) -> float:
    """Cross-entropy in float64 NumPy: the reference, independent of fastxent."""
    x = np.column_stack([table[name].to_numpy() for name in LOGITS])
    y = table["label"].to_numpy()
    top = x.max(axis=1)
    lse = top + np.log(np.exp(x - top[:, None]).sum(axis=1))
    return float(np.mean(lse - x[np.arange(len(y)), y]))


def _check(path, keys: list[str], dataset: pads.Dataset) -> None:
    """``fx.score(path)`` agrees with ``dataset`` (pyarrow's reading of ``path``): rows, loss,
    partition column types, and every group's key and loss."""
    table = dataset.to_table()
    got = fx.score(str(path), target="label", logits=LOGITS, group_by=keys)
    assert got.rows == table.num_rows
    assert got.loss == pytest.approx(_loss(table), rel=1e-12, abs=0)
    schema = open_parts(str(path))[0].full_schema()
    for key in keys:
        assert schema.field(key).type == dataset.schema.field(key).type, key
    rows = table.select(keys).to_pylist()
    expected = {}
    for index, row in enumerate(rows):
        expected.setdefault(row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys), []).append(index)
    assert set(got.groups) == set(expected)
    for key, indices in expected.items():
        assert got.groups[key].loss == pytest.approx(_loss(table.take(indices)), rel=1e-12, abs=0), key


def _hive(path, fmt="parquet") -> pads.Dataset:
    return pads.dataset(str(path), format=fmt, partitioning="hive")


# --- writers ----------------------------------------------------------------------------------


def test_pyarrow_dataset_hive_with_escapes_and_null_partitions(tmp_path):
    path = tmp_path / "pa"
    pads.write_dataset(
        _table(), path, format="parquet", partitioning=["month", "stamp"], partitioning_flavor="hive"
    )
    assert "stamp=a%2Fb%20c%25d" in os.listdir(path / "month=2024_01")  # escaped on disk
    assert "month=__HIVE_DEFAULT_PARTITION__" in os.listdir(path)
    _check(path, ["month", "stamp"], _hive(path))
    groups = fx.score(str(path), target="label", logits=LOGITS, group_by="stamp").groups
    assert set(groups) == {"2024-01-01 00:00:00", "a/b c%d"}  # decoded
    assert None in fx.score(str(path), target="label", logits=LOGITS, group_by="month").groups


def test_polars_partitioned_parquet(tmp_path):
    pl = pytest.importorskip("polars")
    path = tmp_path / "polars"
    pl.from_arrow(_table()).write_parquet(path, partition_by=["month", "run"])
    # Polars keeps the keys in the files too (as large_string): those columns are the ones read
    _check(path, ["month", "run"], pads.dataset(str(path), format="parquet"))


def test_duckdb_partition_by(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "duck"
    con = duckdb.connect()
    con.register("t", _table().drop_columns(["stamp"]))
    con.execute(f"COPY t TO '{path}' (FORMAT parquet, PARTITION_BY (month, run))")
    _check(path, ["month", "run"], _hive(path))


def test_pandas_partition_cols(tmp_path):
    path = tmp_path / "pandas"
    _table().to_pandas().to_parquet(path, partition_cols=["month", "run"])
    _check(path, ["month", "run"], _hive(path))


def _spark_layout(root, table: pa.Table, key: str, value: str) -> None:
    """What a Spark job leaves: part files, their hidden .crc checksums, _SUCCESS and markers."""
    directory = root / f"{key}={value}"
    directory.mkdir(parents=True)
    for index, piece in enumerate((table.slice(0, 50), table.slice(50))):
        name = f"part-{index:05d}-{uuid.uuid4()}.c000.snappy.parquet"
        pq.write_table(piece, directory / name)
        (directory / f".{name}.crc").write_bytes(b"crc\x00\x01")
    (root / "_SUCCESS").write_bytes(b"")
    (root / "_committed_1234").write_text("{}")


def test_spark_like_layout_with_every_key_type(tmp_path):
    """Hand-written hive names: an integer past 64 bits, digits with an underscore, an escaped
    timestamp, the default (null) partition, an empty value, a negative integer."""
    root = tmp_path / "spark"
    table = _table(120).drop_columns(["month", "run", "stamp"])
    values = [
        "18446744073709551616",
        "2024_01",
        "2024-01-01 00%3A00%3A00",
        "__HIVE_DEFAULT_PARTITION__",
        "",
        "-3",
    ]
    for index, value in enumerate(values):
        _spark_layout(root, table.slice(index * 20, 20), "k", value)
    _check(root, ["k"], _hive(root))
    keys = set(fx.score(str(root), target="label", logits=LOGITS, group_by="k").groups)
    assert keys == {"18446744073709551616", "2024_01", "2024-01-01 00:00:00", None, "", "-3"}


@pytest.mark.parametrize(
    "names, typ",
    [
        (["1", "2", "-3", "2147483647"], pa.int32()),
        (["1", "2147483648"], pa.string()),  # past int32: pyarrow reads it as a string
        (["01", "2024_01"], pa.string()),
        (["__HIVE_DEFAULT_PARTITION__", "7"], pa.int32()),
    ],
)
def test_partition_types_are_pyarrows(tmp_path, names, typ):
    files = []
    for index, name in enumerate(names):
        directory = tmp_path / f"k={name}"
        directory.mkdir()
        pq.write_table(pa.table({"x": [float(index)]}), directory / "f.parquet")
        files.append(str(directory / "f.parquet"))
    expected = _hive(tmp_path).to_table()
    got = hive_partitions(str(tmp_path), sorted(files))
    assert [p["k"].type for p in got] == [typ] * len(names) == [expected.schema.field("k").type] * len(names)
    by_x = dict(zip(expected["x"].to_pylist(), expected["k"].to_pylist(), strict=True))
    assert [p["k"].as_py() for p in got] == [by_x[float(names.index(n))] for n in sorted(names)]


def test_a_key_missing_from_some_paths_is_null_there(tmp_path):
    pq.write_table(pa.table({"label": [0], **{n: [0.5] for n in LOGITS}}), tmp_path / "top.parquet")
    (tmp_path / "k=5").mkdir()
    pq.write_table(pa.table({"label": [1], **{n: [0.1] for n in LOGITS}}), tmp_path / "k=5" / "f.parquet")
    _check(tmp_path, ["k"], _hive(tmp_path))


# --- links ------------------------------------------------------------------------------------


def test_a_linked_partition_directory_is_read(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    pads.write_dataset(_table(), root, format="parquet", partitioning=["run"], partitioning_flavor="hive")
    shutil.move(root / "run=2", elsewhere)
    (root / "run=2").symlink_to(elsewhere, target_is_directory=True)
    _check(root, ["run"], _hive(root))
    assert fx.score(str(root), target="label", logits=LOGITS).rows == 240


def test_a_link_loop_is_refused_in_one_line(tmp_path, capsys):
    pads.write_dataset(
        _table(), tmp_path / "d", format="parquet", partitioning=["run"], partitioning_flavor="hive"
    )
    (tmp_path / "d" / "run=1" / "again").symlink_to(tmp_path / "d", target_is_directory=True)
    with pytest.raises(InputValueError, match="links back to .* following it would never end"):
        fx.score(str(tmp_path / "d"), target="label", logits=LOGITS)
    code = main(["score", str(tmp_path / "d"), "--target", "label", "--logits", ",".join(LOGITS)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("fastxent: error: '") and len(err.splitlines()) == 1
    assert f"'{tmp_path / 'd' / 'run=1' / 'again'}' links back to '{tmp_path / 'd'}'" in err


# --- compressed CSVs --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4"])
def test_compressed_csvs_in_a_directory_are_read(tmp_path, suffix):
    """Compared with pyarrow.dataset's reading of the same files uncompressed (its CSV format
    does not detect zstd and lz4 files: pyarrow's CSV reader does, from the suffix)."""
    table = _table().drop_columns(["month", "stamp"])
    codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}[os.path.splitext(suffix)[1]]
    for name, compression in (("plain", None), ("packed", codec)):
        for run in (1, 2, 3):
            directory = tmp_path / name / f"run={run}"
            directory.mkdir(parents=True)
            piece = table.filter(pa.compute.equal(table["run"], run)).drop_columns(["run"])
            with pa.output_stream(
                directory / f"part{suffix if compression else '.csv'}", compression=compression
            ) as out:
                pacsv.write_csv(piece, out)
    _check(tmp_path / "packed", ["run"], _hive(tmp_path / "plain", "csv"))


def test_compressed_tsvs_are_tab_separated(tmp_path):
    table = _table().drop_columns(["month", "stamp", "run"])
    (tmp_path / "s=a").mkdir()
    with pa.output_stream(tmp_path / "s=a" / "f.tsv.gz", compression="gzip") as out:
        pacsv.write_csv(table, out, pacsv.WriteOptions(delimiter="\t"))
    tsv = pads.CsvFileFormat(parse_options=pacsv.ParseOptions(delimiter="\t"))
    _check(tmp_path, ["s"], pads.dataset(str(tmp_path), format=tsv, partitioning="hive"))


# --- table formats ----------------------------------------------------------------------------


def test_a_delta_table_is_read_at_its_current_version(tmp_path):
    deltalake = pytest.importorskip("deltalake")
    table = _table().drop_columns(["stamp"])
    path = tmp_path / "delta"
    deltalake.write_deltalake(path, table.slice(0, 100), partition_by=["run"])
    deltalake.write_deltalake(path, table, mode="overwrite", partition_by=["run"])  # the first files stay
    plain = fx.score(str(path / "run=1"), target="label", logits=LOGITS).rows  # files of both versions
    live = deltalake.DeltaTable(path).to_pyarrow_dataset()
    _check(path, ["month", "run"], live)
    assert plain > live.to_table().filter(pa.compute.equal(live.to_table()["run"], 1)).num_rows


def test_a_delta_table_without_deltalake_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "_delta_log").mkdir()
    pq.write_table(_table(), tmp_path / "part-0.parquet")
    monkeypatch.setitem(__import__("sys").modules, "deltalake", None)  # import fails
    code = main(["score", str(tmp_path), "--target", "label", "--logits", ",".join(LOGITS)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1
    assert f"'{tmp_path}' is a Delta Lake table (_delta_log/)" in err and "pip install deltalake" in err


@pytest.mark.parametrize(
    "marker, name",
    [
        ("metadata/v2.metadata.json", "an Apache Iceberg table (metadata/)"),
        ("metadata/version-hint.text", "an Apache Iceberg table (metadata/)"),
        (".hoodie/hoodie.properties", "an Apache Hudi table (.hoodie/)"),
    ],
)
def test_other_table_formats_are_refused_naming_the_format(tmp_path, marker, name):
    (tmp_path / "data").mkdir()
    pq.write_table(_table(), tmp_path / "data" / "f.parquet")
    (tmp_path / marker).parent.mkdir()
    (tmp_path / marker).write_text("{}")
    with pytest.raises(InputValueError, match=re.escape(f"'{tmp_path}' is {name}: ")):
        fx.score(str(tmp_path), target="label", logits=LOGITS)
    # inside a directory too; a plain directory called "metadata" is just a directory
    outer = tmp_path.parent / f"outer-{tmp_path.name}"
    outer.mkdir()
    (outer / "t").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(InputValueError, match="inside the directory .* pass the table on its own"):
        fx.score(str(outer), target="label", logits=LOGITS)
    os.unlink(tmp_path / marker)  # an empty metadata/ is a plain directory's
    if marker.startswith(".hoodie"):
        (tmp_path / ".hoodie").rmdir()
    assert fx.score(str(tmp_path), target="label", logits=LOGITS).rows == 240
