"""Every installed peer of every benchmark case computes fastxent's loss (the registry the
benchmarks time, :mod:`fastxent.bench.cases`), on each workload's data at a tiny size."""

import numpy as np
import pytest

from fastxent.bench.cases import CASES, FLOORS, comparable
from fastxent.bench.workloads import WORKLOADS


def _tiny(workload) -> float:
    """The scale that leaves ~300,000 logits (at least 64 rows), so every peer runs in a moment."""
    return max(64, 300_000 // workload.classes) / workload.rows


def _shown(workload) -> bool:
    """In memory, one multiclass workload per dtype and the binary one (the others differ from
    them only in shape, and torch.compile takes seconds a shape); every file workload of pyarrow's
    default codec (the same decoders read the others: the page reader's corpus tests every codec)."""
    if workload.file is not None:
        return workload.compression == "snappy"
    same = [
        w for w in WORKLOADS.values() if (w.loss, w.dtype, w.file) == (workload.loss, workload.dtype, None)
    ]
    return same[0] is workload


PAIRS = [
    pytest.param(name, method, id=f"{name}-{method}")
    for name, w in WORKLOADS.items()
    if _shown(w)
    for method in w.methods
    if method != "fastxent"
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-data")


def _run(name, method, data):
    workload = WORKLOADS[name]
    inputs = workload.inputs(_tiny(workload), data)
    try:
        fn = CASES[workload.loss][method](*inputs)
    except ImportError as missing:
        pytest.skip(f"{method} is not installed: {missing}")
    return inputs, comparable(fn())


@pytest.mark.parametrize("name, method", PAIRS)
def test_every_peer_computes_fastxents_value(name, method, data):
    inputs, got = _run(name, method, data)
    workload = WORKLOADS[name]
    if method == "memory_read":
        if workload.file is None:
            assert got == float(np.max(inputs[0]))
        return
    if method in FLOORS:  # a decoder: every row read
        assert got == workload.scaled_rows(_tiny(workload))
        return
    _, ours = _run(name, "fastxent", data)
    if isinstance(ours, dict):  # group losses, by key
        assert set(got) == set(ours)
        for key, loss in ours.items():
            assert got[key] == pytest.approx(loss, rel=1e-5), key
    else:  # the same loss, within float32 accumulation
        assert got == pytest.approx(ours, rel=1e-5)


@pytest.mark.parametrize("name", [n for n, w in WORKLOADS.items() if w.section == "features"])
def test_every_feature_runs_and_gives_the_files_loss(name, data):
    """The features (group-by, ``losses_to``, the report) run on their file; ``losses_to`` gives
    plain scoring's loss, the report the group-by's losses."""
    _, got = _run(name, "fastxent", data)
    workload = WORKLOADS[name]
    if workload.loss == "losses_to":
        _, plain = _run(f"{workload.data}: plain", "fastxent", data)
        assert got == plain
    if workload.loss == "report":
        _, groups = _run(f"{workload.data}: group by split", "fastxent", data)
        assert got.keys() == groups.keys()
        for key, loss in groups.items():
            assert got[key] == pytest.approx(loss, rel=1e-12)


def test_every_method_of_a_workload_is_in_the_registry():
    for workload in WORKLOADS.values():
        assert workload.methods[0] == "fastxent"
        assert set(workload.methods) <= set(CASES[workload.loss]), workload.name
