"""The benchmarks' timer: one pytest-benchmark test that times one method on one workload.

:func:`fastxent.bench.run.run_isolated` runs this module as a pytest session of its own in a fresh
interpreter (:func:`fastxent.bench.run.child`) and reads back pytest-benchmark's JSON: the timed
rounds and their statistics, and in ``extra_info`` the first call, the CPU seconds, the loss and
the peak memory. What to time comes in the environment variables of
:data:`fastxent.bench.run.CHILD_VARIABLES`. A method whose library is not installed is skipped
with the note the report prints. The module is no test of the project: it is only collected when
named (its name does not match ``test_*.py``), and it needs a workload to time.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from .cases import CASES, comparable
from .run import CHILD_VARIABLES, ROUND_BUDGET_S, TURNS_VARIABLE
from .workloads import WORKLOADS


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


def rounds_within_budget(first_s: float, rounds: int) -> int:
    """How many rounds to time: ``rounds``, or as many as fit :data:`ROUND_BUDGET_S` (at least one)
    at the first call's time. pytest-benchmark's pedantic mode takes the count up front; the first
    call includes any compilation, so a compiler's count is on the safe side."""
    if first_s * rounds <= ROUND_BUDGET_S:
        return rounds
    return max(1, math.ceil(ROUND_BUDGET_S / first_s))


def _wait_for_turn():
    """The timed rounds' setup when the harness gives turns
    (:func:`fastxent.bench.run.run_interleaved`; ``$FASTXENT_BENCH_TURNS`` names the pipe ends):
    before each round, say ready and wait for the turn. After the last round the process ends,
    which closes the pipe. ``None`` without turns."""
    value = os.environ.get(TURNS_VARIABLE)
    if not value:
        return None
    go, ready = (int(fd) for fd in value.split(","))

    def wait_for_turn():
        os.write(ready, b"r")
        if os.read(go, 1) != b"g":
            raise RuntimeError("the benchmark harness stopped giving turns")

    return wait_for_turn


# The module is also the session's plugin (``-p``), for the two hooks below.


def pytest_benchmark_generate_machine_info() -> dict:
    """Nothing: the document records the machine once (:mod:`.machine`), and pytest-benchmark's
    probe (py-cpuinfo) would cost every process a fifth of a second."""
    return {}


def pytest_benchmark_generate_commit_info() -> dict:
    """Nothing: the commit is not the package's to know (it may be installed), and pytest-benchmark's
    probe runs git in the working directory."""
    return {}


def test_method(benchmark):
    """Time ``$FASTXENT_BENCH_METHOD`` on ``$FASTXENT_BENCH_WORKLOAD``: the first call (compilation,
    page faults, caches) apart, then the rounds, each one call (after its turn, when the harness
    gives turns: :func:`_wait_for_turn`), wall seconds by pytest-benchmark and CPU seconds (all
    threads) by ``time.process_time``; each round's start time is recorded too."""
    variables = {key: os.environ.get(name) for key, name in CHILD_VARIABLES.items()}
    workload = WORKLOADS[variables["workload"]]
    method, builders = variables["method"], CASES[workload.loss]
    if method not in builders:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(builders)}")
    scale, data = float(variables["scale"]), variables["data"]  # no data: files in a scratch directory
    with tempfile.TemporaryDirectory(prefix="fastxent-bench-") as scratch:
        # a peer may import its library's parts at the first call (torch.compile's Inductor)
        try:
            fn = builders[method](*workload.inputs(scale, Path(data or scratch)))
            started = time.perf_counter()
            value = fn()
            first = time.perf_counter() - started
        except ImportError as missing:
            pytest.skip(f"{method} is not installed ({missing}) and was left out.")
        cpu, starts = [], []

        def timed():
            starts.append(time.time())
            started_cpu = time.process_time()
            fn()
            cpu.append(time.process_time() - started_cpu)

        rounds = rounds_within_budget(first, int(variables["rounds"]))
        benchmark.pedantic(timed, setup=_wait_for_turn(), rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        first_s=first,
        cpu_s=float(np.median(cpu)),
        round_starts=starts,
        value=_recorded(comparable(value)),
        peak_rss_mb=_peak_rss_mb(),
    )
