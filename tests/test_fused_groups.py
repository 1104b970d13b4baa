"""Issue 12: group-by a string column in the fused pass (fastxent.run.fused, fastxent.unit_groups).

A run grouped by one string column of a file the fused pass scores sums each row group's groups
in the thread that scored it (the codes of the row group's dictionary page number them), and the
run's table adds those sums: every group's fields are the bits of the batch path (pyarrow's
reader, and the page reader with the fused pass off), for any ``batch_rows``, row-group and page
size, on Dask, with many keys, and damaged bytes in the key chunk. Keys the pass does not number
(null keys, PLAIN strings, a dictionary falling back to PLAIN or holding a value twice, other
codecs, integer, float or several key columns) go through the batch path.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fused_scoring import (
    WRITERS,
    ZSTD_READER,
    binary_table,
    by_batches,
    same_outcome_with_and_without_fusing,
    same_score,
    scored_on_dask,
)

import fastxent as fx
from fastxent.groups import GroupTable
from fastxent.run import loop
from fastxent.unit_groups import unit_sums

ROWS = 9000
OPTIONS = dict(target="label", logits="logits", group_by="key")


def keyed_table(rows: int = ROWS, keys: str = "few", seed: int = 0) -> pa.Table:
    """:func:`binary_table` with a ``key``: three strings (``few``), 3,000 (``many``), three
    and nulls (``nulls``), or integers from -5 to 250 (``int64``, ``int32``), in random order."""
    rng = np.random.default_rng(seed)
    if keys.startswith("int"):
        values = pa.array(rng.integers(-5, 251, rows), getattr(pa, keys)())
        return binary_table(rows, seed).append_column("key", values)
    count = 3000 if keys == "many" else 3
    names = np.array([f"k{i:05d}" for i in range(count)], dtype=object)[rng.integers(0, count, rows)]
    if keys == "nulls":
        names[rng.random(rows) < 0.1] = None
    return binary_table(rows, seed).append_column("key", pa.array(names.tolist(), pa.string()))


def without_fusing(path, monkeypatch, **options):
    """The score through the page reader's batches: the fused pass off."""
    with monkeypatch.context() as patched:
        patched.setattr(loop, "fused_file", lambda *args: None)
        return fx.score(str(path), **options)


def fused_row_groups(scored) -> int:
    return scored.readers.get("fused", 0) // 3  # the key, label and logits chunks


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("keys", ["few", "many", "nulls", "int64", "int32"])
def test_grouped_scores_equal_the_batch_path(tmp_path, monkeypatch, writer, keys):
    path = str(tmp_path / "g.parquet")
    table = keyed_table(keys=keys)
    pq.write_table(table, path, **WRITERS[writer])
    scored = fx.score(path, **OPTIONS)
    same_score(scored, by_batches(path, monkeypatch, **OPTIONS))
    same_score(scored, without_fusing(path, monkeypatch, **OPTIONS))
    groups = pq.ParquetFile(path).metadata.num_row_groups
    distinct = {"few": 3, "many": 2854, "nulls": 4, "int64": 256, "int32": 256}[keys]
    assert len(scored.groups) == len(pc.unique(table["key"])) == distinct
    if keys in ("many", "int64") and writer == "dictionary-fallback":  # the keys fall back to PLAIN
        assert fused_row_groups(scored) < groups
    elif writer == "uncompressed-plain" or keys == "nulls":  # PLAIN strings; nulls in the statistics
        assert "fused" not in scored.readers
    elif "zstd" not in writer or ZSTD_READER == "fused":
        assert scored.readers == {"fused": 3 * groups}


