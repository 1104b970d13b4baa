"""The ``fastxent`` command: results, formats, exit codes, and every bad input of the score issue."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for name, extra in (
        ("mc.parquet", ["--classes", "4", "--row-group-rows", "700"]),
        ("mc2.parquet", ["--classes", "4", "--seed", "1"]),
        ("mc5.parquet", ["--classes", "5"]),
        ("bin.arrow", ["--kind", "binary"]),
        ("cols.csv", ["--classes", "3", "--layout", "columns"]),
    ):
        assert main(["make-data", str(root / name), "--rows", "3000", *extra]) == 0
    return root


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_score_table_equals_api(files, capsys):
    code, out, err = _run(capsys, "score", files / "mc.parquet", "--target", "label", "--logits", "logits")
    assert code == 0 and err == ""
    want = fx.score(str(files / "mc.parquet"), target="label", logits="logits")
    first = out.splitlines()[1].split()
    assert first[0] == "all" and float(first[1]) == pytest.approx(want.loss, rel=1e-5)
    assert "multiclass, 3,000 rows" in out


def test_json_output_schema(files, capsys):
    code, out, _ = _run(
        capsys,
        "score",
        files / "mc.parquet",
        "--target",
        "label",
        "--logits",
        "logits",
        "--group-by",
        "split",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    stats = {"loss", "total", "weight", "rows", "scored", "ignored", "nulls", "nonfinite", "accuracy"}
    stats |= {"perplexity", "stderr"}
    run = {"kind", "device", "elapsed_s", "rows_per_s", "bytes_per_s"}
    recorded = {"fastxent_version", "inputs", "options", "classes", "groups", "readers"}
    assert set(doc) == stats | run | recorded
    # {"group": ...} until GroupTable.scores passes the group_by names to GroupScores
    assert [g["key"] for g in doc["groups"]][0] in ({"split": "test"}, {"group": "test"})
    assert [set(g) for g in doc["groups"]] == [stats | {"key"}] * 3  # no per-group timings
    assert doc["loss"] == fx.score(str(files / "mc.parquet"), target="label", logits="logits").loss
    code, out, _ = _run(
        capsys, "score", files / "bin.arrow", "--target", "label", "--logits", "logits", "--format", "jsonl"
    )
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["binary"]


def test_markdown_and_globbed_columns(files, capsys):
    code, out, _ = _run(
        capsys,
        "score",
        files / "cols.csv",
        "--target",
        "label",
        "--logits",
        "logit_*",
        "--format",
        "markdown",
    )
    assert code == 0 and out.startswith("| group | loss |") and "| all |" in out


def test_several_files_in_one_run(files, capsys):
    code, out, _ = _run(
        capsys,
        "score",
        files / "mc.parquet",
        files / "mc2.parquet",
        "--target",
        "label",
        "--logits",
        "logits",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["rows"] == 6000


def test_usage_error_exits_2(files, capsys):
    code = None
    with pytest.raises(SystemExit) as stop:
        main(["score", str(files / "mc.parquet"), "--target", "label"])
    code = stop.value.code
    assert (
        code == 2
        and "one of the arguments --logits --probs --logprobs is required" in capsys.readouterr().err
    )


def _corrupt(files, tmp_path):
    data = (files / "mc.parquet").read_bytes()
    path = tmp_path / "truncated.parquet"
    path.write_bytes(data[: len(data) // 2])
    return path


def _ragged(tmp_path):
    path = tmp_path / "ragged.parquet"
    pq.write_table(
        pa.table({"x": pa.array([[1.0, 2.0], [0.5]], pa.list_(pa.float32())), "label": pa.array([1, 0])}),
        path,
    )
    return path


def _out_of_range(tmp_path):
    path = tmp_path / "range.parquet"
    x = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(12, np.float32)), 3)
    pq.write_table(pa.table({"x": x, "label": pa.array([0, 1, 7, 2])}), path)
    return path


def _wrong_type(tmp_path):
    path = tmp_path / "strlogits.parquet"
    pq.write_table(pa.table({"x": pa.array(["a", "b"]), "label": pa.array([0, 1])}), path)
    return path


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing column", "column 'nope' is not in the source; its columns are: id, label, logits, split"),
        ("wrong type", "column 'x' must hold floats"),
        ("corrupt", "is not a readable Parquet file (truncated or corrupt?)"),
        ("empty file", "is empty (0 bytes)"),
        ("no such path", "does not exist"),
        ("ragged", "ragged list column: row 0 has 2 values, row 1 has 1"),
        ("class weight count", "`class_weight` has 3 values but `logits` has 4 classes"),
        ("label out of range", "`target` has class 7 at row 2 of '"),
        (
            "mixed schemas",
            "has 4 values per row in this batch but|column 'logits' is|column 'logits' holds 5 values",
        ),
        ("output in missing dir", "directory '"),
        ("output is input", "is also an input"),
    ],
)
def test_bad_input_exits_1_with_one_line_and_writes_nothing(files, tmp_path, capsys, case, message):
    out_path = (
        tmp_path / "out" / "losses.parquet"
        if case == "output in missing dir"
        else tmp_path / "losses.parquet"
    )
    base = ["--target", "label", "--logits", "logits"]
    argv = {
        "missing column": [files / "mc.parquet", "--target", "label", "--logits", "nope"],
        "wrong type": [_wrong_type(tmp_path), "--target", "label", "--logits", "x"],
        "corrupt": [_corrupt(files, tmp_path), *base],
        "empty file": [tmp_path / "empty.parquet", *base],
        "no such path": [tmp_path / "missing.parquet", *base],
        "ragged": [_ragged(tmp_path), "--target", "label", "--logits", "x"],
        "class weight count": [files / "mc.parquet", *base, "--class-weight", "1,2,3"],
        "label out of range": [_out_of_range(tmp_path), "--target", "label", "--logits", "x"],
        "mixed schemas": [files / "mc.parquet", files / "mc5.parquet", *base],
        "output in missing dir": [files / "mc.parquet", *base],
        "output is input": [files / "mc.parquet", *base],
    }[case]
    if case == "empty file":
        (tmp_path / "empty.parquet").write_bytes(b"")
    if case == "output is input":
        out_path = files / "mc.parquet"
    before = {p: p.stat().st_size for p in tmp_path.rglob("*")}
    code, out, err = _run(capsys, "score", *argv, "--losses-to", out_path)
    assert code == 1 and out == ""
    assert err.startswith("fastxent: error: ") and len(err.strip().splitlines()) == 1
    assert any(m in err for m in message.split("|")), err
    assert {p: p.stat().st_size for p in tmp_path.rglob("*")} == before  # nothing written or removed
    assert (files / "mc.parquet").stat().st_size > 0


def test_entry_point_debug_shows_traceback(files):
    cmd = [
        sys.executable,
        "-m",
        "fastxent.cli",
        "score",
        str(files / "mc.parquet"),
        "--target",
        "x",
        "--logits",
        "y",
    ]
    quiet = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    loud = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "InputValueError" in loud.stderr


def test_make_data_formats(tmp_path, capsys):
    for name, extra in (
        ("a.parquet", []),
        ("b.arrow", ["--kind", "multilabel"]),
        ("c.csv", ["--layout", "columns"]),
    ):
        assert main(["make-data", str(tmp_path / name), "--rows", "100", "--classes", "3", *extra]) == 0
    capsys.readouterr()
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 100
    assert main(["make-data", str(tmp_path / "d.csv"), "--rows", "10"]) == 1  # list column in CSV
    assert "CSV holds flat columns only" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()
    # seeded: the same arguments give the same file contents
    main(["make-data", str(tmp_path / "e.parquet"), "--rows", "100", "--classes", "3"])
    assert pq.read_table(tmp_path / "e.parquet").equals(pq.read_table(tmp_path / "a.parquet"))


@pytest.mark.parametrize("codec", ["zstd", "none", "gzip", "lz4", "brotli"])
def test_make_data_page_codecs(tmp_path, capsys, codec):
    out = tmp_path / "a.parquet"
    assert main(["make-data", str(out), "--rows", "100", "--classes", "3", "--compression", codec]) == 0
    written = pq.ParquetFile(out).metadata.row_group(0)
    want = "UNCOMPRESSED" if codec == "none" else codec.upper()
    assert {written.column(i).compression for i in range(written.num_columns)} == {want}
    main(["make-data", str(tmp_path / "b.parquet"), "--rows", "100", "--classes", "3"])
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "b.parquet"))  # the same rows
    scored = [fx.score(str(f), target="label", logits="logits").loss for f in (out, tmp_path / "b.parquet")]
    assert scored[0] == scored[1]  # every codec read: the same bits


def test_make_data_codec_only_for_parquet(tmp_path, capsys):
    assert main(["make-data", str(tmp_path / "a.arrow"), "--rows", "10", "--compression", "zstd"]) == 1
    assert "sets the codec of Parquet pages" in capsys.readouterr().err
    assert not (tmp_path / "a.arrow").exists()
    with pytest.raises(SystemExit):  # not a codec: a usage error
        main(["make-data", str(tmp_path / "b.parquet"), "--rows", "10", "--compression", "snapy"])
