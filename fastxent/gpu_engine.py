"""Running one batch of a loss on the GPU: argument set-up, streaming, kernel choice.

:func:`run_blocks` takes a validated batch (host NumPy arrays, or arrays already on the GPU) and
returns what :func:`fastxent.engine.run_blocks` returns on the CPU: sums of the stream's blocks
that the batch holds whole, counts, and the row values of the blocks it holds only part of. Each
CUDA thread block sums one of the stream's blocks, so a block's sum does not depend on how
batches cut the stream (:mod:`.kernels.gpu_sum_order`). :func:`row_values` gives each row's loss
and denominator.
Host batches are cut into chunks that go through two pinned buffers on two CUDA streams: while
the kernel of one chunk runs, the next chunk is being copied. Imported only when a GPU path is
taken.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from .gpu import CHUNK_BYTES, device_view, is_device_array
from .kernels import cuda as kernels
from .kernels.blocks import segment_count
from .kernels.codes import BLOCK_ROWS, N_SUMS, PER_ELEMENT
from .spec import LossSpec

#: Rows of logits at least this wide get one thread block per row instead of one thread. Measured
#: on an H200 (bench/gpu_bench.py): 32 threads a row (4 rows a block) scored 4M x 100 in 12.6 ms,
#: one thread a row in 6.7 ms; a block a row, 400k x 1000 in 6.1 ms.
WIDE_ROW_CLASSES = 512


def _device(a, dtype=None):
    """A device view of ``a`` (in place when it is already on the GPU), or an empty array."""
    if a is None:
        return cuda.device_array(0, dtype=dtype or np.float64)
    if is_device_array(a):
        return device_view(a)
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype) if dtype else np.ascontiguousarray(a))


class _Launch:
    """The kernel(s) of one loss family with their fixed arguments."""

    def __init__(self, spec: LossSpec, num_classes: int, weight_mode: int):
        self.spec = spec
        self.kind = spec.kind_code()
        self.weight_mode = weight_mode
        self.class_weight = _device(spec.class_weight if spec.class_weight.size else None)
        pos_weight = spec.pos_weight
        if pos_weight.size == 1 and num_classes > 1:
            pos_weight = np.full(num_classes, pos_weight[0])
        self.pos_weight = _device(pos_weight if pos_weight.size else None)
        self.w_total = float(spec.class_weight.sum()) if spec.class_weight.size else float(num_classes)
        self.wide = spec.family == "multiclass" and self.kind == 0 and num_classes >= WIDE_ROW_CLASSES

    def __call__(self, stream, x, t, sw, ew, per_row, sums, counts):
        """Queue the kernels for one chunk on ``stream``: ``sums`` (one row per summation block)
        and ``counts`` (totals, added to) on the GPU."""
        spec, blocks = self.spec, sums.shape[0]
        eps = float(np.finfo(np.float16 if x.dtype == np.float16 else x.dtype).eps)
        if self.wide:
            n = x.shape[0]
            row_loss = cuda.device_array(n, np.float64, stream=stream)
            row_den = cuda.device_array(n, np.float64, stream=stream)
            row_flags = cuda.device_array(n, np.int64, stream=stream)
            kernels.index_target_row_blocks[n, kernels.TPB, stream](
                x, t, self.class_weight, sw, spec.ignore_index, spec.label_smoothing, self.w_total,
                row_loss, row_den, row_flags,
            )  # fmt: skip
            kernels.row_blocks[blocks, kernels.TPB, stream](
                row_loss, row_den, row_flags, per_row, sums, counts
            )
        elif spec.family == "multiclass":
            tolerance = 1e-8 + float(np.sqrt(eps))
            kernels.index_target_blocks[blocks, kernels.TPB, stream](
                x, t, self.class_weight, sw, spec.ignore_index, spec.label_smoothing, self.kind, eps,
                tolerance, self.w_total, per_row, sums, counts,
            )  # fmt: skip
        elif spec.family == "soft":
            kernels.soft_target_blocks[blocks, kernels.TPB, stream](
                x, t, self.class_weight, sw, spec.label_smoothing, self.kind, per_row, sums, counts
            )
        else:
            kernels.binary_blocks[blocks, kernels.TPB, stream](
                x, t, ew, self.weight_mode, self.pos_weight, sw, self.kind, eps, per_row, sums, counts
            )


def _as_2d(a, family: str):
    """Binary input goes to the kernels as ``(N, C)`` (``C = 1`` for one value per row)."""
    if family == "binary" and a is not None and len(a.shape) == 1:
        return a.reshape(a.shape[0], 1)
    return a


def _launch_all(spec, x, target, sample_weight, element_weight, weight_mode, with_rows: bool):
    """Score rows on the GPU: ``(block sums (B, N_SUMS), counts, per-row (loss, den) (N, 2) or None)``,
    a block being :data:`BLOCK_ROWS` rows from the first."""
    x, target = _as_2d(x, spec.family), _as_2d(target, spec.family)
    n, num_classes = x.shape[0], x.shape[1]
    launch = _Launch(spec, num_classes, weight_mode)
    if n == 0:
        return np.zeros((0, N_SUMS)), np.zeros(kernels.N_COUNTS, dtype=np.int64), np.zeros((0, 2))
    if is_device_array(x):
        return _run_resident(launch, x, target, sample_weight, element_weight, with_rows)
    return _run_streamed(launch, x, target, sample_weight, element_weight, weight_mode, with_rows)


def _rows(a, lo: int, hi: int):
    return None if a is None else a[lo:hi]


def run_blocks(spec, x, target, sample_weight, element_weight, weight_mode, first: int):
    """Score one batch whose first block boundary is ``first`` rows in, as
    :func:`fastxent.engine.run_blocks`: ``(sums, counts, edge_loss, edge_den)``.

    The rows before ``first`` and after the last whole block come back row by row (the edges);
    the whole blocks between are summed on the GPU, one thread block each.
    """
    n = x.shape[0]
    head = min(first, n)
    whole = (n - head) // BLOCK_ROWS * BLOCK_ROWS
    per_element = element_weight is not None and weight_mode == PER_ELEMENT
    counts = np.zeros(kernels.N_COUNTS, dtype=np.int64)
    edges = []
    block_sums = np.zeros((0, N_SUMS))
    for lo, hi, rowwise in ((0, head, True), (head, head + whole, False), (head + whole, n, True)):
        if hi == lo:
            continue
        ew = _rows(element_weight, lo, hi) if per_element else element_weight
        part_sums, part_counts, per_row = _launch_all(
            spec, x[lo:hi], target[lo:hi], _rows(sample_weight, lo, hi), ew, weight_mode, rowwise
        )
        counts += part_counts
        if rowwise:
            edges.append(per_row)
        else:
            block_sums = part_sums
    sums = np.zeros((segment_count(n, head), N_SUMS))
    sums[(1 if head else 0) : (1 if head else 0) + block_sums.shape[0]] = block_sums
    edge = np.concatenate(edges) if edges else np.zeros((0, 2))
    return sums, counts[None, :], edge[:, 0].copy(), edge[:, 1].copy()


def row_values(spec, x, target, sample_weight, element_weight, weight_mode) -> np.ndarray:
    """Each row's ``(loss, denominator)``, ``(N, 2)`` on the host (``reduction="none"``)."""
    return _launch_all(spec, x, target, sample_weight, element_weight, weight_mode, True)[2]


