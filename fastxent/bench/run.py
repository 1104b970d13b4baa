"""The one benchmark harness: every (workload, method) timed in a fresh process, one JSON document.

A fresh interpreter per method keeps one library's thread pool or allocator from slowing the
next, makes its peak memory its own, and lets a compiler's first call be reported apart from the
steady state. A method's rounds run back to back: taken in turn with other methods' processes
(tried 2026-12-07, so that a slow spell of the shared host would fall on all alike), each round
came after seconds idle, in which allocators hand their pages back: Polars' decode of the
100M-row binary file took 0.40 s a round after 5 s idle against 0.13 s back to back (0.80 CPU s
against 0.26), and a whole run in turn had it at 0.35 s. The timer in that process is
pytest-benchmark: :func:`run_isolated` starts a pytest session of :mod:`.timing` (one test, the
first call apart, then ``benchmark.pedantic`` rounds) and reads back its JSON. :func:`benchmark`
does that for every pair and adds the compile times and where it ran (:mod:`.machine`);
``fastxent bench`` and ``make bench`` both call it.
``python -m fastxent.bench.run WORKLOAD METHOD [--scale S] [--rounds R] [--data DIR]`` runs one
pair's process and prints its result as JSON (exit 3: the method's library is not installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from fastxent.errors import FastxentError

from .cases import CASES
from .machine import environment
from .workloads import QUICK, QUICK_SCALE, WORKLOADS

FORMAT = "fastxent-bench/1"
#: Timed rounds are as many as fit this budget at the first call's time (at least one): scikit-learn
#: and NumPy take seconds a call on the full workloads, and more rounds would not change the picture.
ROUND_BUDGET_S = 30.0
MISSING = 3  # the exit status of ``python -m fastxent.bench.run`` when the method is not installed
#: The environment variables that tell the child (:mod:`.timing`) what to time; the data directory
#: is the one ``fastxent bench`` itself reads.
CHILD_VARIABLES = {
    "workload": "FASTXENT_BENCH_WORKLOAD",
    "method": "FASTXENT_BENCH_METHOD",
    "scale": "FASTXENT_BENCH_SCALE",
    "rounds": "FASTXENT_BENCH_ROUNDS",
    "data": "FASTXENT_BENCH_DATA",
}


def child(
    name: str, method: str, scale: float, rounds: int, data: Path | None, out: Path
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of the process that times ``method`` on workload ``name``: a
    pytest session of the one test in :mod:`.timing`, which is also the session's plugin, writing
    pytest-benchmark's JSON and a JUnit XML file (it says why the test was skipped) into ``out``.

    Nothing but this command line configures that session, wherever it is started (a source
    checkout, an installed package): no ini file (``-c`` the null device), no ``conftest.py``, no
    ``PYTEST_*`` variable, no plugin but pytest-benchmark's and :mod:`.timing` (autoload off).
    pytest's capture of warnings is off too, so a method warns as in a plain process (once, not
    every round).
    """
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise FastxentError("the benchmarks are timed by pytest-benchmark: pip install 'fastxent[bench]'")
    session = ["-q", "--tb=short", "-rfEs", "-c", os.devnull, "--rootdir", str(out), "--noconftest"]
    plugins = ["-p", "no:cacheprovider", "-p", "no:warnings", "-p", "pytest_benchmark.plugin"]
    plugins += ["-p", "fastxent.bench.timing"]
    outputs = ["--benchmark-json", str(out / "benchmark.json"), "--junitxml", str(out / "junit.xml")]
    target = ["--pyargs", "fastxent.bench.timing"]
    command = [sys.executable, "-m", "pytest", *session, *plugins, *outputs, *target]
    # what to time is this call's alone (no inherited FASTXENT_BENCH_DATA when ``data`` is None)
    inherited = {k: v for k, v in os.environ.items() if k not in CHILD_VARIABLES.values()}
    env = {key: value for key, value in inherited.items() if not key.startswith("PYTEST_")}
    given = {"workload": name, "method": method, "scale": scale, "rounds": rounds, "data": data}
    env.update({CHILD_VARIABLES[key]: str(value) for key, value in given.items() if value is not None})
    return command, {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _skipped(junit: Path) -> str | None:
    """Why the child's test was skipped (the method's note), or ``None``."""
    if not junit.exists():
        return None
    found = ET.parse(junit).find(".//skipped")
    return None if found is None else found.get("message")


def run_isolated(name: str, method: str, scale: float, rounds: int, data: Path | None = None) -> dict | str:
    """Time ``method`` on workload ``name`` in a fresh interpreter (:func:`child`): its result, or
    why it was left out (the library is not installed). A method that fails raises
    ``RuntimeError`` with the end of the child's output.

    The result's ``seconds``, ``min_seconds`` and ``rounds`` are pytest-benchmark's statistics of
    the timed rounds; ``compile_s`` is the first call less their median."""
    with tempfile.TemporaryDirectory(prefix="fastxent-bench-") as out:
        command, env = child(name, method, scale, rounds, data, Path(out))
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        skipped = _skipped(Path(out) / "junit.xml")
        report = Path(out) / "benchmark.json"
        if done.returncode == 0 and skipped is not None:
            return skipped
        if done.returncode != 0 or not report.exists():
            tail = (done.stdout + done.stderr)[-3000:]
            raise RuntimeError(f"{method} on {name!r} failed (pytest exit status {done.returncode}):\n{tail}")
        (timed,) = json.loads(report.read_text())["benchmarks"]
    stats, extra = timed["stats"], timed["extra_info"]
    workload = WORKLOADS[name]
    return {
        "workload": name,
        "method": method,
        "seconds": stats["median"],
        "min_seconds": stats["min"],
        "cpu_s": extra["cpu_s"],
        "first_s": extra["first_s"],
        "compile_s": max(0.0, extra["first_s"] - stats["median"]),
        "rounds": stats["rounds"],
        "rows": workload.scaled_rows(scale),
        "bytes": workload.scaled_rows(scale) * workload.bytes_per_row,
        "value": extra["value"],
        "peak_rss_mb": extra["peak_rss_mb"],
    }


#: What the quick run compiles: one loss, serial, float32 (the full run compiles every kernel).
QUICK_COMPILE = (
    "import numpy as np, fastxent as fx; "
    "fx.binary_cross_entropy_with_logits(np.zeros(8, np.float32), np.zeros(8, np.float32))"
)


def compile_times(quick: bool) -> dict:
    """Seconds to start a fresh process and compile, cold (an empty cache) and then from the
    cache: every kernel (``fastxent warmup``), or one loss when ``quick``."""
    command = (
        [sys.executable, "-c", QUICK_COMPILE] if quick else [sys.executable, "-m", "fastxent.cli", "warmup"]
    )
    out = {"what": "one loss (binary, float32, serial)" if quick else "every kernel (fastxent warmup)"}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "cached"):
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            out[label] = time.perf_counter() - started
    return out


