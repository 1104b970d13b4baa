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
from .run import CHILD_VARIABLES, ROUND_BUDGET_S
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
    page faults, caches) apart, then the rounds, each one call, wall seconds by pytest-benchmark
    and CPU seconds (all threads) by ``time.process_time``."""
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
        cpu = []

        def timed():
            started_cpu = time.process_time()
            fn()
            cpu.append(time.process_time() - started_cpu)

        rounds = rounds_within_budget(first, int(variables["rounds"]))
        benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        first_s=first,
        cpu_s=float(np.median(cpu)),
        value=_recorded(comparable(value)),
        peak_rss_mb=_peak_rss_mb(),
    )
