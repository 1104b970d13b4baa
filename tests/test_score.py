"""fx.score on files made by make-data: every format and column form, against the in-memory API."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.inputs import as_array
from fastxent.synthetic import make_table, write_table


def _logit_matrix(table: pa.Table) -> np.ndarray:
    if "logits" in table.column_names:
        return as_array("logits", table["logits"].combine_chunks())
    names = [n for n in table.column_names if n.startswith("logit_")]
    return np.column_stack([table[n].to_numpy() for n in names])


@pytest.fixture(scope="module")
def multiclass_table():
    return make_table(6000, 7, seed=3)


@pytest.mark.parametrize(
    "fmt,layout,logits",
    [
        ("parquet", "list", "logits"),
        ("parquet", "columns", "logit_*"),
        ("ipc", "list", "logits"),
        ("ipc", "columns", ["logit_0", "logit_1", "logit_2", "logit_3", "logit_4", "logit_5", "logit_6"]),
        ("csv", "columns", "logit_*"),
    ],
)
def test_multiclass_file_equals_in_memory_api(tmp_path, fmt, layout, logits):
    table = make_table(6000, 7, seed=3, layout=layout)
    path = str(tmp_path / f"preds.{ {'ipc': 'arrow'}.get(fmt, fmt) }")
    write_table(table, path, fmt, row_group_rows=1000)
    result = fx.score(path, target="label", logits=logits)
    x, y = _logit_matrix(table), table["label"].to_numpy()
    want = fx.cross_entropy(x, y)
    assert result.kind == "multiclass" and result.rows == 6000 and result.scored == 6000
    if fmt == "csv":  # CSV stores decimal text: the floats read back are not the same bits
        assert result.loss == pytest.approx(want, rel=1e-6)
    else:
        assert result.loss == pytest.approx(want, rel=1e-14)  # row groups are summed on their own
    assert result.accuracy == pytest.approx(np.mean(np.argmax(x, axis=1) == y))
    assert result.perplexity == pytest.approx(np.exp(want))


def test_binary_and_multilabel_and_probs(tmp_path):
    binary = make_table(5000, 1, kind="binary", seed=4)
    write_table(binary, str(tmp_path / "b.parquet"), "parquet", 700)
    got = fx.score(str(tmp_path / "b.parquet"), target="label", logits="logits")
    x, y = binary["logits"].to_numpy(), binary["label"].to_numpy().astype(np.float32)
    assert got.kind == "binary"
    assert got.loss == pytest.approx(fx.binary_cross_entropy_with_logits(x, y), rel=1e-14)
    assert got.accuracy == pytest.approx(np.mean((x > 0) == (y > 0.5)))

    multi = make_table(3000, 5, kind="multilabel", seed=5)
    write_table(multi, str(tmp_path / "m.parquet"), "parquet", 1000)
    got = fx.score(str(tmp_path / "m.parquet"), target="labels", logits="logits", kind="multilabel")
    xm = _logit_matrix(multi)
    ym = as_array("labels", multi["labels"].combine_chunks()).astype(np.float32)
    assert got.loss == pytest.approx(fx.binary_cross_entropy_with_logits(xm, ym), rel=1e-14)
    with pytest.raises(fx.InputValueError, match="kind='multilabel'.*kind='soft'"):
        fx.score(str(tmp_path / "m.parquet"), target="labels", logits="logits")

    # probabilities follow log_loss
    probs = np.exp(_logit_matrix(make_table(2000, 4, seed=6)).astype(np.float64))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.random.default_rng(0).integers(0, 4, 2000)
    table = pa.table(
        {"p": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 4), "y": pa.array(labels)}
    )
    assert fx.score(table, target="y", probs="p").loss == pytest.approx(
        fx.log_loss(labels, probs, labels=[0, 1, 2, 3]), rel=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_int64_labels_score_exactly_as_their_float_values(dtype):
    """Binary and multilabel int64 labels go to the kernels as read; the bits must be those of
    the same labels as floats, and the loss the NumPy formula's."""
    rng = np.random.default_rng(11)
    x = (rng.normal(size=(3000, 3)) * 4).astype(dtype)
    y = rng.integers(0, 2, size=(3000, 3))
    labels = pa.FixedSizeListArray.from_arrays(pa.array(y.reshape(-1)), 3)
    float_labels = pa.FixedSizeListArray.from_arrays(pa.array(y.reshape(-1).astype(dtype)), 3)
    matrix = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 3)
    cases = [
        ("binary", pa.array(x[:, 0]), pa.array(y[:, 0]), pa.array(y[:, 0].astype(dtype))),
        ("multilabel", matrix, labels, float_labels),
    ]
    for kind, logits, ints, floats in cases:
        got = fx.score(pa.table({"x": logits, "y": ints}), target="y", logits="x", kind=kind, batch_rows=700)
        same = fx.score(pa.table({"x": logits, "y": floats}), target="y", logits="x", kind=kind)
        assert (got.total, got.weight, got.accuracy) == (same.total, same.weight, same.accuracy)
        xs, ys = (x[:, 0], y[:, 0]) if kind == "binary" else (x, y)
        xd = xs.astype(np.float64)
        expected = np.mean(np.maximum(xd, 0) - xd * ys + np.log1p(np.exp(-np.abs(xd))))
        assert got.loss == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-12)
    proba = 1 / (1 + np.exp(-x[:, 0].astype(np.float64)))
    assert fx.binary_cross_entropy(proba, y[:, 0]) == fx.binary_cross_entropy(proba, y[:, 0].astype(float))