def plan(quick: bool) -> dict[str, tuple[str, ...]]:
    """The methods to time on each workload, in table order."""
    return dict(QUICK) if quick else {name: w.methods for name, w in WORKLOADS.items()}


def benchmark(quick: bool, command: str) -> dict:
    """Every (workload, method) of the plan in a process of its own (a full run first compiles
    every kernel, ``fastxent warmup``), the compile times and the environment, as one document.
    Files are written to ``$FASTXENT_BENCH_DATA`` (kept, so a later run reuses them; ``make
    bench`` uses ``bench/.data``) or to a temporary directory."""
    scale = QUICK_SCALE if quick else 1.0
    rounds = 3 if quick else 7
    results, notes = [], {}
    if not quick:
        # every kernel into the cache the children load, so that no timed child compiles: its
        # peak memory is then the scoring's own (a child that compiled the file kernels peaked
        # at 908 MB on the 100-column file, 522-554 MB loading them from the cache)
        subprocess.run([sys.executable, "-m", "fastxent.cli", "warmup"], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="fastxent-bench-") as scratch:
        directory = Path(os.environ.get("FASTXENT_BENCH_DATA") or scratch)
        for name, methods in plan(quick).items():
            workload = WORKLOADS[name]
            if workload.file is not None:  # written here once, not timed by the first child
                workload.write_file(scale, directory)
            for method in methods:
                print(f"fastxent bench: {name}: {method}", file=sys.stderr, flush=True)
                result = run_isolated(name, method, scale, rounds, directory)
                if isinstance(result, str):
                    notes.setdefault(method, result)
                else:
                    results.append({**result, "date": time.strftime("%Y-%m-%d")})
    return {
        "format": FORMAT,
        **environment(command),
        "scale": scale,
        "rounds": rounds,
        "workloads": {name: _described(name) for name in plan(quick)},
        "results": results,
        "compile": {**compile_times(quick), "date": time.strftime("%Y-%m-%d")},
        "notes": list(notes.values()),
    }


def _described(name: str) -> dict:
    w = WORKLOADS[name]
    keys = (
        "section",
        "loss",
        "kind",
        "rows",
        "classes",
        "dtype",
        "file",
        "layout",
        "compression",
        "data",
        "feature",
    )
    return {k: getattr(w, k) for k in keys}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Time one method on one workload in a process of its own, as fastxent bench does "
        "(prints the result as JSON)."
    )
    parser.add_argument("workload", choices=list(WORKLOADS))
    parser.add_argument("method")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args(argv)
    methods = CASES[WORKLOADS[args.workload].loss]
    if args.method not in methods:
        parser.error(f"unknown method {args.method!r}; expected one of {', '.join(methods)}")
    result = run_isolated(args.workload, args.method, args.scale, args.rounds, args.data)
    if isinstance(result, str):
        print(result, file=sys.stderr)
        return MISSING
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
