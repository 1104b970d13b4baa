"""Issue 19 §6: outputs named by what they hold.

Every suffix writes its format (read back here by pyarrow, equal to ``reduction="none"``), an
unknown one is a usage error before any input is read, ``-`` streams CSV to stdout with the
summary on stderr, and ``make-data`` writes what its name says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.io.formats import OutputNameError, output_format
from fastxent.synthetic import make_table

COLUMNS = ["--target", "label", "--logits", "logits"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``f.parquet`` (3,000 rows, 4 classes, float32 logits) and each row's loss as
    ``reduction="none"`` gives it."""
    root = tmp_path_factory.mktemp("outputs")
    table = make_table(3000, 4, seed=5)
    pq.write_table(table, root / "f.parquet", row_group_size=1000)
    logits = table["logits"].combine_chunks().flatten().to_numpy().reshape(-1, 4)
    losses = fx.cross_entropy(logits, table["label"].to_numpy(), reduction="none")
    return root, table, losses


def _read_back(path: str) -> pa.Table:
    """The table at ``path``, read by pyarrow as its suffix says."""
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return pq.read_table(path)
    if lower.endswith(".arrows"):
        return ipc.open_stream(pa.memory_map(path)).read_all()
    if lower.endswith((".arrow", ".feather", ".ipc")):
        return ipc.open_file(pa.memory_map(path)).read_all()
    tab = ".tsv" in lower or ".tab" in lower
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter="\t" if tab else ","))


SUFFIXES = [".parquet", ".pq", ".arrow", ".feather", ".ipc", ".arrows", ".csv", ".tsv", ".tab"]
SUFFIXES += [".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4", ".tsv.gz"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_each_suffix_writes_its_format(data, tmp_path, suffix):
    root, table, losses = data
    out = str(tmp_path / f"losses{suffix}")
    fx.score(str(root / "f.parquet"), target="label", logits="logits", losses_to=out, keep=["id", "split"])
    written = _read_back(out)
    assert written.column_names == ["row", "id", "split", "loss", "predicted"]
    assert written["row"].to_pylist() == list(range(3000)) == written["id"].to_pylist()
    assert written["split"].to_pylist() == table["split"].to_pylist()
    loss = written["loss"].to_numpy()
    # float32 as reduction="none" gives it; CSV holds its shortest decimal form, read as float64
    assert loss.dtype == (np.float64 if ".csv" in suffix or ".t" in suffix else np.float32)
    assert np.array_equal(loss.astype(np.float32), losses)
    with open(out, "rb") as f:  # the bytes are the format's, not Parquet under another name
        head = f.read(4)
    magic = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".zst": b"\x28\xb5\x2f\xfd", ".lz4": b"\x04\x22\x4d\x18"}
    expected = magic.get(os.path.splitext(suffix)[1])
    if suffix in (".parquet", ".pq"):
        expected = b"PAR1"
    elif suffix in (".arrow", ".feather", ".ipc"):
        expected = b"ARRO"
    elif suffix == ".arrows":
        expected = b"\xff\xff\xff\xff"
    elif expected is None:
        expected = b'"row'
    assert head.startswith(expected)
    assert sorted(os.listdir(tmp_path)) == [f"losses{suffix}"]  # no temporary left