@settings(max_examples=15, deadline=None)
@given(batch_rows=st.integers(1, 5000))
def test_batch_rows_do_not_change_the_bits(batch_rows):
    table = make_table(4500, 6, seed=7, nulls=0.05)
    base = fx.score(table, target="label", logits="logits", group_by="split")
    other = fx.score(table, target="label", logits="logits", group_by="split", batch_rows=batch_rows)
    assert (other.total, other.weight, other.nulls, other.accuracy) == (
        base.total,
        base.weight,
        base.nulls,
        base.accuracy,
    )
    assert {k: g.total for k, g in other.groups.items()} == {k: g.total for k, g in base.groups.items()}


def test_group_by_matches_numpy_groups(multiclass_table):
    result = fx.score(multiclass_table, target="label", logits="logits", group_by=["split"])
    x, y = _logit_matrix(multiclass_table), multiclass_table["label"].to_numpy()
    split = multiclass_table["split"].to_numpy(zero_copy_only=False)
    assert sorted(result.groups) == sorted(set(split))
    for key, group in result.groups.items():
        rows = split == key
        assert group.rows == rows.sum()
        assert group.loss == pytest.approx(fx.cross_entropy(x[rows], y[rows]), rel=1e-12)


def test_two_group_columns_and_hive_partitions(tmp_path):
    for model in ("a", "b"):
        table = make_table(2500, 3, seed=ord(model))
        (tmp_path / f"model={model}").mkdir()
        write_table(table, str(tmp_path / f"model={model}" / "part-0.parquet"), "parquet", 1000)
    result = fx.score(str(tmp_path), target="label", logits="logits", group_by=["model", "split"])
    assert len(result.groups) == 6 and result.rows == 5000
    table_a = pq.read_table(tmp_path / "model=a" / "part-0.parquet")
    rows = table_a["split"].to_numpy(zero_copy_only=False) == "test"
    want = fx.cross_entropy(_logit_matrix(table_a)[rows], table_a["label"].to_numpy()[rows])
    assert result.groups[("a", "test")].loss == pytest.approx(want, rel=1e-12)


