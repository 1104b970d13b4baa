"""The one benchmark harness: every (workload, method) timed in a fresh process, one JSON document.

A fresh interpreter per method keeps one library's thread pool or allocator from slowing the
next, makes its peak memory its own, and lets a compiler's first call be reported apart from the
steady state. ``python -m fastxent.bench.run WORKLOAD METHOD [--scale S] [--rounds R] [--data DIR]``
times one pair in this process and prints its result as JSON (exit 3: the method's library is
not installed); :func:`benchmark` runs that for every pair and adds the compile times and where
it ran (:mod:`.machine`). ``fastxent bench`` and ``make bench`` both call :func:`benchmark`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .cases import CASES, comparable
from .machine import environment
from .workloads import QUICK, QUICK_SCALE, WORKLOADS

FORMAT = "fastxent-bench/1"
#: Timed rounds stop early once they have taken this long (at least one round): scikit-learn and
#: NumPy take seconds a call on the full workloads, and more rounds would not change the picture.
ROUND_BUDGET_S = 30.0
MISSING = 3  # the exit status of a child whose method's library is not installed


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory (``VmHWM``: its own, not a parent's copied at fork)."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return None


def _recorded(value) -> float | dict:
    """A loss as the JSON keeps it; group losses as their count and mean (100,000 keys are many)."""
    if isinstance(value, dict):
        losses = list(value.values())
        return {"groups": len(losses), "mean": float(np.mean(losses)) if losses else None}
    return value


def measure(name: str, method: str, scale: float = 1.0, rounds: int = 5, data: Path | None = None) -> dict:
    """Time ``method`` on workload ``name`` in this process: the first call (compilation, page
    faults, caches) apart, then the median wall and CPU seconds (all threads) of ``rounds`` calls."""
    workload = WORKLOADS[name]
    with tempfile.TemporaryDirectory(prefix="fastxent-bench-") as scratch:
        fn = CASES[workload.loss][method](*workload.inputs(scale, Path(data or scratch)))
        started = time.perf_counter()
        value = fn()
        first = time.perf_counter() - started
        wall, cpu = [], []
        while len(wall) < rounds and (not wall or sum(wall) < ROUND_BUDGET_S):
            started, started_cpu = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    median = float(np.median(wall))
    return {
        "workload": name,
        "method": method,
        "seconds": median,
        "min_seconds": float(min(wall)),
        "cpu_s": float(np.median(cpu)),
        "first_s": first,
        "compile_s": max(0.0, first - median),
        "rounds": len(wall),
        "rows": workload.scaled_rows(scale),
        "bytes": workload.scaled_rows(scale) * workload.bytes_per_row,
        "value": _recorded(comparable(value)),
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_isolated(name: str, method: str, scale: float, rounds: int, data: Path) -> dict | str:
    """:func:`measure` in a fresh interpreter: its result, or why it was left out (the library
    is not installed). A method that fails raises ``RuntimeError`` with the child's stderr."""
    command = [sys.executable, "-m", "fastxent.bench.run", name, method, "--scale", str(scale)]
    command += ["--rounds", str(rounds), "--data", str(data)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == MISSING:
        return done.stderr.strip().splitlines()[-1]
    if done.returncode != 0:
        raise RuntimeError(f"{method} on {name!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    """Every (workload, method) of the plan in a process of its own, the compile times and the
    environment, as one document. Files are written to ``$FASTXENT_BENCH_DATA`` (kept, so a later
    run reuses them; ``make bench`` uses ``bench/.data``) or to a temporary directory."""
    scale = QUICK_SCALE if quick else 1.0
    rounds = 3 if quick else 7
    results, notes = [], {}
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
    keys = ("section", "loss", "kind", "rows", "classes", "dtype", "file", "layout", "data", "feature")
    return {k: getattr(w, k) for k in keys}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Time one method on one workload (prints JSON).")
    parser.add_argument("workload", choices=list(WORKLOADS))
    parser.add_argument("method")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args(argv)
    methods = CASES[WORKLOADS[args.workload].loss]
    if args.method not in methods:
        parser.error(f"unknown method {args.method!r}; expected one of {', '.join(methods)}")
    try:
        result = measure(args.workload, args.method, args.scale, args.rounds, args.data)
    except ImportError as missing:
        print(f"{args.method} is not installed ({missing}) and was left out.", file=sys.stderr)
        return MISSING
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