def _blocks(rows: int) -> int:
    return -(-rows // BLOCK_ROWS)


def _run_resident(launch, x, target, sample_weight, element_weight, with_rows):
    n = x.shape[0]
    stream = cuda.stream()
    sums = cuda.device_array((_blocks(n), N_SUMS), np.float64, stream=stream)
    counts = cuda.to_device(np.zeros(kernels.N_COUNTS, np.int64), stream=stream)
    per_row = cuda.device_array((n if with_rows else 0, 2), np.float64, stream=stream)
    ew = _device(None if element_weight is None else element_weight.reshape(-1), np.float64)
    launch(stream, _device(x), _device(target), _device(sample_weight, np.float64), ew, per_row, sums, counts)
    stream.synchronize()
    rows = per_row.copy_to_host() if with_rows else None
    return sums.copy_to_host(), counts.copy_to_host(), rows


def _staged(slot: dict, name: str, host: np.ndarray, capacity: int, stream):
    """Copy ``host`` to the GPU through this slot's pinned buffer for ``name``; return the device view."""
    host = np.ascontiguousarray(host)
    buffer = slot.get(name)
    if buffer is None or buffer[0].dtype != host.dtype or buffer[0].shape[1:] != host.shape[1:]:
        shape = (max(capacity, host.shape[0]), *host.shape[1:])
        buffer = slot[name] = (cuda.pinned_array(shape, host.dtype), cuda.device_array(shape, host.dtype))
    pinned, on_device = buffer
    rows = host.shape[0]
    pinned[:rows] = host
    on_device[:rows].copy_to_device(pinned[:rows], stream=stream)
    return on_device[:rows]


def _run_streamed(launch, x, target, sample_weight, element_weight, weight_mode, with_rows):
    n, num_classes = x.shape[0], x.shape[1]
    row_bytes = x.itemsize * num_classes + target.itemsize * (target.size // n)
    # whole blocks a chunk, so that thread blocks stay aligned to the stream's blocks across chunks
    step = max(BLOCK_ROWS, CHUNK_BYTES // row_bytes // BLOCK_ROWS * BLOCK_ROWS)
    streams = [cuda.stream(), cuda.stream()]
    slots: list[dict] = [{}, {}]
    per_element = element_weight is not None and weight_mode == PER_ELEMENT
    shared_weight = _device(None if per_element else element_weight, np.float64)
    no_sample_weight = cuda.device_array(0, np.float64)
    counts = cuda.to_device(np.zeros(kernels.N_COUNTS, np.int64))  # every chunk adds to it atomically
    pending = []  # (lo, hi, device sums, device per-row)
    for i, lo in enumerate(range(0, n, step)):
        hi, slot, stream = min(lo + step, n), slots[i % 2], streams[i % 2]
        stream.synchronize()  # the chunk that last used this slot's buffers is done with them
        xs = _staged(slot, "x", x[lo:hi], step, stream)
        ts = _staged(slot, "t", target[lo:hi], step, stream)
        sw = (
            no_sample_weight
            if sample_weight is None
            else _staged(slot, "sw", sample_weight[lo:hi], step, stream)
        )
        ew = shared_weight
        if per_element:
            chunk = element_weight.reshape(n, num_classes)[lo:hi].reshape(-1)
            ew = _staged(slot, "ew", chunk, step * num_classes, stream)
        rows = hi - lo
        sums = cuda.device_array((_blocks(rows), N_SUMS), np.float64, stream=stream)
        per_row = cuda.device_array((rows if with_rows else 0, 2), np.float64, stream=stream)
        launch(stream, xs, ts, sw, ew, per_row, sums, counts)
        pending.append((lo, hi, sums, per_row))
    for stream in streams:
        stream.synchronize()
    all_sums = []
    rows_out = np.empty((n, 2)) if with_rows else None
    for lo, hi, sums, per_row in pending:
        all_sums.append(sums.copy_to_host())
        if with_rows:
            rows_out[lo:hi] = per_row.copy_to_host()
    return np.concatenate(all_sums), counts.copy_to_host(), rows_out