def test_null_rows_are_skipped_and_counted_without_shifting(tmp_path):
    table = make_table(3000, 4, seed=8, nulls=0.1)
    path = str(tmp_path / "n.parquet")
    write_table(table, path, "parquet", 512)
    result = fx.score(path, target="label", logits="logits")
    valid = table["label"].is_valid().to_numpy(zero_copy_only=False)
    x, y = _logit_matrix(table)[valid], table["label"].drop_null().to_numpy()
    assert result.nulls == (~valid).sum() > 0 and result.rows == 3000 and result.scored == valid.sum()
    assert result.loss == pytest.approx(fx.cross_entropy(x, y), rel=1e-14)
    first = int(np.flatnonzero(~valid)[0])
    with pytest.raises(fx.InputValueError, match=f"row {first} of '.*n.parquet' has a null"):
        fx.score(path, target="label", logits="logits", nulls="error")


def test_null_inside_a_list_row_skips_that_row():
    x = pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0, None, 0.5, 3.0, 1.0], pa.float32()), 2)
    table = pa.table({"x": x, "y": pa.array([1, 0, 0])})
    result = fx.score(table, target="y", logits="x")
    assert result.nulls == 1
    assert result.loss == fx.cross_entropy(np.array([[1.0, 2.0], [3.0, 1.0]], np.float32), np.array([1, 0]))


