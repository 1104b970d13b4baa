"""CPU benchmarks against peers (``make bench``; not run in CI), each method in its own process.

Workloads (float32, in memory) are those of issue 13: multiclass 4M × 100, 40M × 10, 400k × 1000,
12.5k × 32000 and binary from logits, 100M. Methods: fastxent, torch.compile (Inductor), JAX
(``jax.jit`` of a hand-written formula, and optax), eager torch, and ``np.max`` over the same
logits (the memory-read floor). Every (workload, method) runs in a fresh interpreter
(:mod:`fastxent.bench_peers`): one library's thread pool or allocator cannot slow the next, and a
compiler's first call is recorded apart (``compile_s``). A peer that is not installed is skipped.
The results go to ``$FASTXENT_BENCH_JSON`` (default ``bench/results-cpu.json``), which
``bench/summarize.py`` turns into the README's table. ``FASTXENT_BENCH_SCALE=0.01`` for a quick run.
"""

import datetime
import json
import os
from pathlib import Path

import pytest

from fastxent.bench_peers import METHODS, WORKLOADS, machine, run_isolated

SCALE = float(os.environ.get("FASTXENT_BENCH_SCALE", "1"))
ROUNDS = int(os.environ.get("FASTXENT_BENCH_ROUNDS", "7"))
OUT = Path(os.environ.get("FASTXENT_BENCH_JSON", Path(__file__).with_name("results-cpu.json")))

RESULTS: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def written():
    """Write every result, with the machine and thread settings, once the module has run."""
    yield
    threads = {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    report = {
        "peers": RESULTS,
        "machine": machine(),
        "threads": threads,
        "scale": SCALE,
        "rounds": ROUNDS,
        "date": datetime.date.today().isoformat(),
    }
    OUT.write_text(json.dumps(report, indent=1))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_peer(workload, method):
    result = run_isolated(method, workload, SCALE, ROUNDS)
    if result is None:
        pytest.skip(f"{method} is not installed")
    assert result["seconds"] > 0
    ours = next((r for r in RESULTS if r["workload"] == workload and r["method"] == "fastxent"), None)
    if ours is not None and method != "memory_read":  # the same loss, within float32 accumulation
        assert result["value"] == pytest.approx(ours["value"], rel=1e-4)
    RESULTS.append(result)
