"""``fastxent bench``: fastxent against its peers on one grid of workloads, as a report.

The grid holds the bytes fixed and varies the class count (``N x C`` for C in 2, 10, 100, 1000,
32000), in float32 and float16, in memory; plus a Parquet and an Arrow IPC file, and the binary
loss against DuckDB SQL and Polars on the same Parquet file. Every peer that is installed runs in
the same process and thread count; one that is not is left out with a note. A memory-read
reference (``np.max`` over the same buffer) is the roofline. Compile time is measured in fresh
processes, cold (empty cache) and cached. Times are medians of several rounds. The compiling peers
(torch.compile, JAX, optax) run on issue 13's workloads one process per method
(:mod:`.bench_peers`), their first call reported apart.

The report is ``report.md`` (summary of ratios first, then tables and a hardware/software
footnote), ``results.json`` and PNG plots, written to ``out``.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASS_COUNTS = (2, 10, 100, 1000, 32000)


def _median_time(fn, rounds: int) -> float:
    fn()  # warm: compile, load caches, fault pages in
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _peers_multiclass(x: np.ndarray, y: np.ndarray) -> dict:
    """Callables computing the same mean cross-entropy, by method name (installed peers only)."""
    import fastxent as fx

    methods = {"fastxent": lambda: fx.cross_entropy(x, y)}

    def numpy_ce():
        v = x.astype(np.float32, copy=False)
        m = v.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(v - m).sum(axis=1)) + m[:, 0]
        return float(np.mean(log_z - v[np.arange(len(y)), y]))

    methods["numpy"] = numpy_ce
    try:
        from scipy.special import logsumexp

        methods["scipy"] = lambda: float(np.mean(logsumexp(x, axis=1) - x[np.arange(len(y)), y]))
    except ImportError:
        pass
    try:
        import torch

        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        methods["torch"] = lambda: float(torch.nn.functional.cross_entropy(tx.float(), ty))
    except ImportError:
        pass
    methods["memory_read"] = lambda: float(np.max(x))
    return methods


def _sklearn_peer(x: np.ndarray, y: np.ndarray):
    try:
        from sklearn.metrics import log_loss
    except ImportError:
        return None
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.arange(x.shape[1])
    return lambda: log_loss(y, probs, labels=labels)


def in_memory_grid(total_bytes: int, rounds: int, dtypes=("float32", "float16")) -> list[dict]:
    """Time every method on ``N x C`` logits of ``total_bytes`` for each C and dtype."""
    rng = np.random.default_rng(0)
    results = []
    for dtype in dtypes:
        for classes in CLASS_COUNTS:
            rows = max(1, total_bytes // (classes * np.dtype(dtype).itemsize))
            x = (rng.standard_normal((rows, classes), dtype=np.float32) * 2).astype(dtype)
            y = rng.integers(0, classes, rows)
            methods = _peers_multiclass(x, y)
            if dtype == "float32":
                sklearn = _sklearn_peer(x, y)  # from probabilities; slow, so float32 only
                if sklearn is not None:
                    methods["sklearn"] = sklearn
            for method, fn in methods.items():
                seconds = _median_time(fn, 1 if method in ("sklearn", "numpy", "scipy") else rounds)
                results.append(
                    {
                        "workload": "in memory",
                        "dtype": dtype,
                        "classes": classes,
                        "rows": rows,
                        "bytes": int(x.nbytes),
                        "method": method,
                        "seconds": seconds,
                        "gb_per_s": x.nbytes / seconds / 1e9,
                    }
                )
            del x, y, methods
    return results


def file_workloads(directory: Path, rows: int, rounds: int) -> list[dict]:
    """Scoring files: fastxent against decode-only reads and SQL/DataFrame peers."""
    import pyarrow.parquet as pq

    import fastxent as fx
    from fastxent.synthetic import make_table, write_table

    results = []
    files = {}
    for name, kind, classes, fmt in (
        ("multiclass C=100", "multiclass", 100, "parquet"),
        ("multiclass C=100", "multiclass", 100, "ipc"),
        ("binary", "binary", 1, "parquet"),
    ):
        n = rows if kind == "multiclass" else rows * 25
        path = directory / f"{kind}.{ {'ipc': 'arrow'}.get(fmt, fmt) }"
        if not path.exists():
            write_table(make_table(n, classes, kind=kind, seed=0), str(path), fmt, 1 << 17)
        files[(name, fmt)] = path
        size = path.stat().st_size

        def record(method, fn, path=path, name=name, fmt=fmt, n=n, size=size):
            seconds = _median_time(fn, rounds)
            results.append(
                {
                    "workload": f"{name}, {fmt}",
                    "method": method,
                    "rows": n,
                    "bytes": size,
                    "seconds": seconds,
                    "gb_per_s": size / seconds / 1e9,
                }
            )

        record("fastxent", lambda path=path: fx.score(str(path), target="label", logits="logits"))
        if fmt == "parquet":
            record(
                "pyarrow decode", lambda path=path: pq.read_table(path, columns=["label", "logits"]).num_rows
            )
            _optional_file_peers(record, path, kind)
    return results


def _optional_file_peers(record, path: Path, kind: str) -> None:
    try:
        import polars as pl

        record("polars decode", lambda: pl.read_parquet(path, columns=["label", "logits"]).height)
        if kind == "binary":
            x, y = pl.col("logits").cast(pl.Float64), pl.col("label").cast(pl.Float64)
            loss = ((1 - y) * x + (-x).clip(lower_bound=0) + (-x.abs()).exp().log1p()).mean()
            record("polars expression", lambda: pl.scan_parquet(path).select(loss).collect().item())
    except ImportError:
        pass
    try:
        import duckdb

        record(
            "duckdb decode",
            lambda: duckdb.sql(f"select label, logits from read_parquet('{path}')").arrow().read_all(),
        )
        if kind == "binary":
            sql = (
                "select avg((1 - label) * logits + greatest(-logits, 0) + ln(1 + exp(-abs(logits)))) "
                f"from read_parquet('{path}')"
            )
            record("duckdb sql", lambda: duckdb.sql(sql).fetchall())
    except ImportError:
        pass


#: What the quick run compiles: one loss, serial, float32 (the full run compiles every kernel).
QUICK_COMPILE = (
    "import numpy as np, fastxent as fx; "
    "fx.binary_cross_entropy_with_logits(np.zeros(8, np.float32), np.zeros(8, np.float32))"
)


def compile_times(quick: bool) -> dict:
    """Seconds to start a fresh process and compile, cold (empty cache) and then from the cache:
    every kernel (``fastxent warmup``), or one loss when ``quick``."""
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


def environment(command: str) -> dict:
    import numba

    from . import __version__
    from .gpu import status

    versions = {"fastxent": __version__, "numba": numba.__version__, "numpy": np.__version__}
    for module in ("pyarrow", "torch", "scipy", "sklearn", "polars", "duckdb", "jax", "optax"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    from .bench_peers import machine

    cpu = machine()
    return {
        "cpu": cpu["cpu"] if cpu["cpu"] != "unknown CPU" else platform.processor() or platform.machine(),
        "vectors": cpu["vectors"],
        "cores": os.cpu_count(),
        "threads": numba.get_num_threads(),
        "threading_layer": numba.config.THREADING_LAYER,
        "gpu": status()[1],
        "python": platform.python_version(),
        "versions": versions,
        "date": datetime.date.today().isoformat(),
        "command": command,
    }


def run(out: Path, quick: bool, command: str) -> dict:
    """Run the grid and write ``results.json``, ``report.md`` and the plots to ``out``."""
    from .bench_report import write_report

    out.mkdir(parents=True, exist_ok=True)
    rounds = 3 if quick else 5
    total_bytes = (4 << 20) if quick else (400 << 20)
    with tempfile.TemporaryDirectory(prefix="fastxent-bench-") as data:
        files = file_workloads(Path(data), 20_000 if quick else 1_000_000, rounds)
    results = {
        "in_memory": in_memory_grid(total_bytes, rounds, ("float32",) if quick else ("float32", "float16")),
        "peers": isolated_peers(quick, rounds),
        "files": files,
        "compile_s": compile_times(quick),
        "environment": environment(command),
        "notes": _missing_peers(),
    }
    write_report(results, out)
    return results


#: What the quick run times in processes of their own: one small workload, no compiling peer.
QUICK_PEERS = {"scale": 1e-3, "methods": ("fastxent", "memory_read"), "workloads": ("multiclass 4M × 100",)}


def isolated_peers(quick: bool, rounds: int) -> list[dict]:
    """fastxent, torch.compile, JAX, optax, eager torch and the memory read, each (workload,
    method) in a fresh process (:func:`.bench_peers.run_all`); the quick run only the first
    workload, scaled down, with fastxent and the memory read."""
    from .bench_peers import run_all

    if quick:
        return run_all(rounds=rounds, **QUICK_PEERS)
    return run_all(rounds=rounds)


def _missing_peers() -> list[str]:
    notes = []
    for module, peer in (
        ("torch", "torch CPU"),
        ("scipy", "SciPy logsumexp"),
        ("sklearn", "scikit-learn log_loss"),
        ("polars", "Polars"),
        ("duckdb", "DuckDB"),
        ("jax", "JAX"),
        ("optax", "optax"),
    ):
        try:
            __import__(module)
        except ImportError:
            notes.append(f"{peer} is not installed and was left out.")
    return notes


def summary_ratios(results: dict) -> dict:
    """fastxent's speed-up against each peer (geometric mean over the grid) and its fraction of
    the memory-read speed, per dtype."""
    table: dict = {}
    for dtype in sorted({r["dtype"] for r in results["in_memory"]}):
        rows = [r for r in results["in_memory"] if r["dtype"] == dtype]
        ours = {r["classes"]: r["seconds"] for r in rows if r["method"] == "fastxent"}
        for method in sorted({r["method"] for r in rows} - {"fastxent"}):
            ratios = [r["seconds"] / ours[r["classes"]] for r in rows if r["method"] == method]
            table[(dtype, method)] = math.exp(float(np.mean(np.log(ratios))))
    return {f"{d} {m}": v for (d, m), v in table.items()}