def test_each_group_equals_its_rows_scored_alone(tmp_path):
    table = keyed_table(keys="many", seed=4)
    path = str(tmp_path / "a.parquet")
    pq.write_table(table, path, row_group_size=2500)
    scored = fx.score(path, **OPTIONS)
    assert scored.readers["fused"] == 12
    for key, group in list(scored.groups.items())[::97]:
        alone = fx.score(table.filter(pc.equal(table["key"], key)), target="label", logits="logits")
        for field in ("loss", "total", "stderr", "accuracy"):
            want, got = getattr(alone, field), getattr(group, field)
            assert math.isnan(want) and math.isnan(got) or got == pytest.approx(want, rel=1e-12, nan_ok=True)
        assert (group.rows, group.scored, group.nonfinite) == (alone.rows, alone.scored, alone.nonfinite)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch_rows=st.sampled_from([1000, 2048, 4099, 1 << 20]),
    row_group=st.integers(500, 9000),
    page=st.sampled_from([700, 4000, 1 << 20]),
    keys=st.sampled_from(["few", "many", "nulls", "int32"]),
)
def test_any_batch_rows_row_groups_and_pages(tmp_path, monkeypatch, batch_rows, row_group, page, keys):
    path = tmp_path / f"h{batch_rows}-{row_group}-{page}-{keys}.parquet"
    pq.write_table(
        keyed_table(4000, keys, seed=row_group), str(path), row_group_size=row_group, data_page_size=page
    )
    options = dict(OPTIONS, batch_rows=batch_rows)
    scored = fx.score(str(path), **options)
    if keys != "nulls":
        assert fused_row_groups(scored) == pq.ParquetFile(str(path)).metadata.num_row_groups
    same_score(scored, without_fusing(path, monkeypatch, **options))
    same_score(scored, by_batches(str(path), monkeypatch, **options))


def test_dask_tasks_sum_groups_with_the_same_bits(tmp_path, monkeypatch):
    path = str(tmp_path / "d.parquet")
    pq.write_table(keyed_table(keys="many"), path, row_group_size=1500)
    on_dask = scored_on_dask(path, **OPTIONS)
    same_score(on_dask, by_batches(path, monkeypatch, **OPTIONS))
    assert on_dask.readers == {"fused": 18}


@pytest.mark.parametrize("codec", ["snappy", "zstd", "none", "gzip", "brotli", "lz4"])
def test_the_key_chunks_codec(tmp_path, monkeypatch, codec):
    """Keys compressed as the pass decompresses label and logits chunks are fused; others not."""
    path = str(tmp_path / "c.parquet")
    columns = dict.fromkeys(["id", "label", "logits"], "snappy")
    pq.write_table(keyed_table(4000), path, compression=dict(columns, key=codec), row_group_size=1500)
    scored = fx.score(path, **OPTIONS)
    fused = codec in ("snappy", "none") or codec == "zstd" and ZSTD_READER == "fused"
    assert scored.readers == {"fused": 9} if fused else "fused" not in scored.readers
    same_score(scored, by_batches(path, monkeypatch, **OPTIONS))


def test_null_keys_the_statistics_do_not_count_go_through_batches(tmp_path, monkeypatch):
    path = str(tmp_path / "s.parquet")
    pq.write_table(keyed_table(4000, "nulls"), path, write_statistics=False, row_group_size=1000)
    scored = fx.score(path, **OPTIONS)
    assert scored.readers == {"pages": 12}
    same_score(scored, by_batches(path, monkeypatch, **OPTIONS))


def test_a_dictionary_page_holding_a_value_twice_goes_through_batches(tmp_path, monkeypatch):
    """A writer's dictionary with one string twice: its two codes are one group, which the pass,
    numbering groups by code, would split."""
    path = tmp_path / "t.parquet"
    pq.write_table(keyed_table(4000), str(path), compression="none", row_group_size=2000)
    data = path.read_bytes()
    at = data.index(b"k00002")  # the first row group's dictionary page, uncompressed, no CRC
    path.write_bytes(data[:at] + b"k00001" + data[at + 6 :])
    scored = fx.score(str(path), **OPTIONS)
    assert scored.readers == {"fused": 3, "pages": 3}
    same_score(scored, without_fusing(path, monkeypatch, **OPTIONS))
    assert len(scored.groups) == 3 and scored.groups["k00001"].rows > scored.groups["k00000"].rows


@pytest.mark.parametrize("case", ["plain-strings", "wide-integers", "no-statistics", "float-key", "two-keys"])
def test_keys_the_pass_does_not_number_go_through_batches(tmp_path, monkeypatch, case):
    table = keyed_table(4000).append_column("number", pa.array(np.arange(4000) % 7))
    path = str(tmp_path / "n.parquet")
    options, write = dict(OPTIONS), {}
    if case == "plain-strings":
        write = dict(use_dictionary=["label", "logits"])
    elif case == "wide-integers":  # 0 to 3999: more values than a row group's groups summed apart
        options["group_by"] = "id"
    elif case == "no-statistics":  # integers whose range the footer does not give
        options["group_by"] = "number"
        write = dict(write_statistics=["label", "logits"])
    elif case == "float-key":
        table = table.set_column(4, "number", table["number"].cast(pa.float64()))
        options["group_by"] = "number"
    else:
        options["group_by"] = ["key", "number"]
    pq.write_table(table, path, **write)
    scored = fx.score(path, **options)
    assert "fused" not in scored.readers
    same_score(scored, by_batches(path, monkeypatch, **options))


