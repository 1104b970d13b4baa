"""``fastxent bench --quick``: finishes in seconds and writes every part of the report."""

import json

import pytest

from fastxent.bench.summary import END, START
from fastxent.bench.workloads import QUICK
from fastxent.cli import main

pytest.importorskip("matplotlib")


def test_quick_bench_writes_report_json_plots_and_the_readme_section(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\nold\n{END}\nend\n")
    out = tmp_path / "report"
    assert main(["bench", "--quick", "--out", str(out), "--readme", str(readme)]) == 0
    assert "wrote" in capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    assert doc["format"] == "fastxent-bench/1" and "AVX" in doc["machine"]["vectors"]
    measured = {(r["workload"], r["method"]) for r in doc["results"]}
    expected = {(name, m) for name, methods in QUICK.items() for m in methods}
    missing = {f"{m} is not installed" for _, m in expected - measured}
    assert measured <= expected and all(any(m in note for note in doc["notes"]) for m in missing)
    assert {("multiclass 4M × 100", "fastxent"), ("multiclass 4M × 100", "memory_read")} <= measured
    for r in doc["results"]:
        assert r["seconds"] > 0 and r["cpu_s"] >= 0 and r["peak_rss_mb"] > 0 and r["date"] == doc["date"]
    assert doc["compile"]["cold"] > doc["compile"]["cached"] > 0
    text = (out / "report.md").read_text()
    assert text.startswith("# fastxent performance report\n\nThe fastest other method's time")
    assert "| workload (in memory) | fastxent |" in text and "| file | fastxent | pyarrow decode |" in text
    assert "`group_by` (3 keys)" in text and "CPU: " in text and "fastxent bench --quick" in text
    for name in ("in_memory.png", "files.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spliced = readme.read_text()
    assert (
        "old" not in spliced and "| workload (in memory) |" in spliced and spliced.endswith(f"{END}\nend\n")
    )
