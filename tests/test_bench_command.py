"""``fastxent bench --quick``: finishes in seconds and writes every part of the report."""

import json

import pytest

from fastxent.benchmark import CLASS_COUNTS
from fastxent.cli import main

pytest.importorskip("matplotlib")


def test_quick_bench_writes_report_json_and_plots(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- fastxent-bench:start -->\nold\n<!-- fastxent-bench:end -->\nend\n")
    out = tmp_path / "report"
    assert main(["bench", "--quick", "--out", str(out), "--readme", str(readme)]) == 0
    assert "wrote" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    measured = {(r["classes"], r["method"]) for r in results["in_memory"]}
    for classes in CLASS_COUNTS:
        assert {(classes, "fastxent"), (classes, "memory_read"), (classes, "numpy")} <= measured
    assert all(r["seconds"] > 0 for r in results["in_memory"] + results["files"] + results["peers"])
    assert {r["method"] for r in results["peers"]} == {"fastxent", "memory_read"}  # own processes
    assert results["compile_s"]["cold"] > results["compile_s"]["cached"] > 0
    text = (out / "report.md").read_text()
    assert text.startswith("# fastxent performance report\n\nfastxent against its peers")
    assert "× numpy (float32)" in text and "Machine:" in text and "fastxent bench --quick" in text
    assert "## Compiling peers, each in its own process" in text and "AVX" in text
    for name in ("throughput_vs_classes.png", "speedup.png", "memory_read_fraction.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spliced = readme.read_text()
    assert "old" not in spliced and "× numpy (float32)" in spliced and spliced.endswith("end\n")
