"""Issue 16: binary logits scored straight from their Parquet pages (fastxent.run.fused).

Every file the fused pass scores gives the bits of the batch path (pyarrow's reader) in every
field of the Score, for any ``batch_rows``, on Dask and from a remote store; ``Score.readers``
says which path read each column chunk. What it does not score (nulls, other codecs and
encodings, labels other than 0 or 1, damaged bytes, integer or several group keys, per-row
outputs) goes through the batch path, which gives what it always gave, errors included: damaged
bytes at any offset never give a number the batch path would not. Groups by a string column:
tests/test_fused_groups.py.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.errors import InputValueError
from fastxent.io.pages import READER_VARIABLE, zstd
from fastxent.run import fused, loop
from fastxent.state import Accumulator

ROWS = 9000
SKIP = {"elapsed_s", "rows_per_s", "bytes_per_s", "readers"}


def binary_table(rows: int = ROWS, seed: int = 0, label=np.int64, logits=np.float32) -> pa.Table:
    """Logits with NaN, infinities and -0.0 among them; labels 0 and 1 of the given type."""
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(rows)).astype(logits)
    x[::997] = np.nan
    x[::991] = np.inf
    x[::983] = -np.inf
    x[::977] = -0.0
    y = rng.random(rows) < 0.4
    labels = pa.array(y) if label is bool else pa.array(y.astype(label))
    return pa.table({"id": np.arange(rows), "label": labels, "logits": x})


def _same(a, b) -> bool:
    """Equal values, NaN equal to NaN, in nested records (a Score's groups) too."""
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        return bool(np.isnan(b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def same_score(a, b) -> None:
    da, db = a.to_dict(), b.to_dict()
    for key in da:
        if key not in SKIP:
            assert _same(da[key], db[key]), (key, da[key], db[key])


def by_batches(path, monkeypatch, **options):
    """The score through the batch path (pyarrow's reader)."""
    monkeypatch.setenv(READER_VARIABLE, "pyarrow")
    try:
        return fx.score(path, **options)
    finally:
        monkeypatch.delenv(READER_VARIABLE)


WRITERS = {
    "defaults": {},
    "uncompressed-plain": dict(compression="none", use_dictionary=False),
    "v2-checksums-small-pages": dict(data_page_version="2.0", write_page_checksum=True, data_page_size=3000),
    "dictionary-fallback": dict(dictionary_pagesize_limit=2000, data_page_size=5000),
    "odd-row-groups": dict(row_group_size=2049, data_page_size=1500, write_page_checksum=True),
    "v2-uncompressed-checksums": dict(data_page_version="2.0", compression="none", write_page_checksum=True),
    "zstd": dict(compression="zstd", data_page_size=4000),
    "v2-zstd-checksums": dict(compression="zstd", data_page_version="2.0", write_page_checksum=True),
}
#: What reads a zstd file's chunks: the fused pass where the system has a libzstd.
ZSTD_READER = "fused" if zstd.AVAILABLE else "pages"


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize(
    "label, logits",
    [
        (np.int64, np.float32),
        (np.int32, np.float64),
        (np.int8, np.float32),
        (bool, np.float32),
        (np.uint8, np.float64),
    ],
    ids=["int64-f32", "int32-f64", "int8-f32", "bool-f32", "uint8-f64"],
)
def test_fused_scores_equal_the_batch_path(tmp_path, monkeypatch, writer, label, logits):
    path = str(tmp_path / "b.parquet")
    pq.write_table(binary_table(label=label, logits=logits), path, **WRITERS[writer])
    options = dict(target="label", logits="logits")
    scored = fx.score(path, **options)
    same_score(scored, by_batches(path, monkeypatch, **options))
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert scored.readers == {ZSTD_READER if "zstd" in writer else "fused": 2 * groups}
    assert scored.nonfinite > 0 and scored.rows == ROWS  # NaN logits, and infinities against their label


@pytest.mark.parametrize("nullable", [True, False])
def test_required_and_nullable_columns(tmp_path, monkeypatch, nullable):
    table = binary_table(5000, seed=1)
    schema = pa.schema([pa.field(f.name, f.type, nullable=nullable) for f in table.schema])
    path = str(tmp_path / "r.parquet")
    pq.write_table(table.cast(schema), path, data_page_size=2500)
    assert pq.ParquetFile(path).schema.column(2).max_definition_level == int(nullable)
    options = dict(target="label", logits="logits", pos_weight=2.5)
    scored = fx.score(path, **options)
    same_score(scored, by_batches(path, monkeypatch, **options))
    assert scored.readers == {"fused": 2}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_rows=st.integers(1, 12000), row_group=st.integers(100, 9000), page=st.integers(200, 40000))
def test_any_batch_rows_row_groups_and_pages(tmp_path, monkeypatch, batch_rows, row_group, page):
    path = str(tmp_path / f"h{batch_rows}-{row_group}-{page}.parquet")
    pq.write_table(binary_table(seed=row_group), path, row_group_size=row_group, data_page_size=page)
    options = dict(target="label", logits="logits", batch_rows=batch_rows)
    scored = fx.score(path, **options)
    same_score(scored, by_batches(path, monkeypatch, **options))
    assert set(scored.readers) == {"fused"}


def test_windows_smaller_than_a_page(tmp_path, monkeypatch):
    """40-byte windows: every header and page body asked for by the compiled code, apart."""
    path = str(tmp_path / "w.parquet")
    pq.write_table(binary_table(), path, row_group_size=4000, write_page_checksum=True, data_page_size=2000)
    monkeypatch.setattr(fused, "WINDOW_BYTES", 40)
    options = dict(target="label", logits="logits")
    scored = fx.score(path, **options)
    same_score(scored, by_batches(path, monkeypatch, **options))
    assert scored.readers == {"fused": 6}


@pytest.mark.parametrize("writer", ["polars", "duckdb"])
def test_other_writers_default_settings(tmp_path, monkeypatch, writer):
    """Polars writes zstd by default, DuckDB snappy: both fused (zstd where libzstd is)."""
    table = binary_table(7000, seed=2)
    path = str(tmp_path / f"{writer}.parquet")
    if writer == "polars":
        pl = pytest.importorskip("polars")
        pl.from_arrow(table).write_parquet(path)
        expected = ZSTD_READER
    else:
        duckdb = pytest.importorskip("duckdb")
        connection = duckdb.connect()
        connection.register("t", table)
        connection.execute(f"COPY t TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 3000)")
        expected = "fused"
    options = dict(target="label", logits="logits")
    scored = fx.score(path, **options)
    same_score(scored, by_batches(path, monkeypatch, **options))
    assert set(scored.readers) == {expected}
    if writer == "polars":  # and with snappy, in v2 pages
        pl.from_arrow(table).write_parquet(path, compression="snappy", data_page_size=5000)
        scored = fx.score(path, **options)
        same_score(scored, by_batches(path, monkeypatch, **options))
        assert set(scored.readers) == {"fused"}


def test_nulls_go_to_the_batch_path(tmp_path, monkeypatch):
    table = binary_table(6000)
    x = table.column("logits").to_numpy().copy()
    mask = np.zeros(len(x), bool)
    mask[[5, 4500]] = True
    table = table.set_column(2, "logits", pa.array(x, mask=mask))
    for statistics in (True, False):  # without statistics the pages show the nulls
        path = str(tmp_path / f"n{statistics}.parquet")
        pq.write_table(table, path, row_group_size=2000, write_statistics=statistics)
        options = dict(target="label", logits="logits")
        scored = fx.score(path, **options)
        same_score(scored, by_batches(path, monkeypatch, **options))
        assert scored.nulls == 2
        # statistics: the footer says so, no row group is fused; without: the two row groups
        # holding a null are read again through the batch path, the third is fused
        expected = {"pages": 6} if statistics else {"fused": 2, "pages": 4}
        assert scored.readers == expected
        with pytest.raises(InputValueError, match="row 5 of"):
            fx.score(path, nulls="error", **options)


def test_labels_other_than_zero_and_one_go_to_the_batch_path(tmp_path, monkeypatch):
    """torch's binary_cross_entropy_with_logits takes any target: a row group holding a label
    of 2 (or -1) is scored by the batch path, the others are fused."""
    table = binary_table(6000)
    y = table.column("label").to_numpy().copy()
    y[3210], y[3300] = 2, -1
    table = table.set_column(1, "label", pa.array(y))
    for dictionary in (True, False):
        path = str(tmp_path / f"l{dictionary}.parquet")
        pq.write_table(table, path, use_dictionary=dictionary, row_group_size=2000)
        options = dict(target="label", logits="logits")
        scored = fx.score(path, **options)
        same_score(scored, by_batches(path, monkeypatch, **options))
        assert scored.readers == {"fused": 4, "pages": 2}


@pytest.mark.parametrize(
    "case",
    [
        "gzip",
        "byte-stream-split",
        "group-by-integers",
        "group-by-two-columns",
        "losses-to",
        "probs",
        "float-labels",
        "pyarrow-reader",
    ],
)
def test_what_is_not_fused_reads_as_before(tmp_path, monkeypatch, case):
    table = binary_table(5000).append_column("split", pa.array(["a", "b"] * 2500))
    path = str(tmp_path / "o.parquet")
    options = dict(target="label", logits="logits")
    write = {}
    if case == "gzip":
        write = dict(compression="gzip")
    elif case == "byte-stream-split":
        write = dict(use_dictionary=["label"], use_byte_stream_split=["logits"])
    elif case == "group-by-integers":  # string keys are fused (tests/test_fused_groups.py)
        options["group_by"] = "id"
    elif case == "group-by-two-columns":
        options["group_by"] = ["split", "id"]
    elif case == "losses-to":
        options["losses_to"] = str(tmp_path / "losses.parquet")
    elif case == "probs":
        p = 1 / (1 + np.exp(-np.clip(np.nan_to_num(table.column("logits").to_numpy()), -30, 30)))
        table = table.set_column(2, "logits", pa.array(p.astype(np.float32)))
        options = dict(target="label", probs="logits")
    elif case == "float-labels":
        table = table.set_column(1, "label", table.column("label").cast(pa.float32()))
    elif case == "pyarrow-reader":
        monkeypatch.setenv(READER_VARIABLE, "pyarrow")
    pq.write_table(table, path, **write)
    scored = fx.score(path, **options)
    assert "fused" not in scored.readers
    if case not in ("pyarrow-reader", "losses-to"):
        same_score(scored, by_batches(path, monkeypatch, **options))


def test_an_empty_file_and_an_empty_row_group(tmp_path, monkeypatch):
    path = str(tmp_path / "e.parquet")
    pq.write_table(binary_table(0), path)
    with pytest.raises(InputValueError, match="has no rows"):
        fx.score(path, target="label", logits="logits")
    table = binary_table(3000)
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.write_table(table.slice(0, 1000))
        writer.write_table(table.slice(0, 0))
        writer.write_table(table.slice(1000))
    assert [pq.ParquetFile(path).metadata.row_group(i).num_rows for i in range(3)] == [1000, 0, 2000]
    options = dict(target="label", logits="logits")
    scored = fx.score(path, **options)
    same_score(scored, by_batches(path, monkeypatch, **options))
    assert scored.readers == {"fused": 6}


def test_remote_store_reads_by_range(tmp_path, monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    path = str(tmp_path / "s.parquet")
    pq.write_table(binary_table(), path, row_group_size=3000, write_page_checksum=True)
    memory = fsspec.filesystem("memory")
    with open(path, "rb") as f:
        memory.pipe("/fused/remote.parquet", f.read())
    monkeypatch.setattr(fused, "REMOTE_WINDOW_BYTES", 1000)  # many range reads a chunk
    try:
        remote = fx.score("memory://fused/remote.parquet", target="label", logits="logits")
    finally:
        memory.rm("/fused", recursive=True)
    same_score(remote, fx.score(path, target="label", logits="logits"))
    assert remote.readers == {"fused": 6}


def test_dask_tasks_fuse_with_the_same_bits(tmp_path, monkeypatch):
    path = str(tmp_path / "d.parquet")
    pq.write_table(binary_table(), path, row_group_size=1500)
    options = dict(target="label", logits="logits")
    on_dask = scored_on_dask(path, **options)
    same_score(on_dask, by_batches(path, monkeypatch, **options))
    assert on_dask.readers == {"fused": 12}


def scored_on_dask(path: str, **options):
    """``fastxent.dask.score`` of ``path`` on a local cluster of one worker of two threads."""
    distributed = pytest.importorskip("distributed")
    fxdask = pytest.importorskip("fastxent.dask")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        return fxdask.score(path, client=client, **options)


def _damaged(data: bytes, start: int, offset: int, value: int) -> bytes:
    out = bytearray(data)
    out[start + offset] ^= value
    return bytes(out)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """Two row groups; checksums on one copy, off the other."""
    root = tmp_path_factory.mktemp("damage")
    paths = {}
    for checksums in (True, False):
        path = root / f"c{checksums}.parquet"
        pq.write_table(
            binary_table(3000),
            str(path),
            row_group_size=1500,
            data_page_size=2000,
            write_page_checksum=checksums,
        )
        paths[checksums] = path
    return paths


def same_outcome_with_and_without_fusing(path, monkeypatch, **options):
    """Score ``path`` (``options``; default: labels and logits) with the fused pass, then with
    it off: the same score (returned), or the same error (``None`` returned)."""
    options = options or dict(target="label", logits="logits")
    outcomes = []
    for fuse in (True, False):
        if not fuse:
            monkeypatch.setattr(loop, "fused_file", lambda *args: None)
        try:
            outcomes.append(fx.score(str(path), **options))
        except (InputValueError, ValueError, OSError) as err:
            outcomes.append((type(err), str(err)))
    monkeypatch.undo()
    if isinstance(outcomes[0], tuple) or isinstance(outcomes[1], tuple):
        assert outcomes[0] == outcomes[1]
        return None
    same_score(*outcomes)
    return outcomes[0]


def _chunks(path) -> list[tuple[int, int]]:
    """``(start, size)`` of the label and logits chunks of every row group."""
    meta = pq.ParquetFile(path).metadata
    spans = []
    for g in range(meta.num_row_groups):
        for c in (1, 2):
            chunk = meta.row_group(g).column(c)
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            spans.append((start, chunk.total_compressed_size))
    return spans


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    checksums=st.booleans(),
    chunk=st.integers(0, 3),
    where=st.floats(0, 1, exclude_max=True),
    value=st.integers(1, 255),
)
def test_damage_at_any_offset_never_gives_another_number(
    small_file, tmp_path, monkeypatch, checksums, chunk, where, value
):
    """A byte of a label or logits chunk changed: the score with the fused pass is the batch
    path's score, or both raise the same error."""
    source = small_file[checksums]
    start, size = _chunks(source)[chunk]
    path = tmp_path / f"x{checksums}{chunk}{where}{value}.parquet"
    path.write_bytes(_damaged(source.read_bytes(), start, int(where * size), value))
    same_outcome_with_and_without_fusing(path, monkeypatch)


@pytest.mark.parametrize("entries", [(0, 0), (1, 1), (1, 0)])
def test_a_label_dictionary_other_than_zero_then_one(tmp_path, monkeypatch, entries):
    """A label dictionary page of [0, 0], [1, 1] or [1, 0] (written so, or damaged: hypothesis
    found [0, 0] read as [0, 1]): each code is its entry's label, as the batch path reads it."""
    path = tmp_path / "d.parquet"
    pq.write_table(binary_table(3000), str(path), compression="none", row_group_size=1500)
    chunk = pq.ParquetFile(str(path)).metadata.row_group(0).column(1)
    data = path.read_bytes()
    zero_one = np.array([0, 1], np.int64).tobytes()
    at = data.index(zero_one, chunk.dictionary_page_offset)  # the dictionary page's two values
    path.write_bytes(data[:at] + np.array(entries, np.int64).tobytes() + data[at + 16 :])
    scored = same_outcome_with_and_without_fusing(path, monkeypatch)
    assert scored.readers == {"fused": 4}


def test_add_unit_only_between_units():
    acc = Accumulator("binary")
    acc.update(np.array([0.5, -1.0], np.float32), np.array([1, 0]), offset=0)
    with pytest.raises(RuntimeError, match="between units"):
        acc.add_unit(np.zeros((1, 5)), np.zeros(6, np.int64), 1, 8)


def test_debug_and_info_say_which_row_groups_are_fused(tmp_path, capsys):
    from fastxent.cli import main

    table = binary_table(4000)
    y = table.column("label").to_numpy().copy()
    y[3000] = 3
    path = str(tmp_path / "d.parquet")
    pq.write_table(table.set_column(1, "label", pa.array(y)), path, row_group_size=2000)
    assert main(["score", path, "--target", "label", "--logits", "logits", "--debug"]) == 0
    said = capsys.readouterr().err
    assert f"'{path}' row group 0: scored from its pages (fused)" in said
    assert f"'{path}' row group 1: read through batches (its pages hold what the fused pass" in said
    assert main(["info"]) == 0
    codecs = "snappy, zstd or" if zstd.AVAILABLE else "snappy, or"
    assert f"binary logits in {codecs} uncompressed pages scored straight from them (fused" in (
        capsys.readouterr().out
    )


def test_zstd_frames_decompressed_by_libzstd():
    cramjam = pytest.importorskip("cramjam")
    if not zstd.AVAILABLE:
        pytest.skip("no libzstd on this system: its zstd pages are read through batches")
    rng = np.random.default_rng(5)
    data = np.concatenate([rng.integers(0, 4, 50_000), rng.standard_normal(20_000).view(np.int64)])
    raw = data.astype(np.int64).view(np.uint8)
    frame = np.frombuffer(bytes(cramjam.zstd.compress(raw.tobytes())), np.uint8)
    source = np.concatenate([np.zeros(7, np.uint8), frame, np.zeros(3, np.uint8)])
    out = np.zeros(raw.size + 10, np.uint8)
    assert zstd.decompress(source, 7, frame.size, out, raw.size) == raw.size
    assert np.array_equal(out[: raw.size], raw)
    assert zstd.decompress(source, 7, frame.size, out, raw.size - 1) == -1  # does not fit
    damaged = source.copy()
    damaged[7 + frame.size // 2 : 7 + frame.size // 2 + 8] ^= 0x5A
    assert zstd.decompress(damaged, 7, frame.size - 1, out, raw.size) == -1  # cut short


def test_without_libzstd_zstd_files_go_through_batches(tmp_path):
    """A process where no libzstd loads: the symbol fails every call, nothing is fused from zstd
    pages, and the scores are the batch path's."""
    import subprocess
    import sys

    path = str(tmp_path / "z.parquet")
    pq.write_table(binary_table(4000), path, compression="zstd", row_group_size=1500)
    script = f"""
import ctypes, os
real = ctypes.CDLL
def refuse(name, *args, **kwargs):
    if name and "zstd" in str(name):
        raise OSError("no libzstd here")
    return real(name, *args, **kwargs)
ctypes.CDLL = refuse
import numpy as np
import fastxent as fx
from fastxent.io.pages import zstd
assert not zstd.AVAILABLE
assert zstd.decompress(np.zeros(16, np.uint8), 0, 16, np.zeros(64, np.uint8), 64) == -1
scored = fx.score({path!r}, target="label", logits="logits")
os.environ["{READER_VARIABLE}"] = "pyarrow"
batches = fx.score({path!r}, target="label", logits="logits")
fields = lambda s: repr((s.loss, s.stderr, s.total, s.accuracy, s.nonfinite, s.rows))
print(scored.readers, fields(scored) == fields(batches), scored.nonfinite > 0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'pages': 6} True True"


@pytest.mark.parametrize("extra", [-1, 1, 700])
def test_a_label_chunk_must_give_every_row_its_label(tmp_path, extra):
    """Pages giving fewer or more labels than the row group's rows (a damaged count) are left
    to the batch path, never scored against labels the pages did not give."""
    from fastxent.io.pages import scoring
    from fastxent.io.pages.thrift import SLOTS

    path = tmp_path / "c.parquet"
    pq.write_table(binary_table(3000), str(path), data_page_size=1000)
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(1)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    window = np.frombuffer(path.read_bytes(), np.uint8)[start : start + chunk.total_compressed_size]
    state = np.zeros(scoring.STATE_SLOTS, np.int64)
    page = np.empty(1 << 16, np.uint8)
    page_ro = page.view()
    page_ro.flags.writeable = False

    def take(rows):
        state[:] = 0
        state[scoring.POS], state[scoring.END], state[scoring.ENTRIES] = start, start + window.size, -1
        labels = np.full(rows, 7, np.int8)
        status = scoring.take_labels(
            window, start, state, np.zeros(SLOTS, np.int64), page, page_ro, scoring.SNAPPY, True,
            scoring.INT64, np.zeros(2, np.int8), labels,
        )  # fmt: skip
        return status, labels

    status, labels = take(3000)
    assert status == scoring.DONE and set(np.unique(labels)) <= {0, 1}
    assert take(3000 + extra)[0] == scoring.ELSEWHERE


def test_a_v2_page_whose_header_leaves_a_null_out(tmp_path, monkeypatch):
    """A v2 page's header says no null while its levels hold one (its null count patched to 0,
    no checksum): the fused pass reads the levels and leaves the page to the batch path."""
    from fastxent.io.pages import thrift

    table = binary_table(3000)
    x = np.round(table.column("logits").to_numpy(), 1)  # few distinct values: dictionary codes
    mask = np.zeros(3000, bool)
    mask[1234] = True
    table = table.set_column(2, "logits", pa.array(x, mask=mask))
    path = tmp_path / "v2.parquet"
    pq.write_table(table, str(path), data_page_version="2.0", write_statistics=False, data_page_size=1 << 20)
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(2)
    header = np.zeros(thrift.SLOTS, np.int64)
    raw = np.frombuffer(bytes(data), np.uint8)
    at = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    end, patched = at + chunk.total_compressed_size, 0
    while at < end:
        length = thrift.parse_page_header(raw, at, raw.size, header)
        if header[thrift.TYPE] == thrift.DATA_PAGE_V2 and header[thrift.NUM_NULLS] == 1:
            count = int(header[thrift.NUM_VALUES])
            zigzag, varint = count << 1, bytearray()
            while zigzag >= 0x80:
                varint.append(zigzag & 0x7F | 0x80)
                zigzag >>= 7
            varint.append(zigzag)
            field = bytes([0x15]) + bytes(varint) + bytes([0x15, 0x02])  # num_values, num_nulls = 1
            where = bytes(data[at : at + length]).find(field)
            assert where >= 0
            data[at + where + len(field) - 1] = 0x00  # num_nulls = 0
            patched += 1
        at += length + int(header[thrift.COMPRESSED])
    assert patched == 1
    path.write_bytes(bytes(data))
    scored = same_outcome_with_and_without_fusing(path, monkeypatch)
    assert scored is None or "fused" not in scored.readers
