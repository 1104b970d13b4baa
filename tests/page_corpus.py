"""The table the page reader's tests write in many ways (tests/test_page_reader.py,
tests/test_page_corruption.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ROWS, CLASSES = 3000, 5


def corpus_table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    """Every column type the reader decodes: fixed_size_list, list and large_list of floats,
    nullable float32, float16, float64 of distinct values (dictionary fallback), bool, small and
    unsigned integers, strings of a few values (nulls, the empty string, non-ASCII) and of many
    (dictionary fallback). NaN, infinities and -0.0 included: their bits must survive."""
    rng = np.random.default_rng(seed)
    few = np.array(["train", "val", "", "tést ✓", None], dtype=object)
    flat = rng.standard_normal(rows * CLASSES).astype(np.float32)
    flat[::97] = np.nan
    flat[::89] = -np.inf
    flat[::83] = -0.0
    return pa.table(
        {
            "label": rng.integers(0, CLASSES, rows),
            "logits": pa.FixedSizeListArray.from_arrays(pa.array(flat), CLASSES),
            "lst": pa.array(list(flat.reshape(rows, CLASSES)), pa.list_(pa.float32())),
            "big": pa.array(
                list(flat.astype(np.float64).reshape(rows, CLASSES)), pa.large_list(pa.float64())
            ),
            "x": pa.array(rng.standard_normal(rows).astype(np.float32), mask=rng.random(rows) < 0.1),
            "h": pa.array(rng.standard_normal(rows).astype(np.float16)),
            "p": pa.array(rng.random(rows)),
            "y": pa.array(rng.random(rows) < 0.5),
            "i8": pa.array(rng.integers(-5, 5, rows).astype(np.int8)),
            "u32": pa.array(rng.integers(0, 1 << 32, rows, dtype=np.uint64).astype(np.uint32)),
            "split": pa.array(few[rng.integers(0, len(few), rows)], pa.string()),
            "name": pa.array([f"user {k}" for k in rng.integers(0, 10 * rows, rows)], pa.string()),
        }
    )
