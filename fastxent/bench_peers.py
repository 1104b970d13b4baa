"""Peers timed one to a process: fastxent, eager torch, torch.compile, JAX and optax on fixed workloads.

Each (method, workload) runs in a fresh interpreter (:func:`run_isolated`), so no library's thread
pool or allocator slows the next one, and a compiler's first call is reported apart from the
steady state: ``compile_s`` is the first call (tracing and code generation included) less the
median of the later ones. ``python -m fastxent.bench_peers METHOD WORKLOAD`` prints one result as
JSON; ``make bench`` and ``fastxent bench`` call it for every pair.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np

#: name: (kind, rows, classes). The float32 workloads of issue 13's table.
WORKLOADS = {
    "multiclass 4M × 100": ("multiclass", 4_000_000, 100),
    "multiclass 40M × 10": ("multiclass", 40_000_000, 10),
    "multiclass 400k × 1000": ("multiclass", 400_000, 1000),
    "multiclass 12.5k × 32000": ("multiclass", 12_500, 32000),
    "binary from logits, 100M": ("binary", 100_000_000, 1),
}

#: Every method, in the tables' column order; ``memory_read`` is ``np.max`` over the same logits.
METHODS = ("fastxent", "torch.compile", "jax", "optax", "torch", "memory_read")


def make_data(kind: str, rows: int, classes: int, seed: int = 0):
    """float32 logits ``N(0, 3^2)`` and their targets (class indices, or 0/1 floats for binary)."""
    rng = np.random.default_rng(seed)
    shape = (rows,) if kind == "binary" else (rows, classes)
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= 3
    if kind == "binary":
        return x, (rng.random(rows, dtype=np.float32) < 0.5).astype(np.float32)
    return x, rng.integers(0, classes, rows)


def _torch_functions(kind, x, y, compiled: bool):
    import torch

    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss = (
        torch.nn.functional.binary_cross_entropy_with_logits
        if kind == "binary"
        else torch.nn.functional.cross_entropy
    )
    if compiled:
        loss = torch.compile(loss, dynamic=False)
    return lambda: float(loss(tx, ty))


def _jax_function(kind, x, y, library: str):
    import jax
    import jax.numpy as jnp

    jx, jy = jnp.asarray(x), jnp.asarray(y.astype(np.int32) if kind != "binary" else y)
    if library == "optax":
        import optax

        if kind == "binary":
            fn = jax.jit(lambda a, t: optax.sigmoid_binary_cross_entropy(a, t).mean())
        else:
            fn = jax.jit(lambda a, t: optax.softmax_cross_entropy_with_integer_labels(a, t).mean())
    elif kind == "binary":
        # softplus(x) - x t, written stably: max(x, 0) - x t + log1p(exp(-|x|))
        fn = jax.jit(lambda a, t: jnp.mean(jnp.maximum(a, 0) - a * t + jnp.log1p(jnp.exp(-jnp.abs(a)))))
    else:

        def hand_written(a, t):
            m = jnp.max(a, axis=1, keepdims=True)
            log_z = jnp.log(jnp.sum(jnp.exp(a - m), axis=1)) + m[:, 0]
            return jnp.mean(log_z - jnp.take_along_axis(a, t[:, None], axis=1)[:, 0])

        fn = jax.jit(hand_written)
    return lambda: float(fn(jx, jy))


def method_function(method: str, kind: str, x, y):
    """A callable computing the mean loss of ``x``/``y`` with ``method`` (ImportError if absent)."""
    if method == "fastxent":
        import fastxent as fx

        loss = fx.binary_cross_entropy_with_logits if kind == "binary" else fx.cross_entropy
        return lambda: loss(x, y)
    if method in ("torch", "torch.compile"):
        return _torch_functions(kind, x, y, method == "torch.compile")
    if method in ("jax", "optax"):
        return _jax_function(kind, x, y, method)
    if method == "memory_read":
        return lambda: float(np.max(x))
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def time_method(method: str, workload: str, scale: float = 1.0, rounds: int = 5) -> dict:
    """Median seconds of ``rounds`` calls after a first one (compile, page faults), in this process."""
    kind, rows, classes = WORKLOADS[workload]
    x, y = make_data(kind, max(1, int(rows * scale)), classes)
    fn = method_function(method, kind, x, y)
    started = time.perf_counter()
    value = fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    median = float(np.median(times))
    return {
        "workload": workload,
        "method": method,
        "seconds": median,
        "min_seconds": float(min(times)),
        "compile_s": max(0.0, first - median),
        "value": float(value),
        "bytes": int(x.nbytes),
    }


def run_isolated(method: str, workload: str, scale: float = 1.0, rounds: int = 5) -> dict | None:
    """:func:`time_method` in a fresh interpreter; ``None`` when the method's library is missing."""
    command = [sys.executable, "-m", "fastxent.bench_peers", method, workload, str(scale), str(rounds)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode == 3:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"{method} on {workload!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_all(scale: float = 1.0, rounds: int = 5, methods=METHODS, workloads=tuple(WORKLOADS)) -> list[dict]:
    """:func:`run_isolated` for every workload and method (missing libraries left out)."""
    results = []
    for workload in workloads:
        for method in methods:
            result = run_isolated(method, workload, scale, rounds)
            if result is not None:
                results.append(result)
    return results


LABELS = {"jax": "JAX (jax.jit)", "torch": "torch eager", "memory_read": "memory read (np.max)"}
#: The methods whose first call compiles (or loads compiled code).
COMPILED = ("fastxent", "torch.compile", "jax", "optax")


def peers_tables(results: list[dict], what: str) -> str:
    """Markdown: median seconds by workload and method (with the ratio to fastxent), then each
    compiler's first call less the median. ``what`` heads the first column (dtype, threads)."""
    table: dict[str, dict[str, dict]] = {}
    for result in results:
        table.setdefault(result["workload"], {})[result["method"]] = result
    methods = [m for m in METHODS if any(m in row for row in table.values())]
    lines = [
        f"| workload ({what}) | " + " | ".join(LABELS.get(m, m) for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for workload, row in table.items():
        ours = row.get("fastxent", {}).get("seconds")
        cells = []
        for method in methods:
            seconds = row.get(method, {}).get("seconds")
            if seconds is None:
                cells.append("–")
            elif method == "fastxent" or ours is None:
                cells.append(f"{seconds:.3f} s")
            else:
                cells.append(f"{seconds:.3f} s ({seconds / ours:.2f}×)")
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    compiled = [m for m in COMPILED if m in methods]
    lines += [
        "",
        "| first call less the median (compile, tracing, cache load) | "
        + " | ".join(LABELS.get(m, m) for m in compiled)
        + " |",
        "|---|" + "---:|" * len(compiled),
    ]
    for workload, row in table.items():
        cells = [f"{row[m]['compile_s']:.1f} s" if m in row else "–" for m in compiled]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Vector extensions worth naming, widest first (``/proc/cpuinfo`` flag: name).
VECTOR_FLAGS = {"avx512f": "AVX-512", "avx2": "AVX2", "avx": "AVX", "sse4_2": "SSE4.2"}


def machine() -> dict:
    """The CPU (model name, family and model numbers), its widest vector extension (with the
    AVX-512 subsets) and its core count, from ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if key.strip() == "flags":
                break
    flags = set(fields.get("flags", "").split())
    cpu = fields.get("model name", "unknown CPU")
    if "cpu family" in fields and "model" in fields:
        cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    widest = next((name for flag, name in VECTOR_FLAGS.items() if flag in flags), "no AVX")
    if widest == "AVX-512":
        subsets = sorted(f.removeprefix("avx512").strip("_").upper() for f in flags if f.startswith("avx512"))
        widest += f" ({' '.join(subsets)})"
    return {"cpu": cpu, "vectors": widest, "cores": os.cpu_count()}


def main(argv: list[str]) -> int:
    method, workload = argv[0], argv[1]
    scale = float(argv[2]) if len(argv) > 2 else 1.0
    rounds = int(argv[3]) if len(argv) > 3 else 5
    try:
        result = time_method(method, workload, scale, rounds)
    except ImportError as missing:
        print(f"{method} skipped: {missing}", file=sys.stderr)
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
