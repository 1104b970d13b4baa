"""The GPU path: is a GPU usable, and running one batch of a loss on it.

Nothing here runs at package import: :func:`status` imports numba-cuda and asks the driver only
when a caller wants to know (``device="cuda"``, an input on the GPU, ``fastxent info``). Host
batches are streamed through two pinned host buffers and two CUDA streams, so that copying chunk
``k + 1`` overlaps the kernel on chunk ``k``; only the sums of the 2048-row blocks come back.
Arrays already on the GPU (CuPy, torch CUDA tensors: anything with
``__cuda_array_interface__``) are read in place.
"""

from __future__ import annotations

import ctypes.util
import functools
import os

from .errors import InputTypeError, InputValueError

#: Bytes of input per streamed chunk (two of them are in flight): a batch of
#: :data:`GPU_BATCH_BYTES` is several chunks, so copies and kernels overlap within it.
CHUNK_BYTES = 16 << 20

#: Default batch size of ``fx.score`` on the GPU (bytes of predictions).
GPU_BATCH_BYTES = 128 << 20

INSTALL_HINT = (
    "install the GPU extra that matches your driver: pip install 'fastxent[cuda12]' (CUDA 12) or "
    "'fastxent[cuda13]' (CUDA 13)"
)


def simulated() -> bool:
    """Whether Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``): correct but slow."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@functools.cache
def status() -> tuple[bool, str]:
    """``(usable, description)``: the GPU's name and capabilities, or why none is usable."""
    try:
        from numba import cuda
    except ImportError:
        return False, f"numba-cuda is not installed; {INSTALL_HINT}."
    if simulated():
        return True, "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    try:
        if not cuda.is_available():
            return False, f"no CUDA driver or GPU was found ({_driver_problem(cuda)}); {INSTALL_HINT}."
        device = cuda.get_current_device()
        free, total = cuda.current_context().get_memory_info()
        major, minor = device.compute_capability
        driver = cuda.cudadrv.driver.driver.get_version()
        return True, (
            f"{device.name.decode() if isinstance(device.name, bytes) else device.name}, "
            f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} free), compute capability {major}.{minor}, "
            f"driver CUDA {driver[0]}.{driver[1]}"
        )
    except Exception as err:  # the driver reports problems in many ways; all mean "not usable"
        return False, f"the CUDA driver failed: {err}; {INSTALL_HINT}."


def _driver_problem(cuda) -> str:
    if ctypes.util.find_library("cuda") is None:
        return "the NVIDIA driver library libcuda.so is not installed: no driver, or no GPU here"
    try:
        cuda.cudadrv.driver.driver.get_version()
    except Exception as err:
        return str(err).splitlines()[0] or type(err).__name__
    return "the driver sees no GPU"


def require() -> None:
    """Raise a clear error unless a GPU (or the simulator) is usable."""
    usable, description = status()
    if not usable:
        raise InputValueError(f"device='cuda' was asked for, but {description}")


def is_device_array(value) -> bool:
    """Whether ``value`` lives on a GPU (CuPy, torch CUDA tensors, Numba device arrays).

    Under the simulator, Numba's device arrays have no ``__cuda_array_interface__``; they are
    recognised by their type so that the device-resident path is tested there too.
    """
    if hasattr(value, "__cuda_array_interface__"):
        return True
    return simulated() and type(value).__name__ == "FakeCUDAArray"


def device_view(value):
    """A Numba device array viewing ``value`` in place (no copy)."""
    if simulated() or not hasattr(value, "__cuda_array_interface__"):
        return value
    from numba import cuda

    return cuda.as_cuda_array(value)


def choose(device: str, *values) -> str:
    """``"cpu"`` or ``"cuda"`` for ``device`` in ``auto | cpu | cuda``.

    ``auto`` takes the GPU only when an input is already on it. Host data stays on the CPU however
    large: measured on an H200 host (PCIe, 16 cores; bench/gpu_bench.py), 1.6 GB of 4M x 100 logits
    scored in 0.09 s by the CPU kernels, 0.56 s streamed to the GPU through pinned buffers, and
    0.29 s by torch's own `.cuda()` + loss; the copy alone costs more than the CPU's pass.
    """
    on_gpu = any(is_device_array(v) for v in values)
    if device == "cpu":
        if on_gpu:
            raise InputTypeError(
                "an input lives on a GPU but device='cpu' was asked for; copy it to the host first "
                "(torch: `.cpu()`, CuPy: `.get()`) or pass device='cuda'."
            )
        return "cpu"
    if device == "cuda" or on_gpu:
        require()
        return "cuda"
    return "cpu"
