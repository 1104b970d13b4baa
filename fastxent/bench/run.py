"""The one benchmark harness: every (workload, method) timed in a fresh process, one JSON document.

A fresh interpreter per method keeps one library's thread pool or allocator from slowing the
next, makes its peak memory its own, and lets a compiler's first call be reported apart from the
steady state. The timer in that process is pytest-benchmark: :func:`run_isolated` starts a pytest
session of :mod:`.timing` (one test, the first call apart, then ``benchmark.pedantic`` rounds) and
reads back its JSON. :func:`run_interleaved` runs several such processes at once, their rounds
taken in turn, for the methods whose times are compared (:func:`interleaved_sets`).
:func:`benchmark` does that for every pair and adds the compile times and where it ran
(:mod:`.machine`); ``fastxent bench`` and ``make bench`` both call it.
``python -m fastxent.bench.run WORKLOAD METHOD [--scale S] [--rounds R] [--data DIR]`` runs one
pair's process and prints its result as JSON (exit 3: the method's library is not installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import select
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
#: The environment variable that gives a child its turns (:func:`run_interleaved`): the numbers
#: of the pipe ends it reads ``g`` from and writes ``r`` to.
TURNS_VARIABLE = "FASTXENT_BENCH_TURNS"


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


class _Child:
    """One (workload, method) process (:func:`child`), its output in files of its own directory.

    The child waits for its turn before each timed round (:mod:`.timing`): it writes ``r`` to one
    pipe when it is ready for a round (its first call or its last round done) and reads ``g``
    from another before the round; after its last round it finishes and exits, which
    :meth:`ready` tells."""

    def __init__(self, name: str, method: str, scale: float, rounds: int, data: Path | None):
        self.name, self.method, self.scale = name, method, scale
        self._directory = tempfile.TemporaryDirectory(prefix="fastxent-bench-")
        self.out = Path(self._directory.name)
        command, env = child(name, method, scale, rounds, data, self.out)
        go_read, self._go = os.pipe()
        self._ready, ready_write = os.pipe()
        env[TURNS_VARIABLE] = f"{go_read},{ready_write}"
        inherited = (go_read, ready_write)
        try:
            with open(self.out / "output.txt", "wb") as output:
                self.process = subprocess.Popen(
                    command, env=env, stdout=output, stderr=subprocess.STDOUT, pass_fds=inherited
                )
        except BaseException:
            os.close(self._go)
            os.close(self._ready)
            self._directory.cleanup()
            raise
        finally:
            for fd in inherited:  # the child's ends
                os.close(fd)

    def ready(self) -> bool:
        """Wait until the child asks for a round (``True``) or has exited (``False``). A process
        the child forked may hold the pipe open after it exits: the exit is watched too."""
        while True:
            readable, _, _ = select.select([self._ready], [], [], 0.5)
            if readable:
                if os.read(self._ready, 1) == b"r":
                    return True
                break  # the pipe closed: the child is exiting
            if self.process.poll() is not None:
                break
        self.process.wait()
        return False

    def go(self) -> None:
        """Let the child time its next round."""
        os.write(self._go, b"g")

    def result(self) -> dict | str:
        """The child's result (see :func:`run_isolated`), once it has exited."""
        self.process.wait()
        skipped = _skipped(self.out / "junit.xml")
        report = self.out / "benchmark.json"
        if self.process.returncode == 0 and skipped is not None:
            return skipped
        if self.process.returncode != 0 or not report.exists():
            tail = (self.out / "output.txt").read_text(errors="replace")[-3000:]
            status = self.process.returncode
            raise RuntimeError(
                f"{self.method} on {self.name!r} failed (pytest exit status {status}):\n{tail}"
            )
        (timed,) = json.loads(report.read_text())["benchmarks"]
        return _summarised(self.name, self.method, timed, self.scale)

    def close(self) -> None:
        """End the child if it still runs (a failure elsewhere) and remove its files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self._go)
        os.close(self._ready)
        self._directory.cleanup()


def _summarised(name: str, method: str, timed: dict, scale: float) -> dict:
    """A child's result from pytest-benchmark's record of its test."""
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
        "round_starts": extra["round_starts"],
        "rows": workload.scaled_rows(scale),
        "bytes": workload.scaled_rows(scale) * workload.bytes_per_row,
        "value": extra["value"],
        "peak_rss_mb": extra["peak_rss_mb"],
    }


def run_isolated(name: str, method: str, scale: float, rounds: int, data: Path | None = None) -> dict | str:
    """Time ``method`` on workload ``name`` in a fresh interpreter (:func:`child`): its result, or
    why it was left out (the library is not installed). A method that fails raises
    ``RuntimeError`` with the end of the child's output.

    The result's ``seconds``, ``min_seconds`` and ``rounds`` are pytest-benchmark's statistics of
    the timed rounds; ``compile_s`` is the first call less their median; ``round_starts`` the
    rounds' start times (seconds since the epoch)."""
    return run_interleaved([(name, method)], scale, rounds, data)[0]


def run_interleaved(
    pairs: list[tuple[str, str]], scale: float, rounds: int, data: Path | None = None
) -> list:
    """:func:`run_isolated` of each ``(workload, method)`` pair, each in a fresh process, their
    timed rounds taken in turn: every process is started and makes its first call alone, then
    each times one round while the others wait (blocked on a pipe, using no CPU), pair after
    pair, until all are done; each finishes alone after its last round. A slow spell of a shared
    host then falls on every pair's rounds alike, and the ratios between them hold: on two
    shared cores, whole runs of the features one after another saw the report at 3.71x and 4.94x
    plain scoring with no change to the code. The results, in the order of ``pairs``."""
    children: list[_Child] = []
    live: list[_Child] = []  # those with rounds to time
    try:
        for name, method in pairs:
            children.append(_Child(name, method, scale, rounds, data))
            if children[-1].ready():  # its first call, alone (a skipped or failed child exits)
                live.append(children[-1])
        while live:
            for c in list(live):
                c.go()
                if not c.ready():
                    live.remove(c)
        return [c.result() for c in children]
    finally:
        for c in children:
            c.close()


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


def interleaved_sets(planned: dict[str, tuple[str, ...]]) -> list[list[tuple[str, str]]]:
    """The ``(workload, method)`` pairs of a plan, in sets whose rounds are taken in turn
    (:func:`run_interleaved`), in table order: every method of a file workload together (fastxent
    and the decoders it is measured against), and every feature workload of one data set
    together (plain scoring and the features measured as its multiples). Each method of an
    in-memory workload is alone: each holds its own copies of 1.6 GB of logits."""
    sets: dict[str, list[tuple[str, str]]] = {}
    for name, methods in planned.items():
        workload = WORKLOADS[name]
        for method in methods:
            if workload.data:
                key = f"data: {workload.data}"
            elif workload.file is not None:
                key = f"file: {name}"
            else:
                key = f"alone: {name}: {method}"
            sets.setdefault(key, []).append((name, method))
    return list(sets.values())


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
        for pairs in interleaved_sets(plan(quick)):
            for name in dict.fromkeys(name for name, _ in pairs):
                if WORKLOADS[name].file is not None:  # written here once, not timed by the first child
                    WORKLOADS[name].write_file(scale, directory)
            names = ", ".join(f"{name}: {method}" for name, method in pairs)
            print(f"fastxent bench: {names}", file=sys.stderr, flush=True)
            for (_, method), result in zip(
                pairs, run_interleaved(pairs, scale, rounds, directory), strict=True
            ):
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
