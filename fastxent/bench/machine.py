"""Where a benchmark ran: the CPU and its vector extensions, thread settings, library versions."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
import subprocess

#: Vector extensions worth naming, widest first (``/proc/cpuinfo`` flag: name).
VECTOR_FLAGS = {"avx512f": "AVX-512", "avx2": "AVX2", "avx": "AVX", "sse4_2": "SSE4.2", "asimd": "NEON"}
#: The settings that decide how many threads each library uses and whether idle ones spin.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")
#: The peers' libraries and the timer's (pytest-benchmark): their versions are recorded.
RECORDED_MODULES = (
    "pyarrow",
    "torch",
    "sklearn",
    "polars",
    "duckdb",
    "jax",
    "optax",
    "matplotlib",
    "pytest_benchmark",
)
#: Their distributions' names where they differ from the module's.
DISTRIBUTIONS = {"sklearn": "scikit-learn", "pytest_benchmark": "pytest-benchmark"}


def _cpu_fields() -> dict[str, str]:
    """``lscpu``'s fields (model name, flags), or the first processor's in ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    if shutil.which("lscpu"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            for line in text.splitlines():
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
            if key.strip() == "flags":
                break
    return fields


def cpu() -> dict:
    """The CPU's model (with family and model numbers, which tell a server generation apart when
    a virtual machine names only the brand), its widest vector extension (with the AVX-512
    subsets) and its core count."""
    fields = _cpu_fields()
    flags = set(fields.get("flags", "").split())
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    widest = next((label for flag, label in VECTOR_FLAGS.items() if flag in flags), "no AVX")
    if widest == "AVX-512":
        subsets = sorted(f.removeprefix("avx512").strip("_").upper() for f in flags if f.startswith("avx512"))
        widest += f" ({' '.join(subsets)})"
    return {"cpu": name, "vectors": widest, "cores": os.cpu_count()}


def versions() -> dict:
    """fastxent's, Numba's, NumPy's, every peer's and pytest-benchmark's version (``None``: not
    installed)."""
    from importlib import metadata

    import numba
    import numpy as np

    from fastxent import __version__

    found = {"fastxent": __version__, "numba": numba.__version__, "numpy": np.__version__}
    for module in RECORDED_MODULES:
        name = DISTRIBUTIONS.get(module, module)
        try:
            found[module] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[module] = None
    return found


def environment(command: str) -> dict:
    """The machine, thread settings, versions, date and command of a run."""
    import numba

    return {
        "machine": cpu(),
        "threads": {
            **{name: os.environ.get(name) for name in THREAD_VARIABLES},
            "numba_threads": numba.get_num_threads(),
        },
        "python": platform.python_version(),
        "versions": versions(),
        "date": datetime.date.today().isoformat(),
        "command": command,
    }
