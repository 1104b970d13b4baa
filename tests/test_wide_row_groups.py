"""Issue 19 §5: Parquet row groups too wide to decode row by row are scored in class passes
(fastxent.run.wide), with the same bits as decoding them whole.

``WIDE_BYTES = 0`` sends every one-column-per-class row group through the class passes, and a
small ``GROUP_BYTES`` makes the groups of classes odd-sized (they cross the 8-class partial sums
of the class-by-class kernel); each result is compared with the same file read row by row.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.io import sources
from fastxent.io.columns import plan as plan_columns
from fastxent.run import loop, wide

ROWS, CLASSES = 1500, 37


def _values(kind: str, dtype, seed: int = 0) -> np.ndarray:
    """``(ROWS, CLASSES)`` inputs of ``kind`` with the cases that trip kernels up: a NaN, an inf,
    a row of -inf, a row of ties, signed zeros."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, CLASSES)) * 3
    if kind == "probs":
        x = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
        x[7] = 1.0 / CLASSES
    elif kind == "logprobs":
        x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        x[7] = -np.log(CLASSES)
    else:
        x[5, 2], x[9, 1], x[11] = np.nan, np.inf, -np.inf
        x[7] = x[7, 0]
        x[13, 0], x[13, 1:] = -0.0, 0.0
    return x.astype(dtype)


def _write(path, x, y, row_group_size=600) -> str:
    columns = {"label": y, "split": np.arange(len(y)) % 3}
    columns.update({f"c_{k:03d}": x[:, k] for k in range(x.shape[1])})
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return str(path)


@pytest.fixture
def class_passes(monkeypatch):
    """Every one-column-per-class row group through the class passes, 5 classes at a time."""

    units = []

    def counted(part, unit, *args):
        units.append(unit)
        return folded(part, unit, *args)

    folded = loop.unit_statistics

    def use(classes_per_group: int = 5, rows: int = 600, itemsize: int = 4):
        monkeypatch.setattr(wide, "WIDE_BYTES", 0)
        monkeypatch.setattr(wide, "GROUP_BYTES", classes_per_group * rows * itemsize)
        monkeypatch.setattr(loop, "unit_statistics", counted)

    yield use
    assert units, "no row group went through the class passes"


def _same(a, b) -> None:
    def bits(v):
        return np.float64(v).tobytes()

    assert bits(a.total) == bits(b.total) and bits(a.weight) == bits(b.weight)
    assert (a.rows, a.scored, a.ignored, a.nulls, a.nonfinite, a.accuracy) == (
        b.rows,
        b.scored,
        b.ignored,
        b.nulls,
        b.nonfinite,
        b.accuracy,
    )


def _same_table(a: pa.Table, b: pa.Table) -> None:
    assert a.column_names == b.column_names
    for name in a.column_names:
        u, v = a[name].to_numpy(zero_copy_only=False), b[name].to_numpy(zero_copy_only=False)
        assert np.array_equal(u, v, equal_nan=u.dtype.kind == "f"), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("kind", ["logits", "probs", "logprobs"])
