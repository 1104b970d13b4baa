"""GPU benchmarks: fastxent's CUDA path against the device's own bandwidth and torch's CUDA loss.

Run on a machine with an NVIDIA GPU, torch (CUDA build) and fastxent importable::

    python bench/gpu_bench.py --out gpu.json

For each workload (float32 logits made on the GPU, int64 class targets or float32 binary targets)
it times, as medians of ``--repeats`` runs after a warm-up (``torch.cuda.synchronize()`` around
each; fastxent returns a host float, so it synchronises itself):

- ``fastxent``: ``fx.cross_entropy`` / ``fx.binary_cross_entropy_with_logits`` on the tensors
  where they lie (read in place through ``__cuda_array_interface__``);
- ``torch``: ``torch.nn.functional.cross_entropy`` / ``binary_cross_entropy_with_logits``;
- ``read``: ``x.sum()`` -- one read of the predictions, the floor for any loss;
- ``copy``: ``x.clone()`` -- the device copy bandwidth (bytes read + written);

and the host-resident path (NumPy arrays streamed through pinned buffers) against fastxent's CPU
path on this machine's cores and torch's ``.cuda()`` + loss. Each loss is checked against a float64
torch computation of the same tensors. With ``--tiny`` (and ``NUMBA_ENABLE_CUDASIM=1``, no torch
CUDA) it runs the fastxent side on the simulator with small arrays: a check of this script only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import fastxent as fx

#: name, rows, classes (1 = binary from logits): the CPU table's shapes (1.6 GB of float32 each)
#: and a language-model vocabulary with more rows; "confident": the target's logit raised by 8,
#: so that it is mostly the row's maximum (a trained model's rows, accuracy ~0.9).
WORKLOADS = [
    ("multiclass 4M x 100", 4_000_000, 100),
    ("multiclass 4M x 100 confident", 4_000_000, 100),
    ("multiclass 40M x 10", 40_000_000, 10),
    ("multiclass 400k x 1000", 400_000, 1000),
    ("multiclass 12.5k x 32000", 12_500, 32_000),
    ("multiclass 12.5k x 32000 confident", 12_500, 32_000),
    ("multiclass 100k x 32000", 100_000, 32_000),
    ("binary 400M", 400_000_000, 1),
]
TINY = [
    ("multiclass 3000 x 7", 3000, 7),
    ("multiclass 20 x 70 confident", 20, 70),
    ("multiclass 40 x 600", 40, 600),
    ("binary 5000", 5000, 1),
]
#: Host-resident workloads (streamed through pinned buffers).
HOST = [("host multiclass 4M x 100", 4_000_000, 100), ("host binary 100M", 100_000_000, 1)]
HOST_TINY = [("host multiclass 3000 x 7", 3000, 7)]


def _median_seconds(repeats: int, sync, fn, *args, **kwargs) -> tuple[float, object]:
    """Median wall time of ``fn(*args, **kwargs)`` over ``repeats`` runs after a warm-up (which
    compiles the kernels on first use), and its result."""
    result = fn(*args, **kwargs)
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _loss(module, x, y, classes: int, **kwargs) -> float:
    if classes == 1:
        return float(module.binary_cross_entropy_with_logits(x, y, **kwargs))
    return float(module.cross_entropy(x, y, **kwargs))


def _torch_on_the_gpu(x, y, classes: int) -> float:
    """torch's loss of host tensors: copied to the GPU (pageable memory), then scored."""
    import torch

    return _loss(torch.nn.functional, x.cuda(), y.cuda(), classes)


def _device_arrays(rows: int, classes: int, seed: int, confident: bool):
    """``(x, y, float64 loss)`` on the GPU: torch tensors, or Numba device arrays on the simulator."""
    import torch

    if torch.cuda.is_available():
        g = torch.Generator(device="cuda").manual_seed(seed)
        if classes == 1:
            x = torch.randn(rows, device="cuda", generator=g) * 3
            y = (torch.rand(rows, device="cuda", generator=g) < 0.5).float()
        else:
            x = torch.randn(rows, classes, device="cuda", generator=g) * 3
            y = torch.randint(0, classes, (rows,), device="cuda", generator=g)
            if confident:
                x[torch.arange(rows, device="cuda"), y] += 8
        ref = _loss(torch.nn.functional, x.double(), y.double() if classes == 1 else y, classes)
        return x, y, ref
    from numba import cuda

    x, y = _host_arrays(rows, classes, seed)
    if confident:
        x[np.arange(rows), y] += 8
    return cuda.to_device(x), cuda.to_device(y), _loss(fx, x.astype(np.float64), y, classes, device="cpu")


def _host_arrays(rows: int, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    shape = (rows,) if classes == 1 else (rows, classes)
    x = rng.standard_normal(shape, dtype=np.float32) * np.float32(3)
    y = (rng.random(rows) < 0.5).astype(np.float32) if classes == 1 else rng.integers(0, classes, rows)
    return x, y


def _one_device_resident(name: str, rows: int, classes: int, seed: int, repeats: int) -> dict:
    import torch

    on_gpu = torch.cuda.is_available()
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    x, y, ref = _device_arrays(rows, classes, seed, name.endswith("confident"))
    row = {"workload": name, "bytes": rows * classes * 4, "reference_float64": ref}
    seconds, got = _median_seconds(repeats, sync, _loss, fx, x, y, classes)
    row.update(fastxent_s=seconds, fastxent_loss=got, fastxent_rel_err=abs(got - ref) / abs(ref))
    if on_gpu:
        seconds, got = _median_seconds(repeats, sync, _loss, torch.nn.functional, x, y, classes)
        row.update(torch_s=seconds, torch_rel_err=abs(got - ref) / abs(ref))
        row["read_s"] = _median_seconds(repeats, sync, torch.sum, x)[0]
        row["copy_s"] = _median_seconds(repeats, sync, torch.clone, x)[0]
    return row


def _one_host_resident(name: str, rows: int, classes: int, seed: int, repeats: int) -> dict:
    import torch

    on_gpu = torch.cuda.is_available()
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    x, y = _host_arrays(rows, classes, seed)
    row = {"workload": name, "bytes": x.nbytes}
    cpu_s, cpu_loss = _median_seconds(repeats, sync, _loss, fx, x, y, classes, device="cpu")
    gpu_s, gpu_loss = _median_seconds(repeats, sync, _loss, fx, x, y, classes, device="cuda")
    row.update(fastxent_cpu_s=cpu_s, fastxent_cuda_s=gpu_s)
    row["rel_diff"] = abs(gpu_loss - cpu_loss) / abs(cpu_loss)
    if on_gpu:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        row["torch_copy_and_loss_s"] = _median_seconds(repeats, sync, _torch_on_the_gpu, tx, ty, classes)[0]
    return row


def _run_all(one, workloads, repeats: int) -> list[dict]:
    rows = []
    for seed, (name, n, classes) in enumerate(workloads):
        rows.append(one(name, n, classes, seed, repeats))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="small arrays (a check of this script)")
    args = parser.parse_args()
    from fastxent import gpu

    results = {
        "gpu": gpu.status()[1],
        "cpu_threads": os.cpu_count(),
        "device_resident": _run_all(_one_device_resident, TINY if args.tiny else WORKLOADS, args.repeats),
        "host_resident": _run_all(_one_host_resident, HOST_TINY if args.tiny else HOST, args.repeats),
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
