"""The peers of ``make bench`` and ``fastxent bench`` compute the same loss, and a run in a process
of its own reports its time, its first call and the loss."""

import importlib.util

import numpy as np
import pytest

from fastxent.bench_peers import WORKLOADS, machine, make_data, method_function, peers_tables, run_isolated

INSTALLED = [
    m
    for m, module in (("torch", "torch"), ("jax", "jax"), ("optax", "optax"))
    if importlib.util.find_spec(module) is not None
]


@pytest.mark.parametrize("kind, classes", [("multiclass", 10), ("multiclass", 1000), ("binary", 1)])
@pytest.mark.parametrize("method", INSTALLED)
def test_every_peer_computes_fastxents_loss(method, kind, classes):
    x, y = make_data(kind, 3000, classes, seed=3)
    ours = method_function("fastxent", kind, x, y)()
    assert method_function(method, kind, x, y)() == pytest.approx(ours, rel=1e-5)
    assert method_function("memory_read", kind, x, y)() == float(np.max(x))


def test_a_method_runs_in_a_process_of_its_own():
    workload = next(iter(WORKLOADS))
    result = run_isolated("fastxent", workload, scale=1e-3, rounds=2)
    kind, rows, classes = WORKLOADS[workload]
    x, y = make_data(kind, int(rows * 1e-3), classes)
    assert result["value"] == method_function("fastxent", kind, x, y)()  # same data, same bits
    assert result["seconds"] > 0 and result["compile_s"] >= 0 and result["bytes"] == x.nbytes
    with pytest.raises(RuntimeError, match="unknown method 'no-such-method'"):
        run_isolated("no-such-method", workload, 1e-3, 1)


def test_tables_put_ratios_and_first_calls_apart():
    results = [
        {"workload": "w", "method": "fastxent", "seconds": 0.1, "compile_s": 1.5},
        {"workload": "w", "method": "torch.compile", "seconds": 0.25, "compile_s": 12.0},
        {"workload": "w", "method": "memory_read", "seconds": 0.05, "compile_s": 0.0},
    ]
    text = peers_tables(results, "float32, 2 threads")
    assert "| w | 0.100 s | 0.250 s (2.50×) | 0.050 s (0.50×) |" in text
    assert "| w | 1.5 s | 12.0 s |" in text  # compile times, not in the medians
    assert machine()["cores"] >= 1