def test_class_passes_give_the_bits_of_whole_row_groups(tmp_path, class_passes, kind, dtype):
    x = _values(kind, dtype)
    y = np.random.default_rng(1).integers(0, CLASSES, ROWS)
    y[3] = -100
    path = _write(tmp_path / "f.parquet", x, y)
    options = {kind: "c_*", "target": "label", "group_by": "split", "ignore_index": -100}
    if kind != "probs":
        options.update(label_smoothing=0.1, class_weight=list(np.linspace(0.5, 2, CLASSES)))
    whole = fx.score(path, **options, losses_to=str(tmp_path / "whole.parquet"), keep="split")
    class_passes(rows=600, itemsize=np.dtype(dtype).itemsize)
    passes = fx.score(path, **options, losses_to=str(tmp_path / "passes.parquet"), keep="split")
    _same(whole, passes)
    assert whole.rows == ROWS and set(whole.groups) == set(passes.groups)
    for key in whole.groups:
        _same(whole.groups[key], passes.groups[key])
    _same_table(pq.read_table(tmp_path / "whole.parquet"), pq.read_table(tmp_path / "passes.parquet"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_group=st.integers(1, 40),
    batch_rows=st.integers(1, 2000),
    row_group=st.sampled_from([97, 512, 1500]),
)
def test_any_class_groups_and_batches_give_the_same_bits(tmp_path_factory, per_group, batch_rows, row_group):
    root = tmp_path_factory.mktemp("groups")
    x = _values("logits", np.float32, seed=2)
    y = np.random.default_rng(3).integers(0, CLASSES, ROWS)
    path = _write(root / "f.parquet", x, y, row_group_size=row_group)
    whole = fx.score(path, target="label", logits="c_*")
    wide.WIDE_BYTES, wide.GROUP_BYTES = 0, per_group * row_group * 4
    try:
        passes = fx.score(path, target="label", logits="c_*", batch_rows=batch_rows)
    finally:
        wide.WIDE_BYTES, wide.GROUP_BYTES = 256 << 20, 16 << 20
    _same(whole, passes)


def test_nulls_in_class_columns_are_skipped_or_refused_as_before(tmp_path, class_passes):
    x = _values("logits", np.float32)
    y = np.random.default_rng(4).integers(0, CLASSES, ROWS)
    table = pq.read_table(_write(tmp_path / "f.parquet", x, y))
    column = table["c_020"].to_numpy().copy()
    mask = np.zeros(ROWS, dtype=bool)
    mask[[10, 700, 701]] = True
    table = table.set_column(table.schema.get_field_index("c_020"), "c_020", pa.array(column, mask=mask))
    pq.write_table(table, tmp_path / "nulls.parquet", row_group_size=600)
    path = str(tmp_path / "nulls.parquet")
    whole = fx.score(path, target="label", logits="c_*", nulls="skip")
    with pytest.raises(fx.InputValueError) as before:
        fx.score(path, target="label", logits="c_*", nulls="error")
    class_passes()
    passes = fx.score(path, target="label", logits="c_*", nulls="skip")
    _same(whole, passes)
    assert passes.nulls == 3
    with pytest.raises(fx.InputValueError) as after:
        fx.score(path, target="label", logits="c_*", nulls="error")
    assert str(after.value) == str(before.value) and "row 10 of" in str(after.value)


def test_a_value_that_is_no_probability_is_the_same_error(tmp_path, class_passes):
    x = _values("probs", np.float32)
    x[900, 30], x[1200, 4] = 1.5, -0.25  # row 900 comes first although class 30 is read later
    y = np.random.default_rng(5).integers(0, CLASSES, ROWS)
    path = _write(tmp_path / "f.parquet", x, y)
    with pytest.raises(fx.InputValueError) as before:
        fx.score(path, target="label", probs="c_*")
    class_passes()
    with pytest.raises(fx.InputValueError) as after:
        fx.score(path, target="label", probs="c_*")
    assert str(after.value) == str(before.value)
    assert "1.5 at row 900 of" in str(after.value) and "class 30" in str(after.value)


def test_class_names_and_a_bad_name_as_before(tmp_path, class_passes):
    x = _values("logits", np.float32)
    names = np.array([f"k{c:02d}" for c in range(CLASSES)], dtype=object)
    y = names[np.random.default_rng(6).integers(0, CLASSES, ROWS)]
    path = _write(tmp_path / "f.parquet", x, pa.array(y, pa.string()))
    whole = fx.score(path, target="label", logits="c_*", losses_to=str(tmp_path / "whole.parquet"))
    class_passes()
    passes = fx.score(path, target="label", logits="c_*", losses_to=str(tmp_path / "passes.parquet"))
    _same(whole, passes)
    _same_table(pq.read_table(tmp_path / "whole.parquet"), pq.read_table(tmp_path / "passes.parquet"))
    y[1000] = "zebra"
    bad = _write(tmp_path / "bad.parquet", x, pa.array(y, pa.string()))
    with pytest.raises(fx.InputValueError, match="'zebra'.* row 1000 of"):
        fx.score(bad, target="label", logits="c_*", classes=list(names))


def test_a_report_from_class_passes(tmp_path, class_passes):
    x = _values("logits", np.float32)
    y = np.random.default_rng(7).integers(0, CLASSES, ROWS)
    path = _write(tmp_path / "f.parquet", x, y)
    whole = fx.report(path, out=tmp_path / "whole", target="label", logits="c_*", by="split")
    class_passes()
    passes = fx.report(path, out=tmp_path / "passes", target="label", logits="c_*", by="split")
    a, b = json.dumps(whole, sort_keys=True, default=str), json.dumps(passes, sort_keys=True, default=str)
    if a != b:  # the confidences come from the passes' own sums: equal to float rounding
        flat_a, flat_b = _numbers(whole), _numbers(passes)
        assert len(flat_a) == len(flat_b)
        assert np.allclose(flat_a, flat_b, rtol=1e-6, atol=1e-9, equal_nan=True)


def _numbers(document) -> np.ndarray:
    found = []

    def walk(value):
        if isinstance(value, dict):
            for key in sorted(value):
                walk(value[key])
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(float(value))

    walk(document)
    return np.array(found)


def test_wide_row_groups_are_read_a_few_classes_at_a_time(tmp_path, monkeypatch):
    classes, rows = 1000, 2000
    rng = np.random.default_rng(8)
    x = rng.standard_normal((rows, classes), dtype=np.float32)
    y = rng.integers(0, classes, rows)
    path = _write(tmp_path / "w.parquet", x, y, row_group_size=rows)
    part = sources.file_part(path)
    plan = plan_columns(part.full_schema(), target="label", logits="c_*")
    assert wide.wide_units(part, plan, "cpu") == set()  # 1,000 pages of 8 KB: read row by row
    whole = fx.score(path, target="label", logits="c_*")
    monkeypatch.setattr(wide, "WIDE_BYTES", 4 << 20)  # 8 MB of pages: now too wide
    monkeypatch.setattr(wide, "GROUP_BYTES", 1 << 20)
    assert wide.wide_units(part, plan, "cpu") == {0} and wide.wide_units(part, plan, "cuda") == set()
    read, batches = [], []
    original_batches = sources.Part.batches

    def spy_batches(self, columns, batch_rows, units=None):
        batches.append(list(columns))
        return original_batches(self, columns, batch_rows, units)

    def opened(path_):
        opened_part = real_file_part(path_)
        inner = opened_part.read_columns
        opened_part.read_columns = lambda unit, columns: read.append(len(columns)) or inner(unit, columns)
        return opened_part

    real_file_part = sources.file_part
    monkeypatch.setattr(sources, "file_part", opened)
    monkeypatch.setattr(sources.Part, "batches", spy_batches)
    passes = fx.score(path, target="label", logits="c_*")
    _same(whole, passes)
    assert max(read) == (1 << 20) // (rows * 4) and sum(read) == 2 * classes  # two passes over the classes
    assert not any(c.startswith("c_") for columns in batches for c in columns)  # no class decoded by rows
