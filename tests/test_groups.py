"""Group-by in the scoring pass: each group equals its rows scored alone, for every key type,
whatever the batch size; the per-row losses file and the group table's state."""

from __future__ import annotations

import datetime
import math
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent.groups import GroupTable
from fastxent.kernels.blocks import sum_block
from fastxent.kernels.codes import BLOCK_ROWS, COUNT_FIELDS
from fastxent.run.loop import Run
from fastxent.run.plan import prepare
from fastxent.unit_rows import UNIT_ROWS_KEPT, UnitRows

ROWS = 9000


def _multiclass(rng, n=ROWS, c=5):
    x = (rng.standard_normal((n, c)) * 2).astype(np.float32)
    y = rng.integers(0, c, n)
    y[::13] = -100
    return x, y


def _table(x, y, **keys) -> pa.Table:
    logits = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]) if x.ndim == 2 else x
    return pa.table({"label": y, "logits": logits, **keys})


def _alone(table: pa.Table, mask, **options) -> fx.Score:
    """The group's rows scored alone, as a table of their own."""
    return fx.score(table.filter(pa.array(mask)), target="label", logits="logits", **options)


def _key_columns(rng, n):
    """Key columns of every type, with nulls (and NaN for floats)."""
    words = np.array(["ant", "bee", "cat", "dog"])
    pick = rng.integers(0, 4, n)
    nulls = rng.random(n) < 0.1
    floats = np.array([0.5, np.nan, -2.0, 7.25])[pick]
    day = datetime.date(2024, 1, 1)
    return {
        "string": pa.array(np.where(nulls, None, words[pick]).tolist(), pa.string()),
        "large_string": pa.array(words[pick].tolist(), pa.large_string()),
        "dictionary": pa.array(np.where(nulls, None, words[pick]).tolist()).dictionary_encode(),
        "int": pa.array(pick, mask=nulls),
        "bool": pa.array(pick % 2 == 0, mask=nulls),
        "float": pa.array(floats),
        "date": pa.array([day + datetime.timedelta(days=int(p)) for p in pick], pa.date32()),
        "timestamp": pa.array(pick.astype("datetime64[s]")),
    }


def _rows_of_key(column: pa.Array, key) -> np.ndarray:
    """Rows whose value is ``key`` (None: the nulls; NaN: every NaN), as pandas groups them."""
    if key is None:
        return np.asarray(column.is_null())
    if isinstance(key, float) and math.isnan(key):
        return np.asarray(pc.fill_null(pc.is_nan(column), False))
    return np.asarray(pc.fill_null(pc.equal(column, pa.scalar(key, column.type)), False))


@pytest.mark.parametrize(
    "key_type", ["string", "large_string", "dictionary", "int", "bool", "float", "date", "timestamp"]
)
def test_each_group_equals_its_rows_scored_alone(key_type):
    rng = np.random.default_rng(1)
    x, y = _multiclass(rng)
    key = _key_columns(rng, ROWS)[key_type]
    table = _table(x, y, key=key)
    got = fx.score(table, target="label", logits="logits", group_by="key", batch_rows=2048)
    column = key.dictionary_decode() if pa.types.is_dictionary(key.type) else key
    assert sum(g.rows for g in got.groups.values()) == ROWS
    nan_keys = [k for k in got.groups if isinstance(k, float) and math.isnan(k)]
    assert len(nan_keys) == (1 if key_type == "float" else 0)  # every NaN in one group
    for k, group in got.groups.items():
        mask = _rows_of_key(column, k)
        alone = _alone(table, mask)
        assert group.rows == alone.rows == mask.sum()
        assert (group.scored, group.ignored) == (alone.scored, alone.ignored)
        assert group.loss == pytest.approx(alone.loss, rel=1e-12)
        assert group.accuracy == pytest.approx(alone.accuracy, rel=1e-12)


