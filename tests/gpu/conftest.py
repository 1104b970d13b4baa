"""The GPU tests run on a real GPU, or on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set
before Numba is imported: ``make test`` runs this directory a second time that way)."""

import pytest

from fastxent import gpu


def pytest_configure(config):
    # The simulator evaluates both sides of every select with NumPy scalars, so the discarded
    # side's inf * 0 warns; the kernels' results are checked against the CPU.
    config.addinivalue_line("filterwarnings", "ignore:invalid value encountered:RuntimeWarning")


def pytest_collection_modifyitems(config, items):
    usable, why = gpu.status()
    if usable:
        return
    skip = pytest.mark.skip(reason=f"no GPU and no CUDA simulator: {why}")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