def _damaged(data: bytes, at: int, value: int) -> bytes:
    out = bytearray(data)
    out[at] ^= value
    return bytes(out)


@pytest.fixture(scope="module")
def keyed_file(tmp_path_factory):
    """Two row groups of many keys, with checksums."""
    path = tmp_path_factory.mktemp("keys") / "k.parquet"
    pq.write_table(
        keyed_table(3000, "nulls"),
        str(path),
        row_group_size=1500,
        data_page_size=700,
        write_page_checksum=True,
    )
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(group=st.integers(0, 1), where=st.floats(0, 1, exclude_max=True), value=st.integers(1, 255))
def test_damage_in_the_key_chunk_gives_the_batch_paths_outcome(
    keyed_file, tmp_path, monkeypatch, group, where, value
):
    chunk = pq.ParquetFile(str(keyed_file)).metadata.row_group(group).column(3)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    path = tmp_path / f"x{group}{where}{value}.parquet"
    path.write_bytes(
        _damaged(keyed_file.read_bytes(), start + int(where * chunk.total_compressed_size), value)
    )
    same_outcome_with_and_without_fusing(path, monkeypatch, **OPTIONS)


@pytest.mark.parametrize("rows", [0, 1, 7, 5000, 20000])
def test_a_unit_summed_apart_adds_as_the_fold_adds_it(rows):
    """``GroupTable.add_unit`` of :func:`unit_sums` leaves the table's state as ``fold`` of the
    same whole unit does, widening expansions where blocks of wild magnitudes need it."""
    rng = np.random.default_rng(rows)
    keys = pa.array(rng.choice(["a", "b", "c", None], rows).tolist(), pa.string()).dictionary_encode()
    marks = rng.integers(0, 16, rows).astype(np.int32)
    folded, added = (GroupTable(["k"], denominators_are_one=True) for _ in range(2))
    for unit in range(3):  # three units into the same tables
        # each run of 500 rows of its own magnitude: blocks whose sums need many terms
        loss = (rng.random(rows) + 1) * 10.0 ** np.repeat(rng.integers(-300, 300, rows // 500 + 1), 500)[
            :rows
        ]
        loss[unit : unit + 3] = np.nan
        batch = pa.record_batch({"k": keys})
        folded.fold(folded.ids(batch), loss, np.ones(rows), marks, whole_unit=True)
        folded.close_blocks()
        codes = np.asarray(keys.indices.fill_null(len(keys.dictionary)), np.int32)
        values = keys.dictionary  # and the null rows' entry, where there are any (as the fold has it)
        if keys.null_count:
            values = pa.concat_arrays([values, pa.nulls(1, pa.string())])
        added.add_unit(unit_sums("k", codes, values, loss, marks))
    assert added.keys.keys == folded.keys.keys
    if rows == 20000:
        assert added.terms.shape[2] > 4  # the expansions widened
    for name in ("nterms", "specials", "moments", "counts", "den_rows"):
        np.testing.assert_array_equal(
            getattr(added, name)[: added._size], getattr(folded, name)[: folded._size]
        )
    for g in range(len(added.keys.keys)):
        np.testing.assert_array_equal(added.totals(g), folded.totals(g))


def test_add_unit_only_between_units_and_for_unweighted_rows():
    keys = pa.array(["a", "b"]).dictionary_encode()
    unit = unit_sums("k", np.arange(2, dtype=np.int32), keys.dictionary, np.ones(2), np.zeros(2, np.int32))
    weighted = GroupTable(["k"])
    with pytest.raises(RuntimeError, match="unweighted"):
        weighted.add_unit(unit)
    table = GroupTable(["k"], denominators_are_one=True)
    table.fold(table.ids(pa.record_batch({"k": keys})), np.ones(2), np.ones(2), np.zeros(2, np.int32))
    with pytest.raises(RuntimeError, match="between units"):
        table.add_unit(unit)