@pytest.mark.parametrize("name", ["l.txt", "l.json", "l.parquet.gz", "l.csv.br", "l.xlsx"])
def test_an_unknown_suffix_is_a_usage_error_before_reading(tmp_path, capsys, name):
    corrupt = tmp_path / "corrupt.parquet"  # read, it would fail with a data error
    corrupt.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(OutputNameError, match="names no format fastxent writes"):
        fx.score(str(corrupt), target="label", logits="logits", losses_to=str(tmp_path / name))
    code = main(["score", str(corrupt), *COLUMNS, "--losses-to", str(tmp_path / name)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert err.startswith(f"fastxent: error: --losses-to '{tmp_path / name}' has the suffix ")
    assert os.listdir(tmp_path) == ["corrupt.parquet"]


def test_names_without_a_format_suffix():
    assert output_format("losses").kind == "parquet"  # no suffix: the default format
    assert output_format("/dev/null").kind == "parquet"  # a device says nothing of its contents
    assert output_format("x.bin", "ipc").kind == "ipc"  # make-data --format decides
    assert output_format("-").kind == "csv"
    assert output_format("x.TSV.GZ") == output_format("x.tsv.gz")
    assert (output_format("x.tsv.gz").delimiter, output_format("x.tsv.gz").compression) == ("\t", "gzip")
    with pytest.raises(OutputNameError, match="named as csv but the format asked for is parquet"):
        output_format("x.csv.gz", "parquet")


def test_a_nested_column_in_csv_is_refused_and_nothing_is_left(data, tmp_path):
    root, _, _ = data
    out = tmp_path / "l.csv"
    with pytest.raises(ValueError, match="CSV holds flat columns only, and column 'logits' is fixed"):
        fx.score(str(root / "f.parquet"), target="label", logits="logits", losses_to=str(out), keep="logits")
    assert os.listdir(tmp_path) == []


def test_dash_streams_csv_to_stdout_and_the_summary_to_stderr(data):
    root, _, losses = data
    command = [sys.executable, "-m", "fastxent.cli", "score", str(root / "f.parquet"), *COLUMNS]
    done = subprocess.run([*command, "--losses-to", "-", "--format", "json"], capture_output=True, cwd=root)
    assert done.returncode == 0 and json.loads(done.stderr)["rows"] > 0  # the summary, on stderr
    written = pacsv.read_csv(pa.BufferReader(done.stdout))
    assert np.array_equal(written["loss"].to_numpy().astype(np.float32), losses)
    assert not os.path.exists(root / "-")


@pytest.mark.parametrize("command", ["score", "make-data"])
def test_a_reader_leaving_the_stream_ends_the_command_quietly(tmp_path, command):
    """``... --losses-to - | head -1``: the command stops as a shell's own tools do when their
    reader leaves (status 141, SIGPIPE's), with nothing on stderr and no file named '-'."""
    source = tmp_path / "big.parquet"
    pq.write_table(make_table(200_000, 4, seed=6), source)
    argv = ["score", str(source), *COLUMNS, "--losses-to", "-"]
    if command == "make-data":
        argv = ["make-data", "-", "--rows", "200000", "--classes", "4", "--layout", "columns"]
    child = subprocess.Popen(
        [sys.executable, "-m", "fastxent.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert child.stdout.readline()  # the header line: the stream had started
    child.stdout.close()  # the reader leaves
    err = child.stderr.read()
    assert child.wait(timeout=120) == 141 and err == b""
    assert not os.path.exists(tmp_path / "-")


def test_dash_needs_a_real_standard_output(data, capsys):
    root, _, _ = data
    with pytest.raises(ValueError, match="'-' is standard output, which here is not a file"):
        fx.score(str(root / "f.parquet"), target="label", logits="logits", losses_to="-")


@pytest.mark.parametrize("name", ["gen.csv.gz", "gen.tsv.zst", "gen.arrows", "gen.feather"])
def test_make_data_writes_what_its_name_says_and_score_reads_it(tmp_path, capsys, name):
    argv = ["--rows", "2000", "--classes", "3", "--layout", "columns", "--seed", "4"]
    assert main(["make-data", str(tmp_path / "gen.parquet"), *argv]) == 0
    assert main(["make-data", str(tmp_path / name), *argv]) == 0
    assert "wrote" in capsys.readouterr().err
    assert output_format(name).kind != "parquet" and not (tmp_path / name).read_bytes().startswith(b"PAR1")
    options = dict(target="label", logits=["logit_0", "logit_1", "logit_2"])
    want = fx.score(str(tmp_path / "gen.parquet"), **options)
    got = fx.score(str(tmp_path / name), **options)
    assert got.rows == 2000 and got.loss == pytest.approx(want.loss, rel=1e-7)


def test_make_data_suffix_and_format_must_agree(tmp_path, capsys):
    assert main(["make-data", str(tmp_path / "x.csv.gz"), "--rows", "10", "--format", "parquet"]) == 2
    assert "is named as csv but the format asked for is parquet" in capsys.readouterr().err
    assert main(["make-data", str(tmp_path / "x.bin"), "--rows", "10", "--format", "ipc"]) == 0
    assert ipc.open_file(str(tmp_path / "x.bin")).read_all().num_rows == 10
    assert sorted(os.listdir(tmp_path)) == ["x.bin"]