def test_per_row_losses_file(tmp_path):
    table = make_table(3000, 5, seed=9, nulls=0.05)
    src, out = str(tmp_path / "s.parquet"), str(tmp_path / "losses.parquet")
    write_table(table, src, "parquet", 1000)
    result = fx.score(src, target="label", logits="logits", losses_to=out, keep=["id", "split"])
    written = pq.read_table(out)
    assert written.column_names == ["row", "id", "split", "loss", "predicted"]
    assert written.num_rows == result.scored
    assert (written["row"].to_numpy() == written["id"].to_numpy()).all()  # source row numbers
    valid = table["label"].is_valid().to_numpy(zero_copy_only=False)
    x, y = _logit_matrix(table)[valid], table["label"].drop_null().to_numpy()
    np.testing.assert_array_equal(written["loss"].to_numpy(), fx.cross_entropy(x, y, reduction="none"))
    np.testing.assert_array_equal(written["predicted"].to_numpy(), np.argmax(x, axis=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.parquet", "s.parquet"]


def test_interrupted_run_leaves_no_output(tmp_path):
    table = make_table(6000, 3, seed=10)
    batches = table.to_batches(max_chunksize=1000)

    def interrupted():
        yield from batches[:3]
        raise KeyboardInterrupt

    reader = pa.RecordBatchReader.from_batches(table.schema, interrupted())
    out = tmp_path / "losses.parquet"
    with pytest.raises(KeyboardInterrupt):
        fx.score(reader, target="label", logits="logits", losses_to=str(out), batch_rows=1000)
    assert list(tmp_path.iterdir()) == []


def test_in_memory_sources_and_class_names():
    table = make_table(2000, 3, seed=11)
    want = fx.score(table, target="label", logits="logits").total

    class Stream:  # any object speaking the Arrow C stream protocol
        def __arrow_c_stream__(self, requested_schema=None):
            return table.__arrow_c_stream__(requested_schema)

    assert fx.score(Stream(), target="label", logits="logits").total == want
    assert fx.score(table.to_reader(), target="label", logits="logits").total == want
    assert (
        fx.score(table.to_batches()[0], target="label", logits="logits").rows
        == table.to_batches()[0].num_rows
    )

    names = pa.array(np.array(["cat", "dog", "eel"])[table["label"].to_numpy()])
    named = table.set_column(table.column_names.index("label"), "label", names)
    assert fx.score(named, target="label", logits="logits").total == want
    as_dictionary = named.set_column(
        named.column_names.index("label"), "label", named["label"].dictionary_encode()
    )
    assert (
        fx.score(as_dictionary, target="label", logits="logits", classes=["cat", "dog", "eel"]).total == want
    )
    with pytest.raises(
        fx.InputValueError, match="'eel' at row 5 of '<table>', which is not one of the classes"
    ):
        fx.score(named, target="label", logits="logits", classes=["cat", "dog", "cow"])


def test_equal_length_list_column_and_ragged_rows():
    x = pa.array([[1.0, 2.0, 0.0], [0.5, 0.1, 3.0]], pa.list_(pa.float32()))
    table = pa.table({"x": x, "y": pa.array([1, 2])})
    assert fx.score(table, target="y", logits="x").loss == fx.cross_entropy(
        np.array([[1.0, 2.0, 0.0], [0.5, 0.1, 3.0]], np.float32), np.array([1, 2])
    )
    ragged = pa.table({"x": pa.array([[1.0, 2.0], [0.5]], pa.list_(pa.float32())), "y": pa.array([1, 0])})
    with pytest.raises(fx.InputValueError, match="ragged.*row 1 has 1"):
        fx.score(ragged, target="y", logits="x")


def test_prefetch_keeps_order_raises_at_the_failing_turn_and_stops_early():
    from fastxent.io.prefetch import ordered_prefetch

    def producer(i, fail=False):
        def items():
            for j in range(5):
                if fail and j == 2:
                    raise OSError(f"producer {i} failed")
                yield (i, j)

        return items

    got = list(ordered_prefetch([producer(i) for i in range(6)], workers=2, depth=1))
    assert got == [(i, j) for i in range(6) for j in range(5)]
    seen = []
    with pytest.raises(OSError, match="producer 1 failed"):
        for item in ordered_prefetch([producer(0), producer(1, fail=True), producer(2)], workers=2, depth=1):
            seen.append(item)
    assert seen == [(0, j) for j in range(5)] + [(1, 0), (1, 1)]
    stream = ordered_prefetch([producer(i) for i in range(50)], workers=2, depth=1)
    assert next(stream) == (0, 0)
    stream.close()  # the producer threads see the consumer gone and return


def test_directory_with_mixed_formats_and_a_corrupt_part(tmp_path):
    table = make_table(3000, 4, seed=12)
    write_table(table.slice(0, 1000), str(tmp_path / "a.parquet"), "parquet", 300)
    write_table(table.slice(1000, 1000), str(tmp_path / "b.arrow"), "ipc", 300)
    write_table(table.slice(2000, 1000), str(tmp_path / "c.parquet"), "parquet", 300)
    (tmp_path / "_SUCCESS").write_text("")
    got = fx.score(str(tmp_path), target="label", logits="logits")
    assert got.rows == 3000
    assert got.total == pytest.approx(fx.score(table, target="label", logits="logits").total, rel=1e-14)
    chunk = pq.ParquetFile(tmp_path / "c.parquet").metadata.row_group(1).column(2)  # logits values
    start = chunk.data_page_offset + 64  # past the page header: damage the values themselves
    data = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "c.parquet").write_bytes(data[:start] + b"\0" * 256 + data[start + 256 :])
    with pytest.raises(fx.InputValueError, match="c.parquet' is not a readable Parquet file"):
        fx.score(str(tmp_path), target="label", logits="logits")


def test_the_readme_recipe_for_other_engines_merges_batch_states():
    import functools
    import pickle

    table = make_table(5000, 6, seed=13)

    def batch_state(batch):
        acc = fx.Accumulator("multiclass")
        acc.update(as_array("logits", batch["logits"]), batch["label"].to_numpy())
        return pickle.dumps(acc)  # a stream of its own: merges in any order without close_blocks()

    states = [batch_state(b) for b in table.to_batches(max_chunksize=777)]
    total = functools.reduce(fx.Accumulator.merge, (pickle.loads(s) for s in reversed(states)))
    x, y = _logit_matrix(table), table["label"].to_numpy()
    assert total.result().loss == pytest.approx(fx.cross_entropy(x, y), rel=1e-14)
    assert total.result().rows == 5000
