"""Snappy pages of PLAIN values decompressed in place, straight into the batch."""

from __future__ import annotations

import cramjam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_page_reader import assert_same_table, read_all

from fastxent.io.pages import in_place


@pytest.mark.parametrize("split", [0, 1, 7, 64])
@pytest.mark.parametrize("corrupt", [False, True])
def test_values_land_in_the_batch_and_the_rows_before_stay(split, corrupt):
    """The level bytes go to the page buffer, the values to ``batch[at:]``, and the ``split``
    batch bytes before ``at`` (earlier rows) are as they were, whether the page decompresses or
    not."""
    rng = np.random.default_rng(split)
    page = rng.integers(0, 256, split + 400, dtype=np.uint8)
    compressed = np.frombuffer(bytes(cramjam.snappy.compress_raw(page.tobytes())), np.uint8).copy()
    if corrupt:
        compressed = compressed[:-3]
    window = np.concatenate([np.zeros(11, np.uint8), compressed])
    window.flags.writeable = False
    batch = rng.integers(0, 256, 1000, dtype=np.uint8)
    before = batch.copy()
    page_buf = np.zeros(split + 400, np.uint8)
    at = 300
    status = in_place.in_place_values(window, 11, compressed.size, page_buf, split, batch, at, page.size)
    assert np.array_equal(batch[:at], before[:at])
    assert np.array_equal(batch[at + 400 :], before[at + 400 :])
    if corrupt:
        assert status < 0
    else:
        assert status == 0
        assert np.array_equal(page_buf[:split], page[:split])
        assert np.array_equal(batch[at : at + 400], page[split:])


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("page_bytes", [100, 1000, 5000])
@pytest.mark.parametrize("batch_rows", [999, 4096])
def test_snappy_plain_columns_equal_pyarrows(tmp_path, monkeypatch, version, page_bytes, batch_rows):
    """Float columns required, nullable without nulls and with a few, of two widths, in pages
    that fit in the batch or straddle two: the page reader's batches are pyarrow's."""
    rng = np.random.default_rng(page_bytes)
    n = 6000
    values = rng.standard_normal(n)
    mask = np.zeros(n, bool)
    mask[rng.integers(0, n, 5)] = True
    schema = pa.schema(
        [
            pa.field("required", pa.float32(), nullable=False),
            pa.field("clean", pa.float32()),
            pa.field("nulls", pa.float64()),
            pa.field("wide", pa.float64()),
        ]
    )
    table = pa.table(
        [
            pa.array(values.astype(np.float32)),
            pa.array(values[::-1].astype(np.float32)),
            pa.array(values, mask=mask),
            pa.array(values * 3),
        ],
        schema=schema,
    )
    path = str(tmp_path / "plain.parquet")
    pq.write_table(
        table,
        path,
        use_dictionary=False,
        compression="snappy",
        data_page_size=page_bytes,
        data_page_version=version,
        row_group_size=5000,
    )
    columns = ["required", "clean", "nulls", "wide"]
    got, reads = read_all(path, columns, batch_rows, monkeypatch, "pages")
    want, _ = read_all(path, columns, batch_rows, monkeypatch, "pyarrow")
    assert reads == {"pages": 8}
    assert_same_table(got, want)
