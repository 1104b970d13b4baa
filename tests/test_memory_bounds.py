"""Issue 19 §5: memory bounded for every layout, counted in decoded bytes (not RSS; peak RSS is
measured by ``bench/reliability.py``).

- A zstd- or lz4-compressed Arrow IPC file, file or stream format, is decoded one record batch at
  a time, and only the columns asked for: nothing at open. ``pa.total_allocated_bytes()`` counts
  what Arrow allocated (decompressed buffers); an uncompressed file is a memory map, never counted.
- A Parquet file of 1,000 or 10,000 one-column-per-class columns is decoded in batches bounded in
  bytes over all columns together, not per column.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.io import sources
from fastxent.synthetic import make_table

BATCHES, ROWS, CLASSES = 30, 4000, 16


@pytest.fixture(scope="module")
def table():
    return make_table(BATCHES * ROWS, CLASSES, seed=7)


def _write_ipc(path, table, codec, stream):
    options = ipc.IpcWriteOptions(compression=codec)
    with (ipc.new_stream if stream else ipc.new_file)(str(path), table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=ROWS)


@pytest.mark.parametrize("stream", [False, True], ids=["file", "stream"])
@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_ipc_is_decoded_one_batch_at_a_time(tmp_path, table, codec, stream):
    path = tmp_path / ("f.arrows" if stream else "f.arrow")
    _write_ipc(path, table, codec, stream)
    wanted = ["logits", "label"]
    batch_bytes = table.select(wanted).slice(0, ROWS).nbytes  # one decoded batch of those columns
    before = pa.total_allocated_bytes()
    part = sources.file_part(str(path))
    assert pa.total_allocated_bytes() - before < batch_bytes / 10  # message headers only
    assert part.rows == BATCHES * ROWS  # counted from the headers, no body decoded
    assert part.unit_rows == (None if stream else [ROWS] * BATCHES)
    peak, rows = 0, 0
    for _, batch in part.batches(wanted, 1 << 20):
        peak = max(peak, pa.total_allocated_bytes() - before)
        rows += batch.num_rows
    assert rows == BATCHES * ROWS
    # the batch in hand and the one being let go, of the two columns: never the whole file (at
    # least about a batch: Arrow memory let go meanwhile, elsewhere, moves the count by a few
    # hundred bytes: 287,616 against 288,000 once)
    assert 0.95 * batch_bytes <= peak <= 2.5 * batch_bytes < table.nbytes / 10


def test_compressed_ipc_scores_as_the_plain_file(tmp_path, table):
    _write_ipc(tmp_path / "plain.arrow", table, None, False)
    _write_ipc(tmp_path / "zstd.arrow", table, "zstd", False)
    _write_ipc(tmp_path / "zstd.arrows", table, "zstd", True)
    plain, packed, streamed = (
        fx.score(str(tmp_path / name), target="label", logits="logits", group_by="split")
        for name in ("plain.arrow", "zstd.arrow", "zstd.arrows")
    )
    assert packed.total == plain.total and packed.rows == plain.rows == BATCHES * ROWS  # same units
    assert streamed.total == pytest.approx(plain.total, rel=1e-12)  # a stream is one unit
    assert {k: g.total for k, g in packed.groups.items()} == {k: g.total for k, g in plain.groups.items()}
    # kept columns outlive their batch's pages, handed back to the kernel: read again, not lost
    out = tmp_path / "losses.parquet"
    fx.score(str(tmp_path / "plain.arrow"), target="label", logits="logits", losses_to=str(out), keep="split")
    assert pq.read_table(out)["split"].to_pylist() == table["split"].to_pylist()


@pytest.mark.parametrize("classes, rows", [(1000, 2000), (10_000, 120)])
def test_wide_parquet_is_decoded_in_batches_bounded_in_total(tmp_path, monkeypatch, classes, rows):
    rng = np.random.default_rng(classes)
    x = rng.standard_normal((rows, classes), dtype=np.float32)
    y = rng.integers(0, classes, rows)
    names = [f"logit_{c}" for c in range(classes)]
    path = str(tmp_path / "wide.parquet")
    pq.write_table(pa.table({"label": y, **{n: x[:, c] for c, n in enumerate(names)}}), path)
    unbounded = fx.score(path, target="label", logits="logit_*")  # the whole file in one batch here
    limit = 1 << 20
    monkeypatch.setattr(sources, "PARQUET_DECODE_BYTES", limit)  # pyarrow's batches...
    monkeypatch.setattr(sources, "PAGES_DECODE_BYTES", limit)  # ... and the page reader's
    assert sources.PARQUET_DECODE_COLUMN_BYTES * classes > 100 * limit  # the per-column rule's size
    part = sources.file_part(path)
    sizes = [batch.nbytes for _, batch in part.read(["label", *names], 1 << 16, None)]
    assert len(sizes) >= 4 and max(sizes) <= limit
    bounded = fx.score(path, target="label", logits="logit_*")
    assert bounded.total == unbounded.total and bounded.rows == rows  # bits whatever the batches
    # float32 rows: class-by-class (file) and row kernels (array) agree to the float32 promise
    assert bounded.loss == pytest.approx(float(fx.cross_entropy(x, y)), rel=1e-6)
