"""Every CUDA kernel compiles to PTX for the dtypes it is called with (no GPU needed).

Catches typing errors the simulator misses (it runs the kernels as Python). Needs numba-cuda and
the NVVM compiler of its ``cu13`` extra (``make test`` installs them); skips cleanly without.
"""

from __future__ import annotations

import types as pytypes

import pytest

cuda = pytest.importorskip("numba.cuda")
from numba import types  # noqa: E402

from fastxent import gpu  # noqa: E402

if gpu.simulated():
    pytest.skip("the simulator has no compiler", allow_module_level=True)
try:
    from numba.cuda.cudadrv import nvvm

    nvvm.NVVM()
except Exception as err:  # no NVVM library: nothing to compile with
    pytest.skip(f"NVVM is not available ({err})", allow_module_level=True)

CC = (9, 0)  # H100
F64, I64 = types.float64, types.int64
VEC, MAT = F64[:], F64[:, :]


@pytest.fixture(autouse=True)
def no_driver_needed(monkeypatch):
    """Device functions ask the current device for its compute capability; there is none here."""
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: pytypes.SimpleNamespace(compute_capability=CC)
    )


def _signatures(dtype):
    x = dtype[:, :]
    return {
        "index_target_blocks": (x, I64[:], VEC, VEC, I64, F64, I64, F64, F64, F64, MAT, MAT, I64[:]),
        "index_target_row_blocks": (x, I64[:], VEC, VEC, I64, F64, F64, VEC, VEC, I64[:]),
        "soft_target_blocks": (x, x, VEC, VEC, F64, I64, MAT, MAT, I64[:]),
        "binary_blocks": (x, x, VEC, I64, VEC, VEC, I64, F64, MAT, MAT, I64[:]),
    }


@pytest.mark.parametrize("dtype", [types.float16, types.float32, types.float64])
def test_every_loss_kernel_compiles(dtype):
    from fastxent.kernels import cuda as kernels

    for name, signature in _signatures(dtype).items():
        ptx, _ = cuda.compile_ptx(getattr(kernels, name).py_func, signature, cc=CC)
        assert ".visible .entry" in ptx and "bar.sync" in ptx, name  # a kernel with its block reduction
        if name != "index_target_row_blocks":  # the per-block kernels: products never fused
            # the standard error's products round on their own, as the host's do (gpu_sum_order):
            # libdevice's dmul_rn, which NVVM does not contract into an fma with the sum
            assert "mul.rn.f64" in ptx and "atom.global.add" in ptx, name


def test_helper_kernels_compile():
    from fastxent.kernels import cuda as kernels

    helpers = {
        "row_blocks": (VEC, VEC, I64[:], MAT, MAT, I64[:]),
        "first_bad_target": (I64[:], I64, I64, I64[:]),
        "first_outside_unit": (F64[:], I64[:]),
    }
    for name, signature in helpers.items():
        ptx, _ = cuda.compile_ptx(getattr(kernels, name).py_func, signature, cc=CC)
        assert ".entry" in ptx, name