def test_two_keys_with_nulls_and_nans_form_every_combination_once():
    rng = np.random.default_rng(2)
    x, y = _multiclass(rng)
    keys = _key_columns(rng, ROWS)
    table = _table(x, y, a=keys["string"], b=keys["float"])
    got = fx.score(table, target="label", logits="logits", group_by=["a", "b"], batch_rows=4096)
    assert sum(g.rows for g in got.groups.values()) == ROWS
    assert len(got.groups) == len({(a, "nan" if b != b else b) for a, b in got.groups})
    for (a, b), group in got.groups.items():
        mask = _rows_of_key(keys["string"], a) & _rows_of_key(keys["float"], b)
        assert group.total == pytest.approx(_alone(table, mask).total, rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(batch_rows=st.integers(1, 9000), seed=st.integers(0, 3))
def test_group_bits_do_not_depend_on_batch_rows(batch_rows, seed):
    rng = np.random.default_rng(seed)
    x, y = _multiclass(rng)
    table = _table(x, y, key=_key_columns(rng, ROWS)["string"])
    whole = fx.score(table, target="label", logits="logits", group_by="key")
    split = fx.score(table, target="label", logits="logits", group_by="key", batch_rows=batch_rows)
    assert list(split.groups) == list(whole.groups)
    for k, group in whole.groups.items():
        assert (split.groups[k].total, split.groups[k].weight) == (group.total, group.weight)


def test_groups_span_row_groups_and_files_and_match_the_filtered_file(tmp_path):
    rng = np.random.default_rng(3)
    n = 3 * 2048 + 77  # blocks of each group's stream close at every row group's end
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.integers(0, 2, n)
    split = pa.array(np.array(["test", "train"])[rng.integers(0, 2, n)])
    table = pa.table({"label": y, "logits": x, "split": split})
    pq.write_table(table.slice(0, 5000), tmp_path / "a.parquet", row_group_size=1500)
    pq.write_table(table.slice(5000), tmp_path / "b.parquet", row_group_size=700)
    got = fx.score(str(tmp_path), target="label", logits="logits", group_by="split")
    for name in ("test", "train"):
        mask = np.asarray(pc.equal(split, name))
        want = fx.binary_cross_entropy_with_logits(x[mask], y[mask].astype(np.float32))
        assert got.groups[name].loss == pytest.approx(want, rel=1e-6)
        assert got.groups[name].accuracy == np.mean((x[mask] > 0) == (y[mask] == 1))


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_groups_with_and_without_sample_weights_equal_each_groups_rows(weighted):
    """Single-column binary rows without sample weights have denominators of 1, which the fold
    takes without checking them; with sample weights it must not: each group's weighted loss
    is its rows' ``sum(w * loss) / sum(w)``, whole units or not, few groups or many."""
    rng = np.random.default_rng(12)
    n = 9000
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.integers(0, 2, n)
    w = rng.choice([0.5, 1.0, 3.0], n) if weighted else np.ones(n)
    losses = fx.binary_cross_entropy_with_logits(x, y.astype(np.float32), reduction="none").astype(np.float64)
    for ngroups in (3, 2000):
        key = rng.integers(0, ngroups, n)
        table = pa.table({"label": y, "logits": x, "w": w, "key": key})
        for batch_rows in (n, 1234):
            got = fx.score(
                table,
                target="label",
                logits="logits",
                weight="w" if weighted else None,
                group_by="key",
                batch_rows=batch_rows,
            )
            run = fx.score(table, target="label", logits="logits", weight="w" if weighted else None)
            assert run.loss == pytest.approx(np.sum(w * losses) / np.sum(w), rel=1e-6)
            for k in rng.choice(key, 25):
                mine = key == k
                want = np.sum(w[mine] * losses[mine]) / np.sum(w[mine])
                assert got.groups[int(k)].loss == pytest.approx(want, rel=1e-12), (ngroups, batch_rows)
                assert got.groups[int(k)].weight == pytest.approx(np.sum(w[mine]), rel=1e-15)


def test_a_hundred_thousand_keys_stay_small_and_exact():
    rng = np.random.default_rng(4)
    n = 300_000
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.integers(0, 2, n)
    key = rng.integers(0, 100_000, n)
    table = pa.table({"label": y, "logits": x, "key": key})
    got = fx.score(table, target="label", logits="logits", group_by="key", batch_rows=65536)
    assert len(got.groups) == len(np.unique(key))
    losses = fx.binary_cross_entropy_with_logits(x, y.astype(np.float32), reduction="none").astype(np.float64)
    sums = np.bincount(key, weights=losses)
    for k in rng.choice(key, 20):
        assert got.groups[int(k)].total == pytest.approx(sums[k], rel=1e-12)
        assert got.groups[int(k)].rows == (key == k).sum()


def test_group_table_pickles_and_merges_as_one():
    rng = np.random.default_rng(5)
    x, y = _multiclass(rng, n=5000)
    table = _table(x, y, key=_key_columns(rng, 5000)["string"])
    whole = fx.score(table, target="label", logits="logits", group_by="key")
    halves = []
    for part in (table.slice(0, 2048), table.slice(2048)):  # a block boundary: same bits
        job = prepare(part, target="label", logits="logits", group_by="key")
        run = Run(job.plan, job.make_acc, [], None)
        for p in job.parts:
            run.part(p, job.batch_rows, job.options.nulls)
        halves.append(pickle.loads(pickle.dumps(run.groups)))
    merged = halves[1].merge(halves[0])
    for g, key in enumerate(merged.keys.keys):
        assert merged.totals(g)[0] == whole.groups[key].total


def _folded(keys, loss, den) -> GroupTable:
    """A table of one integer key column fed ``loss``/``den`` rows, blocks closed."""
    table = GroupTable(["k"])
    gid = table.ids(pa.record_batch({"k": pa.array(keys, pa.int64())}))
    table.fold(gid, loss, den, np.zeros(len(keys), np.int32))
    table.close_blocks()
    return table


def test_merge_adds_every_group_as_group_by_group_adds():
    """Merged all at once: the same expansions, specials, moments and counts as adding each
    group's terms one by one; keys only one side has are added, and integer keys met after a
    merge find the merged groups."""
    rng = np.random.default_rng(11)
    n = 3 * 2048 + 77
    keys_a, keys_b = rng.integers(0, 500, n), rng.integers(300, 900, n)  # 300..499 on both sides
    loss_a, loss_b = rng.exponential(1.0, n) * 1e3, rng.exponential(1.0, n)
    loss_a[5], loss_b[9] = np.inf, np.nan
    a, b = _folded(keys_a, loss_a, np.ones(n)), _folded(keys_b, loss_b, rng.random(n) + 0.5)
    merged = pickle.loads(pickle.dumps(a)).merge(b)
    assert sorted(merged.keys.keys) == sorted(set(keys_a.tolist()) | set(keys_b.tolist()))
    one_side = set(keys_a.tolist()) ^ set(keys_b.tolist())
    for key in rng.choice(sorted(merged.keys.keys), 60, replace=False).tolist():
        g = merged.keys.keys.index(key)
        sides = [(t, t.keys.keys.index(key)) for t in (a, b) if key in t.keys.keys]
        assert (len(sides) == 1) == (key in one_side)
        assert merged.counts[g].tolist() == np.sum([t.counts[i] for t, i in sides], axis=0).tolist()
        for q in range(2):
            specials = np.sum([t.specials[i, q] for t, i in sides], axis=0)
            assert merged.specials[g, q].tolist() == specials.tolist()
            if not specials.any():  # the exact sum of both sides' terms, correctly rounded
                terms = [t.terms[i, q, : t.nterms[i, q]] for t, i in sides]
                if q == 1:  # unweighted blocks' denominators kept as row counts
                    terms += [np.array([t.den_rows[i]], dtype=float) for t, i in sides]
                assert merged.totals(g)[q] == math.fsum(np.concatenate(terms))
        moments = sum(t.moments[i].sum(axis=1) for t, i in sides)
        np.testing.assert_allclose(merged.moments[g].sum(axis=1), moments, rtol=1e-15)
    # a batch after the merge: its keys keep their merged ids, new keys get new ones
    only_b = int(keys_b[keys_b >= 500][0])
    gid = merged.ids(pa.record_batch({"k": pa.array([only_b, 10_000, keys_a[0]], pa.int64())}))
    assert gid.tolist() == [
        merged.keys.keys.index(only_b),
        len(merged.keys.keys) - 1,
        merged.keys.keys.index(keys_a[0]),
    ]
    assert merged.keys.keys[-1] == 10_000


def test_expansions_widen_when_a_sum_needs_more_terms():
    """Each group's exact sums start with room for a few terms and widen when one needs more:
    blocks of wildly different magnitudes still sum exactly, and a narrow table merges a wide one."""
    rng = np.random.default_rng(3)
    values = (rng.random(40) + 1) * 10.0 ** rng.integers(-300, 300, 40) * rng.choice([-1, 1], 40)
    table = GroupTable(["k"])
    for v in values:  # one row per unit: each row is a block of its own
        gid = table.ids(pa.record_batch({"k": pa.array(["wide", "plain"])}))
        table.fold(gid, np.array([v, 1.0]), np.ones(2), np.zeros(2, np.int32))
        table.close_blocks()
    assert table.terms.shape[2] > 4 and table.nterms[0, 0] > 4
    assert table.totals(0) == (math.fsum(values), 40.0) and table.totals(1) == (40.0, 40.0)
    narrow = GroupTable(["k"])
    gid = narrow.ids(pa.record_batch({"k": pa.array(["wide", "other"])}))
    narrow.fold(gid, np.array([1.0, 2.0]), np.ones(2), np.zeros(2, np.int32))
    narrow.close_blocks()
    merged = narrow.merge(pickle.loads(pickle.dumps(table)))
    assert merged.totals(0)[0] == math.fsum([*values, 1.0])
    assert [merged.totals(g)[0] for g in (1, 2)] == [2.0, 40.0]


@pytest.mark.parametrize(("whole_unit", "pieces"), [(True, 1), (False, 1), (False, 3)])
def test_a_group_filling_many_blocks_in_one_batch_stops_widens_and_folds_every_row(whole_unit, pieces):
    """A group's rows in one batch can fill many blocks, each adding a term to its exact sum:
    the group stops before a block its expansion has no room for, the expansions widen and its
    other rows are folded, in order, whether the batch is a whole unit or not."""
    blocks = 24
    n_a = blocks * BLOCK_ROWS
    keys = np.where(np.arange(n_a + n_a // 2) % 3 == 2, "b", "a")  # b's rows interleaved
    loss = np.ones(keys.shape[0])
    # a's k-th row: 2**e of its block, blocks 2**60 apart, so each block sum is a term of its own
    loss[keys == "a"] = np.repeat(2.0 ** (60 * (np.arange(blocks) % 17) - 500), BLOCK_ROWS)
    table = GroupTable(["k"])
    for piece in np.array_split(np.arange(keys.shape[0]), pieces):
        gid = table.ids(pa.record_batch({"k": pa.array(keys[piece])}))
        table.fold(gid, loss[piece], np.ones(piece.shape[0]), np.zeros(piece.shape[0], np.int32), whole_unit)
    table.close_blocks()
    assert table.terms.shape[2] > 4 and table.nterms[0, 0] > 4
    assert table.totals(0) == (math.fsum(loss[keys == "a"]), n_a)
    assert table.totals(1) == (n_a // 2, n_a // 2)
    assert table.counts[:2, COUNT_FIELDS.index("scored")].tolist() == [n_a, n_a // 2]


def neumaier(s: float, error: float, x: float) -> tuple[float, float]:
    """Neumaier's compensated addition of ``x`` to ``s`` (rounding errors so far: ``error``)."""
    t = s + x
    error += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
    return t, error


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    groups=st.sampled_from([1, 3, 8, 40, 3000]),
    units=st.lists(st.integers(0, 20_000), min_size=1, max_size=4),
    cuts=st.lists(st.integers(1, 20_000), max_size=4),
    unweighted=st.booleans(),
    kept=st.sampled_from([0, 5000, UNIT_ROWS_KEPT]),
)
def test_group_folds_equal_the_blocks_of_each_group_stream(seed, groups, units, cuts, unweighted, kept):
    """Whatever the units and the batches within them, a group's sums are the exact sums of the
    block sums (sum_block, eight lanes) of its own rows in each unit, cut every BLOCK_ROWS of
    them, its moments the compensated sums of the blocks' products in order, and its counts
    count its rows: whole units, units kept until they end (up to ``kept`` rows), carried blocks
    and stops for room alike, weighted rows and unweighted ones (whose denominators the fold does
    not copy)."""
    rng = np.random.default_rng(seed)
    table = GroupTable(["k"], unit_rows=UnitRows(kept))
    table.ids(pa.record_batch({"k": pa.array(np.arange(groups))}))  # group g has id g
    expected = [[[], []] for _ in range(groups)]
    moments = np.zeros((groups, 3, 2))
    scored = np.zeros(groups, dtype=np.int64)
    for u, rows in enumerate(units):
        gid = rng.integers(0, groups, rows).astype(np.int32)
        # each block of a group's rows 10**37 from the next: every block sum a term of its own,
        # so the expansions fill up and groups stop for room
        block = np.zeros(rows, dtype=np.int64)
        for g in range(groups):
            mine = np.flatnonzero(gid == g)
            block[mine] = np.arange(mine.shape[0]) // BLOCK_ROWS
        loss = (rng.random(rows) + 1) * 10.0 ** ((37 * (block + 3 * u)) % 300 - 150)
        den = np.ones(rows) if unweighted else rng.choice([1.0, 0.5, 3.0], rows)
        marks = np.zeros(rows, dtype=np.int32)
        bounds = sorted({0, rows, *(c for c in cuts if c < rows)})
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            table.fold(gid[lo:hi], loss[lo:hi], den[lo:hi], marks[lo:hi], whole_unit=len(bounds) == 2)
        table.close_blocks()
        for g in range(groups):
            mine = gid == g
            scored[g] += mine.sum()
            for q, values in enumerate((loss[mine], den[mine])):
                for start in range(0, values.shape[0], BLOCK_ROWS):
                    expected[g][q].append(sum_block(values[start : start + BLOCK_ROWS]))
            products = (loss[mine] ** 2, loss[mine] * den[mine], den[mine] ** 2)
            for start in range(0, mine.sum(), BLOCK_ROWS):
                for q, values in enumerate(products):
                    moments[g, q] = neumaier(*moments[g, q], sum_block(values[start : start + BLOCK_ROWS]))
    for g in range(groups):
        assert table.totals(g) == (math.fsum(expected[g][0]), math.fsum(expected[g][1]))
    np.testing.assert_array_equal(table.moments[:groups], moments)
    assert table.counts[:groups, COUNT_FIELDS.index("scored")].tolist() == scored.tolist()


def test_open_blocks_cannot_merge():
    table = GroupTable(["k"])
    gid = table.ids(pa.record_batch({"k": ["a", "b", "a"]}))
    table.fold(gid, np.ones(3), np.ones(3), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="open blocks"):
        table.merge(GroupTable(["k"]))


def test_a_list_column_is_no_group_key():
    table = pa.table({"label": [0, 1], "logits": [0.5, -0.5], "k": [[1], [2]]})
    with pytest.raises(fx.InputValueError, match="cannot be a group key"):
        fx.score(table, target="label", logits="logits", group_by="k")


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_losses_file_is_reduction_none_one_row_per_scored_row(tmp_path, kind):
    rng = np.random.default_rng(6)
    if kind == "multiclass":
        x, y = _multiclass(rng, n=5000)
        want = fx.cross_entropy(x, y, reduction="none")
        predicted = np.argmax(x, axis=1)
    else:
        x = rng.standard_normal(5000).astype(np.float32)
        y = rng.integers(0, 2, 5000)
        want = fx.binary_cross_entropy_with_logits(x, y.astype(np.float32), reduction="none")
        predicted = (x > 0).astype(np.int8)
    label = pa.array(y, mask=np.arange(5000) % 101 == 7)  # null targets: skipped, not written
    table = pa.table({"id": np.arange(5000) * 3, "label": label, "logits": _table(x, y)["logits"]})
    out = tmp_path / "losses.parquet"
    fx.score(table, target="label", logits="logits", losses_to=str(out), keep="id", batch_rows=3000)
    got = pq.read_table(out)
    kept = np.flatnonzero(np.arange(5000) % 101 != 7)
    assert got.column_names == ["row", "id", "loss", "predicted"]
    np.testing.assert_array_equal(got["row"].to_numpy(), kept)
    np.testing.assert_array_equal(got["id"].to_numpy(), kept * 3)
    assert got["loss"].type == pa.float32()
    np.testing.assert_array_equal(got["loss"].to_numpy(), want[kept])  # the same float32 bits
    np.testing.assert_array_equal(got["predicted"].to_numpy(), predicted[kept])


def test_merge_refuses_itself_other_types_and_other_options():
    a = fx.Accumulator()
    a.update(np.zeros((3, 4)), np.zeros(3, np.int64))
    with pytest.raises(fx.InputValueError, match="itself"):
        a.merge(a)
    with pytest.raises(TypeError, match="another Accumulator"):
        a.merge(3)
    for options in (
        {"ignore_index": 0},
        {"label_smoothing": 0.1},
        {"class_weight": [1.0, 2.0, 1.0, 1.0]},
        {"inputs": "logprobs"},
    ):
        with pytest.raises(fx.InputValueError, match="different options"):
            a.merge(fx.Accumulator(**options))
    assert a.result().rows == 3


def test_losses_file_over_several_files_names_files_classes_and_keeps_one_schema(tmp_path):
    """Two files (float32 and float64 logits, int32 and int64 ids): one schema, a `file` column
    with rows counted within each file, predictions as class names."""
    rng = np.random.default_rng(8)
    names = np.array(["ant", "bee", "cat"])
    for i, dtype in enumerate((np.float32, np.float64)):
        x = rng.standard_normal((700, 3)).astype(dtype)
        table = pa.table(
            {
                "id": pa.array(np.arange(700), pa.int32() if i == 0 else pa.int64()),
                "label": names[rng.integers(0, 3, 700)],
                "logits": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 3),
            }
        )
        pq.write_table(table, tmp_path / f"part{i}.parquet", row_group_size=300)
    out = tmp_path / "losses.parquet"
    fx.score(str(tmp_path), target="label", logits="logits", losses_to=str(out), keep="id")
    got = pq.read_table(out)
    assert got.schema.field("loss").type == pa.float64()  # one float64 file: float64 for all rows
    assert got.schema.field("id").type == pa.int64()
    assert (
        got["file"].to_pylist()
        == [str(tmp_path / "part0.parquet")] * 700 + [str(tmp_path / "part1.parquet")] * 700
    )
    assert got["row"].to_pylist() == list(range(700)) * 2
    assert set(got["predicted"].to_pylist()) <= set(names)


def test_a_string_key_read_from_dictionary_pages_has_no_phantom_null_group(tmp_path):
    """Parquet string keys are read as dictionaries; a key column without nulls gets no null group."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(5000).astype(np.float32)
    split = np.array(["a", "b", "c"])[rng.integers(0, 3, 5000)]
    pq.write_table(
        pa.table({"label": rng.integers(0, 2, 5000), "logits": x, "split": split}), tmp_path / "k.parquet"
    )
    got = fx.score(str(tmp_path / "k.parquet"), target="label", logits="logits", group_by="split")
    assert list(got.groups) == ["a", "b", "c"]
    assert [got.groups[k].rows for k in "abc"] == [int((split == k).sum()) for k in "abc"]


@pytest.mark.parametrize("batch_rows", [300, 1000, 7000])
def test_dictionary_keys_whose_row_groups_order_them_differently(tmp_path, batch_rows):
    """Each row group's dictionary page orders the keys as they first appear in it; a batch's
    lookup is reused for the next batches of the same dictionary, and a null slot is kept."""
    rng = np.random.default_rng(10)
    n = 6000
    pieces = []
    for _ in range(0, n, 1000):  # each row group meets the keys in another order
        order = rng.permutation(["x", "y", "z", None])
        pieces += list(order) + [order[i] for i in rng.integers(0, 4, 996)]
    split = pa.array(pieces, pa.string())
    table = pa.table({"label": rng.integers(0, 2, n), "logits": rng.standard_normal(n), "split": split})
    pq.write_table(table, tmp_path / "k.parquet", row_group_size=1000)
    got = fx.score(
        str(tmp_path / "k.parquet"), target="label", logits="logits", group_by="split", batch_rows=batch_rows
    )
    assert set(got.groups) == {"x", "y", "z", None}
    for key in ("x", "y", "z", None):
        mask = pc.is_null(split) if key is None else pc.fill_null(pc.equal(split, key), False)
        assert got.groups[key].rows == pc.sum(mask).as_py()
        assert got.groups[key].loss == pytest.approx(_alone(table, mask).loss, rel=1e-12)


@pytest.mark.parametrize(
    "typ",
    [
        pa.int8(),
        pa.int64(),
        pa.uint32(),
        pa.uint64(),
        pa.date32(),
        pa.timestamp("ms"),
        pa.time32("s"),
        pa.duration("us"),
    ],
)
def test_integer_like_keys_through_the_hash_table_match_string_keys(tmp_path, typ):
    """Integer-like keys are looked up in a compiled hash table that grows across batches; the
    groups (rows, bits) are those of the same keys as strings, nulls one group."""
    rng = np.random.default_rng(11)
    n = 20_000
    raw = rng.integers(0, 120 if typ == pa.int8() else 5000, n)
    if typ == pa.uint64():
        raw = raw.astype(np.uint64) + np.uint64(2**63)  # beyond int64: keys by their bits
    nulls = rng.random(n) < 0.05
    if pa.types.is_integer(typ):
        keys = pa.array(raw, pa.uint64() if typ == pa.uint64() else None, mask=nulls).cast(typ)
    else:  # dates, times, timestamps, durations over their integer storage
        storage = pa.array(raw.astype(np.int32 if typ.bit_width == 32 else np.int64), mask=nulls)
        keys = storage.view(typ)
    table = pa.table({"label": rng.integers(0, 2, n), "logits": rng.standard_normal(n), "k": keys})
    as_text = table.set_column(2, "k", keys.cast(pa.string()))
    got = fx.score(table, target="label", logits="logits", group_by="k", batch_rows=3000)
    want = fx.score(as_text, target="label", logits="logits", group_by="k", batch_rows=3000)
    assert len(got.groups) == len(want.groups) > 100
    for key, group in got.groups.items():
        other = want.groups[None if key is None else str(pa.scalar(key, typ).cast(pa.string()).as_py())]
        assert (group.rows, group.total, group.weight) == (other.rows, other.total, other.weight)
    assert got.groups[None].rows == int(nulls.sum())
    # the keys as a column: uint64 keys past int64 too
    assert got.groups.to_arrow()["k"].to_pylist() == list(got.groups)


def _dictionary_batches(rng, entries, batches=6, rows=700):
    """Dictionary-encoded string keys: each batch its own dictionary (entries in another order,
    a null entry in some, some entries unused), int8/int16/int32 codes, null rows, slices."""
    names = [f"k{i}" for i in range(entries)]
    out = []
    for b in range(batches):
        dictionary = list(rng.permutation(names)) + ([None] if b % 3 == 1 else [])
        index_type = [pa.int8(), pa.int16(), pa.int32()][b % 3] if entries < 100 else pa.int32()
        codes = rng.integers(0, len(dictionary), rows + 5)
        nulls = rng.random(rows + 5) < (0.1 if b % 2 else 0.0)
        indices = pa.array(codes, mask=nulls if nulls.any() else None).cast(index_type)
        column = pa.DictionaryArray.from_arrays(indices, pa.array(dictionary, pa.string()))
        out.append(column.slice(3, rows) if b % 2 else column[:rows])  # offsets into the bitmap
    return out


@pytest.mark.parametrize("entries", [3, 256, 257, 2000])
def test_dictionary_codes_become_the_same_ids_whatever_the_batch_dictionary(entries):
    """A key's id is the same in every batch (dictionaries of a few entries are numbered by
    Python lookups, larger ones by Arrow's hash kernels), a null row is the null key's group."""
    from fastxent.groups import FEW_KEYS, GroupKeys

    assert (entries <= FEW_KEYS) == (entries in (3, 256))
    keys = GroupKeys(["k"])
    for column in _dictionary_batches(np.random.default_rng(entries), entries):
        ids = keys.ids(pa.record_batch([column], names=["k"]))
        assert ids.dtype == np.int32 and ids.shape == (len(column),)
        assert [keys.keys[i] for i in ids] == column.cast(pa.string()).to_pylist()
    assert len(keys.keys) == len(set(keys.keys))


def test_dictionary_codes_outside_the_dictionary_are_refused():
    from fastxent.errors import InputValueError
    from fastxent.groups import GroupKeys

    codes = pa.array([0, 1, 5, 1], pa.int32())
    column = pa.DictionaryArray.from_arrays(codes, pa.array(["a", "b"]), safe=False)
    with pytest.raises(InputValueError, match="outside its dictionary"):
        GroupKeys(["k"]).ids(pa.record_batch([column], names=["k"]))


@pytest.mark.parametrize("n", [1, 7, 64, 1000])
@pytest.mark.parametrize("per_row", [0.5, 1.0, 1.01, 3.0])
@pytest.mark.parametrize("copy_den", [True, False])
def test_every_sort_gives_each_groups_rows_in_order(n, per_row, copy_den):
    """The partition (a few groups), the counting sort (up to COUNTING_GROUPS_PER_ROW groups a
    row) and the merge sort (more) put the rows in the order of a stable sort by group, and
    name each group's run: groups around each switch."""
    from fastxent.kernels import groups as kernels

    rng = np.random.default_rng(n)
    switches = (kernels.PARTITION_GROUPS, kernels.PARTITION_GROUPS + 1)
    for ngroups in {1, 4, *switches, int(per_row * kernels.COUNTING_GROUPS_PER_ROW * n) + 1}:
        gid = rng.integers(0, ngroups, n).astype(np.int32)
        loss, den = rng.random(n), rng.random(n)
        marks = rng.integers(0, 100, n).astype(np.int32)
        index = np.empty(4 * n + 3 + min(ngroups, kernels.COUNTING_GROUPS_PER_ROW * n) + 1, np.int32)
        order, run_group = index[:n], index[n : 2 * n + 1]
        run_start, starts = index[2 * n + 1 : 3 * n + 2], index[4 * n + 3 :]
        room = n + kernels.SPARE_ROWS
        out = (np.empty(room), np.full(room, 7.0), np.empty(room, np.int32))
        nruns = kernels.sort_by_group(
            gid, ngroups, (loss, den, marks), out, order, run_group, run_start, starts, copy_den
        )
        stable = np.argsort(gid, kind="stable")
        present = np.unique(gid)
        assert nruns == present.size
        assert run_group[:nruns].tolist() == present.tolist()
        assert run_start[: nruns + 1].tolist() == np.searchsorted(gid[stable], [*present, ngroups]).tolist()
        np.testing.assert_array_equal(out[0][:n], loss[stable])
        np.testing.assert_array_equal(out[2][:n], marks[stable])
        np.testing.assert_array_equal(out[1][:n], den[stable] if copy_den else np.full(n, 7.0))


@pytest.mark.parametrize("kept", [0, 100, UNIT_ROWS_KEPT])
def test_a_table_pickled_within_a_unit_folds_on_to_the_same_bits(kept):
    """Pickled between two batches of a unit (its rows kept, or its groups' blocks open), a
    table goes on to the bits of one never pickled; tables that hold a unit's rows or open
    blocks refuse to merge."""
    rng = np.random.default_rng(21)
    n = 3 * 2048 + 500
    keys, loss, den = rng.integers(0, 40, n), rng.exponential(1.0, n), rng.random(n) + 0.5
    tables = [GroupTable(["k"], unit_rows=UnitRows(kept)) for _ in range(2)]
    for i, table in enumerate(tables):
        gid = table.ids(pa.record_batch({"k": pa.array(keys, pa.int64())}))
        marks = np.zeros(n, np.int32)
        table.fold(gid[:1000], loss[:1000], den[:1000], marks[:1000])
        if i == 1:
            with pytest.raises(ValueError, match="open blocks"):
                table.merge(GroupTable(["k"]))
            table = tables[1] = pickle.loads(pickle.dumps(table))
        table.fold(gid[1000:], loss[1000:], den[1000:], marks[1000:])
        table.close_blocks()
    for q in range(2):
        np.testing.assert_array_equal(tables[0].terms[:40, q], tables[1].terms[:40, q])
    np.testing.assert_array_equal(tables[0].moments[:40], tables[1].moments[:40])
    np.testing.assert_array_equal(tables[0].counts[:40], tables[1].counts[:40])
    assert tables[1].merge(tables[0]) is tables[1]
