"""Compile (or load from Numba's cache) every CPU kernel for the dtypes users pass, and those
of the files they score."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

#: The files a scoring run reads, written small (:func:`warm_files`): ``(kind, classes, layout,
#: format)``. Parquet's page decoders and the file kernels are compiled for the columns' types
#: and layouts, not for a codec (pages are decompressed before them) nor for a class count.
FILE_LAYOUTS = (
    ("binary", 1, "list", "parquet"),
    ("multiclass", 100, "list", "parquet"),
    ("multiclass", 100, "columns", "parquet"),
    ("multiclass", 100, "list", "ipc"),
)


def warmup(parallel: bool = True) -> float:
    """Run every loss once on tiny float32 and float64 inputs, and score small files of each
    layout (:func:`warm_files`); return the seconds it took.

    The first run compiles (seconds per kernel); later runs load the on-disk cache.
    ``parallel=True`` also compiles the parallel twins, by running inputs large enough to use
    them.
    """
    from . import api, engine

    started = time.perf_counter()
    # as many rows as the parallel kernels start at: a binary loss's column of x too
    rows = engine.PARALLEL_MIN_ELEMENTS if parallel else 8
    for dtype in (np.float32, np.float64):
        for n in sorted({8, rows}):
            x = np.zeros((n, 4), dtype=dtype)
            y = np.zeros(n, dtype=np.int64)
            for reduction in ("mean", "none"):
                api.cross_entropy(x, y, reduction=reduction)
                api.cross_entropy(np.asfortranarray(x), y, reduction=reduction)  # class by class
                api.cross_entropy(x, np.full((n, 4), 0.25, dtype=dtype), reduction=reduction)
                for labels in (x[:, 0], y):  # float targets, and int64 labels read in place
                    api.binary_cross_entropy_with_logits(x[:, 0], labels, reduction=reduction)
                    api.binary_cross_entropy(x[:, 0] + 0.5, labels, reduction=reduction)
            api.log_loss(np.arange(n) % 2, np.full((n, 2), 0.5, dtype=dtype))
    with tempfile.TemporaryDirectory(prefix="fastxent-warmup-") as directory:
        warm_files(Path(directory), engine.PARALLEL_MIN_ELEMENTS * 8 if parallel else 64)
    return time.perf_counter() - started


#: Rows of the last row group of :func:`warm_files`' files: a batch below the parallel kernels'.
SMALL_GROUP_ROWS = 100


def warm_files(directory: Path, values: int) -> None:
    """Score a file of each of :data:`FILE_LAYOUTS` with about ``values`` logits, written in
    ``directory``: plainly, grouped by a string key and by an integer one, with per-row losses
    written, and as a report. A scoring run on files otherwise compiled its page decoders, group
    tables and losses writer at its first file, a minute after ``fastxent warmup`` had said the
    kernels were ready."""
    from .report import report
    from .score import score

    for file_layout in FILE_LAYOUTS:
        # a row group of about ``values`` values, then one of a few rows: a file's batches launch
        # the parallel kernels and the serial ones
        _, classes, _, _ = file_layout
        group = max(2, values // classes)
        rows = group + SMALL_GROUP_ROWS
        path, logits = write_layout(directory, file_layout, rows, seed=0, row_group_rows=group)
        score(str(path), target="label", logits=logits)
        for key in ("split", "id"):
            score(str(path), target="label", logits=logits, group_by=key)
        losses = directory / f"{path.stem}_losses.parquet"
        score(str(path), target="label", logits=logits, losses_to=str(losses), keep="id")
        report(str(path), out=directory / f"{path.stem}_report", by="split", target="label", logits=logits)


def write_layout(
    directory: Path, file_layout: tuple, rows: int, seed: int, row_group_rows: int
) -> tuple[Path, str]:
    """Write a :func:`~.synthetic.make_table` of ``rows`` rows in ``file_layout`` (one of
    :data:`FILE_LAYOUTS`), in row groups of ``row_group_rows`` rows, to ``directory``; return its
    path and the ``logits`` to score it with."""
    from .synthetic import make_table, write_table

    kind, classes, layout, fmt = file_layout
    path = directory / f"{kind}_{layout}.{'arrow' if fmt == 'ipc' else fmt}"
    table = make_table(rows, classes, kind=kind, layout=layout, seed=seed)
    write_table(table, str(path), fmt, row_group_rows=row_group_rows)
    return path, "logit_*" if layout == "columns" else "logits"
