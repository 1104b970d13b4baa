"""Class columns the page reader decodes into one buffer are scored in place, as one (N, C) array.

The page reader lays a batch's flat columns of one type side by side in one Arrow buffer
(:func:`fastxent.io.pages.cursor.shared_value_buffers`); ``stacked_in_place`` views them as the
Fortran-order array the class-by-class kernels read, where other columns are copied into one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.engine import chunks, class_rows
from fastxent.io.columns import stacked_in_place
from fastxent.io.pages import READER_VARIABLE
from fastxent.io.pages.cursor import spread_stride
from fastxent.io.sources import open_parts
from fastxent.run.plan import prepare
from fastxent.spec import LossSpec


def _slices_of_one_buffer(values: np.ndarray, stride_rows: int | None = None) -> list[pa.Array]:
    """Columns of ``values`` (N, C) as Arrow arrays over slices of one buffer, ``stride_rows``
    apart (default N)."""
    n, c = values.shape
    stride = n if stride_rows is None else stride_rows
    whole = np.zeros((c, stride), dtype=values.dtype)
    whole[:, :n] = values.T
    buffer = pa.py_buffer(whole)
    width = values.dtype.itemsize
    typ = pa.from_numpy_dtype(values.dtype)
    return [
        pa.Array.from_buffers(typ, n, [None, buffer.slice(k * stride * width, n * width)]) for k in range(c)
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
def test_columns_of_one_buffer_are_viewed_in_place(dtype):
    values = (np.arange(30 * 7) % 11).reshape(30, 7).astype(dtype)
    x = stacked_in_place(_slices_of_one_buffer(values))
    assert x is not None and x.flags.f_contiguous and not x.flags.writeable
    np.testing.assert_array_equal(x, values)
    spaced = stacked_in_place(_slices_of_one_buffer(values, stride_rows=41))  # a slice of a batch
    assert spaced is not None and spaced.strides == (values.itemsize, 41 * values.itemsize)
    np.testing.assert_array_equal(spaced, values)
    sliced = stacked_in_place([a.slice(5, 20) for a in _slices_of_one_buffer(values)])
    np.testing.assert_array_equal(sliced, values[5:25])


def test_other_columns_are_not_viewed():
    values = np.arange(40, dtype=np.float32).reshape(10, 4)
    columns = _slices_of_one_buffer(values)
    separate = [pa.array(values[:, k]) for k in range(4)]
    assert stacked_in_place(separate) is None  # buffers of their own
    assert stacked_in_place(columns[::-1]) is None  # not in order
    assert stacked_in_place([columns[0], columns[2], columns[1], columns[3]]) is None
    assert stacked_in_place([*columns[:3], separate[3]]) is None
    assert stacked_in_place([*columns[:3], columns[3].cast(pa.float64())]) is None
    with_null = pa.Array.from_buffers(
        pa.float32(),
        10,
        [pa.py_buffer(np.packbits(np.arange(10) != 3, bitorder="little")), columns[3].buffers()[1]],
    )
    assert stacked_in_place([*columns[:3], with_null]) is None
    shared = pa.py_buffer(np.arange(42, dtype=np.float32))  # 12 rows a column, 10 apart: overlapping
    overlapping = [
        pa.Array.from_buffers(pa.float32(), 12, [None, shared.slice(k * 40, 48)]) for k in range(3)
    ]
    assert stacked_in_place(overlapping) is None
    assert stacked_in_place([pa.array([True, False])] * 2) is None


def test_page_read_class_columns_score_in_place(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    n, c = 5000, 12
    table = pa.table(
        {
            "label": rng.integers(0, c, n),
            **{f"logit_{k}": rng.standard_normal(n).astype(np.float32) for k in range(c)},
            "split": rng.choice(["a", "b"], n),
        }
    )
    nulls = table.column("logit_3").to_numpy().copy()
    path = str(tmp_path / "f.parquet")
    pq.write_table(table, path, row_group_size=1500)
    # a column with nulls in one row group: that batch is copied, the others viewed
    table_nulls = table.set_column(4, "logit_3", pa.array(nulls, mask=np.arange(n) == 4000))
    path_nulls = str(tmp_path / "nulls.parquet")
    pq.write_table(table_nulls, path_nulls, row_group_size=1500)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    job = prepare(path, target="label", logits="logit_*")
    _, batch = next(iter(open_parts(path)[0].batches(job.plan.columns(), 1500)))
    x, _, _ = job.plan.arrays(batch)
    rows = class_rows(x)  # no copy: the classes padded apart in the decoded buffer
    assert isinstance(rows.base, pa.Buffer) and rows.strides[0] == spread_stride(1500 * 4, 4)
    assert next(chunks(LossSpec("multiclass"), x, np.zeros(1500, np.int64))).args[0] is rows
    for file in (path, path_nulls):
        runs = {}
        for reader in ("pages", "pyarrow"):
            monkeypatch.setenv(READER_VARIABLE, reader)
            for rows in (None, 700, 1500):
                s = fx.score(
                    file, target="label", logits="logit_*", group_by="split", batch_rows=rows, nulls="skip"
                )
                runs[reader, rows] = (s.loss, s.accuracy, s.groups["a"].loss, s.groups["b"].loss, s.rows)
        assert len(set(runs.values())) == 1, runs


@pytest.mark.parametrize("itemsize", [2, 4, 8])
@pytest.mark.parametrize("size", [1, 4, 2047, 2048, 4096, 130_000 * 4, 131_072 * 4, 1 << 22])
def test_class_columns_are_an_odd_number_of_slices_apart(size, itemsize):
    piece = 512 * itemsize  # a slice of the column kernels (COLUMN_SLICE_ROWS values)
    stride = spread_stride(size, itemsize)
    assert stride >= size and stride % piece == 0 and (stride // piece) % 2 == 1
    assert stride - size < 2 * piece
