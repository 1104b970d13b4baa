"""The benchmark harness: a method timed by pytest-benchmark in a process of its own reports its
time, its first call, its CPU seconds, its peak memory and the loss; a method whose library is
missing is a note and one that fails raises; the summary puts ratios and first calls apart and
names the CPU."""

import os

import pytest

from fastxent.bench.cases import CASES, comparable
from fastxent.bench.machine import cpu
from fastxent.bench.run import run_isolated
from fastxent.bench.summary import features_table, files_table, in_memory_tables, tables
from fastxent.bench.timing import rounds_within_budget
from fastxent.bench.workloads import WORKLOADS


def test_a_method_runs_in_a_process_of_its_own(tmp_path):
    name = "multiclass 4M × 100"
    result = run_isolated(name, "fastxent", 1e-3, 2, tmp_path)
    workload = WORKLOADS[name]
    x, y = workload.arrays(1e-3)
    assert result["value"] == comparable(CASES[workload.loss]["fastxent"](x, y)())  # same data, same bits
    # pytest-benchmark's statistics of the rounds asked for (fewer when a first call that compiled
    # the kernels on a loaded machine leaves no time for them)
    assert result["rounds"] == rounds_within_budget(result["first_s"], 2)
    assert 0 < result["min_seconds"] <= result["seconds"] < result["first_s"]
    assert result["compile_s"] == result["first_s"] - result["seconds"] and result["cpu_s"] > 0
    assert result["bytes"] == x.nbytes and result["rows"] == len(x) and result["peak_rss_mb"] > 0


def test_a_missing_library_is_a_note_and_a_failing_method_raises(tmp_path, monkeypatch):
    hidden = tmp_path / "hidden" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('torch is hidden by the test')\n")
    path = [str(hidden.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))  # the child's, searched before site-packages
    name = "multiclass 4M × 100"
    note = run_isolated(name, "torch", 1e-3, 1, tmp_path)
    assert note == "torch is not installed (torch is hidden by the test) and was left out."
    with pytest.raises(RuntimeError, match="unknown method 'no-such-method'"):
        run_isolated(name, "no-such-method", 1e-3, 1, tmp_path)


def test_rounds_fit_the_budget_at_the_first_calls_time():
    assert rounds_within_budget(0.0, 7) == 7 and rounds_within_budget(1.0, 7) == 7
    assert rounds_within_budget(10.0, 7) == 3 and rounds_within_budget(11.0, 7) == 3
    assert rounds_within_budget(100.0, 7) == 1


def test_group_losses_are_recorded_as_their_count_and_mean(tmp_path):
    result = run_isolated("binary, 20M rows: group by split", "fastxent", 1e-4, 1, tmp_path)
    assert result["value"]["groups"] == 3 and result["value"]["mean"] > 0


def _result(workload, method, seconds, **extra):
    return {"workload": workload, "method": method, "seconds": seconds, "date": "2026-01-02", **extra}


DOC = {
    "machine": {"cpu": "Some CPU", "cores": 2, "vectors": "AVX2"},
    "threads": {"numba_threads": 2, "NUMBA_NUM_THREADS": "2"},
    "python": "3.11.7",
    "command": "make bench",
    "workloads": {
        "w": {"section": "in memory"},
        "f": {"section": "files"},
        "d: plain": {"section": "features", "data": "d", "feature": "plain"},
        "d: group": {"section": "features", "data": "d", "feature": "`group_by`"},
    },
    "results": [
        _result("w", "fastxent", 0.1, compile_s=1.5),
        _result("w", "torch.compile", 0.25, compile_s=12.0),
        _result("w", "memory_read", 0.05, compile_s=0.0),
        _result("f", "fastxent", 1.0, cpu_s=1.8, peak_rss_mb=400.0),
        _result("f", "pyarrow decode", 0.8, cpu_s=1.5),
        _result("f", "polars decode", 0.5),
        _result("d: plain", "fastxent", 0.2),
        _result("d: group", "fastxent", 0.3),
        _result("d: group", "polars", 0.4),
    ],
}


def test_tables_put_ratios_and_first_calls_apart():
    text = "\n".join(in_memory_tables(DOC))
    assert "| w | 0.100 s | 0.250 s (2.50×) | 0.050 s (0.50×) |" in text
    assert "| w | 1.5 s | 12.0 s |" in text  # compile times, not in the medians
    files = "\n".join(files_table(DOC))
    assert "| f | 1.000 s (1.80 CPU s) | 0.800 s (1.50 CPU s) | 0.500 s | 2.00× | 400 MB |" in files
    features = "\n".join(features_table(DOC))
    assert "| d | 0.200 s | 0.300 s (1.50×) |" in features and "polars `group_by` 0.400 s (d)" in features
    whole = tables(DOC)
    assert "w: torch.compile 2.50×" in whole and "CPU: Some CPU, 2 cores, AVX2" in whole
    assert "Measured 2026-01-02." in whole


def test_the_machine_is_named():
    found = cpu()
    assert found["cores"] >= 1 and found["cpu"] and found["vectors"]
