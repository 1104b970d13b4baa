"""Seeded synthetic prediction files (``fastxent make-data``) for tests, demos and benchmarks.

Logits look like a real model's: the true class gets a margin drawn around ``signal`` so it
usually ranks first, a fraction of rows is confidently wrong (a large logit on another class),
and the rest is Gaussian noise. Optional nulls and a ``split`` column.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa

from .errors import InputValueError
from .io.formats import PARQUET_CODECS, STDOUT, OutputFormat, output_format
from .io.paths import StreamFile, is_stream
from .io.sinks import atomic_write
from .io.writers import TableWriter

SPLITS = np.array(["train", "valid", "test"])


def make_table(
    rows: int,
    classes: int,
    *,
    kind: str = "multiclass",
    layout: str = "list",
    seed: int = 0,
    nulls: float = 0.0,
    wrong: float = 0.05,
    signal: float = 3.0,
    dtype: str = "float32",
) -> pa.Table:
    """A prediction table: ``label`` (or ``labels``), ``logits`` (or ``logit_0..``), ``split``, ``id``.

    kind : "binary" (one logit column, 0/1 label), "multiclass" (C logits, class index) or
        "multilabel" (C logits, a 0/1 list).
    layout : "list" (one ``fixed_size_list`` column) or "columns" (``logit_0`` ... ``logit_{C-1}``).
    """
    if kind not in ("binary", "multiclass", "multilabel"):
        raise InputValueError(f"`kind` must be binary, multiclass or multilabel, got {kind!r}.")
    if layout not in ("list", "columns"):
        raise InputValueError(f"`layout` must be 'list' or 'columns', got {layout!r}.")
    if rows < 0 or classes < 1 or (kind != "binary" and classes < 2):
        raise InputValueError(f"need rows >= 0 and classes >= 2 (binary: 1), got {rows} and {classes}.")
    float_type = np.dtype(dtype)
    _check_memory(rows, 1 if kind == "binary" else classes, float_type)
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    if kind == "binary":
        label = rng.random(rows) < 0.5
        margin = rng.normal(signal, signal / 2, rows)
        flip = rng.random(rows) < wrong
        logit = np.where(label ^ flip, margin, -margin).astype(float_type)
        columns["label"] = pa.array(label.astype(np.int64))
        columns["logits"] = pa.array(logit)
    else:
        width = classes
        logits = rng.standard_normal((rows, width), dtype=np.float64)
        if kind == "multiclass":
            label = rng.integers(0, width, rows)
            logits[np.arange(rows), label] += rng.normal(signal, 1.0, rows)
            wrong_rows = np.flatnonzero(rng.random(rows) < wrong)
            decoy = (label[wrong_rows] + rng.integers(1, width, wrong_rows.size)) % width
            logits[wrong_rows, decoy] += 2 * signal
            columns["label"] = pa.array(label.astype(np.int64))
        else:
            label = rng.random((rows, width)) < 0.3
            logits += np.where(label, signal, -signal) * (rng.random((rows, width)) > wrong)
            columns["labels"] = pa.FixedSizeListArray.from_arrays(
                pa.array(label.reshape(-1).astype(np.int8)), width
            )
        logits = logits.astype(float_type)
        if layout == "list":
            columns["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1)), width)
        else:
            for c in range(width):
                columns[f"logit_{c}"] = pa.array(logits[:, c])
    columns["split"] = pa.array(SPLITS[rng.integers(0, 3, rows)])
    if nulls > 0:
        target = "labels" if kind == "multilabel" else "label"
        mask = rng.random(rows) < nulls
        columns[target] = pa.array(columns[target].to_pylist(), type=columns[target].type, mask=mask)
    return pa.table(columns)


def _leaf_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_fixed_size_list(t) else t


def _check_memory(rows: int, width: int, dtype: np.dtype) -> None:
    """Refuse a table that cannot fit in this machine's memory, before allocating any of it (a
    huge request otherwise ends in a ``MemoryError``, or the kernel's OOM killer)."""
    # logits are drawn in float64, then converted; id, label and split take ~40 bytes a row
    need = rows * (width * (8 + dtype.itemsize) + 40)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total:
        raise InputValueError(
            f"{rows:,} rows of {width} classes need about {need / 1e9:,.0f} GB of memory to "
            f"generate, more than this machine's {total / 1e9:,.0f} GB; write fewer rows."
        )


def _write(
    table: pa.Table, target, out_format: OutputFormat, row_group_rows: int, compression: str | None
) -> None:
    """Write ``table`` to ``target``, a path or a file object."""
    # dictionary-encoding random floats only wastes space (it falls back to plain pages)
    categorical = [f.name for f in table.schema if not pa.types.is_floating(_leaf_type(f.type))]
    options = {"use_dictionary": categorical, "write_page_checksum": True}
    if compression is not None:
        options["compression"] = compression
    with TableWriter(target, table.schema, out_format, options) as writer:
        writer.write(table, row_group_rows)


def check_compression(out_format: OutputFormat, compression: str | None, path: str) -> None:
    """Refuse a Parquet codec for an output that is not Parquet, or a codec pyarrow lacks."""
    if compression is None:
        return
    if out_format.kind != "parquet":
        raise InputValueError(
            f"`compression` sets the codec of Parquet pages; {path!r} is written as {out_format.kind}."
        )
    if compression not in PARQUET_CODECS:
        raise InputValueError(
            f"`compression` must be one of {', '.join(PARQUET_CODECS)}, got {compression!r}."
        )


def write_table(
    table: pa.Table,
    path: str,
    fmt: str | None = None,
    row_group_rows: int = 1 << 17,
    compression: str | None = None,
) -> None:
    """Write ``table`` as Parquet, Arrow IPC or CSV: ``fmt`` ("parquet", "ipc" or "csv"), or the
    format ``path``'s name asks for (:func:`~fastxent.io.formats.output_format`: ``.csv.gz`` is
    gzip-compressed CSV). Written via a hidden temporary name and a rename; a FIFO or a device is
    written through (see :mod:`fastxent.io.paths`), and ``-`` is standard output. ``compression``:
    the Parquet pages' codec (one of :data:`PARQUET_CODECS`; ``None``: pyarrow's default, snappy)."""
    if fmt not in (None, "parquet", "ipc", "csv"):
        raise InputValueError(f"`format` must be parquet, ipc or csv, got {fmt!r}.")
    out_format = output_format(path, fmt)
    check_compression(out_format, compression, path)
    if out_format.kind == "csv" and any(pa.types.is_fixed_size_list(f.type) for f in table.schema):
        raise InputValueError(
            "CSV holds flat columns only; use layout='columns' (make-data --layout columns) for "
            "multiclass CSV."
        )

    def write(out) -> None:
        if out == STDOUT:
            sys.stdout.flush()  # what was printed before comes first
            target = StreamFile(fd=os.dup(sys.stdout.fileno()))
        else:
            target = StreamFile(str(out)) if is_stream(str(out)) else str(out)
        _write(table, target, out_format, row_group_rows, compression)

    if path == STDOUT:
        write(path)
    else:
        atomic_write(path, write)
