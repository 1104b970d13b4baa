"""The scattered fold (many groups, few rows each, whole units) gives the sorted fold's bits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastxent as fx
from fastxent import groups as groups_module
from fastxent.groups import GroupTable
from fastxent.kernels.codes import MARK_CORRECT_SHIFT, MARK_IGNORED, MARK_NONFINITE, MARK_UNNORMALISED

STATE = ("terms", "nterms", "specials", "moments", "counts", "den_rows", "filled")


def _tables(groups: int) -> tuple[GroupTable, GroupTable]:
    """Two tables knowing ``groups`` groups (id g: key g); the second never scatters."""
    scattered, sorted_ = GroupTable(["k"]), GroupTable(["k"])
    for table in (scattered, sorted_):
        table.ids(pa.record_batch({"k": pa.array(np.arange(groups))}))
    sorted_._scatters = lambda n: False
    return scattered, sorted_


def _assert_same_state(table: GroupTable, other: GroupTable) -> None:
    for name in STATE:
        mine, theirs = getattr(table, name)[: table._size], getattr(other, name)[: other._size]
        np.testing.assert_array_equal(mine, theirs, err_msg=name)


def _unit(rng, groups: int, rows: int, hot: int):
    """A unit's rows: ids mostly spread over the groups, ``hot`` of them in a few groups (which
    then have eight rows or more: the sorted fold's), losses of wildly different magnitudes
    (expansions fill and widen) with NaN, infinities and -0.0, and every mark."""
    gid = rng.integers(0, groups, rows).astype(np.int32)
    gid[rng.choice(rows, min(hot, rows), replace=False)] = rng.integers(0, 3, min(hot, rows))
    loss = (rng.random(rows) + 1) * 10.0 ** rng.integers(-150, 150, rows)
    special = rng.random(rows) < 0.02
    loss[special] = rng.choice([np.nan, np.inf, -np.inf, -0.0], special.sum())
    flags = rng.choice(
        [0, MARK_IGNORED, MARK_NONFINITE, MARK_UNNORMALISED, 7], rows, p=[0.9, 0.025, 0.025, 0.025, 0.025]
    )
    marks = (flags | (rng.integers(0, 3, rows) << MARK_CORRECT_SHIFT)).astype(np.int32)
    return gid, loss, marks


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    groups=st.sampled_from([11, 40, 3000]),
    units=st.lists(st.integers(1, 12_000), min_size=1, max_size=6),
    hot=st.sampled_from([0, 20, 500]),
    judged=st.sampled_from([1, 5]),
)
def test_scattered_fold_gives_the_sorted_folds_bits(seed, groups, units, hot, judged):
    rng = np.random.default_rng(seed)
    scattered, sorted_ = _tables(groups)
    scattered.judged_per_row = sorted_.judged_per_row = judged
    ran = 0
    for rows in units:
        gid, loss, marks = _unit(rng, groups, rows, hot)
        ran += scattered._scatters(rows)
        for table in (scattered, sorted_):
            table.fold(gid, loss, np.ones(rows), marks, whole_unit=True)
            table.close_blocks()
    size = scattered._size
    for name in STATE:
        np.testing.assert_array_equal(
            getattr(scattered, name)[:size], getattr(sorted_, name)[:size], err_msg=name
        )
    assert scattered.terms.shape == sorted_.terms.shape
    for g in range(groups):
        np.testing.assert_array_equal(scattered.totals(g), sorted_.totals(g))
    if ran:  # the scattered sums are zero again after each unit
        assert scattered._sums.shape[0] >= groups and not scattered._sums.any()


def test_expansions_widen_between_the_scattered_passes():
    """Each unit adds one term to a group's sum (units 10**37 apart): the expansions fill, widen
    before the sums are added, and hold the sorted fold's bits."""
    rng = np.random.default_rng(2)
    scattered, sorted_ = _tables(40)
    for unit in range(9):
        gid = np.arange(100, dtype=np.int32) % 40
        loss = (rng.random(100) + 1) * 10.0 ** (37 * unit - 150)
        for table in (scattered, sorted_):
            table.fold(gid, loss, np.ones(100), np.zeros(100, np.int32), whole_unit=True)
    assert scattered._scatters(100) and scattered.terms.shape[2] > 4
    _assert_same_state(scattered, sorted_)


def test_sums_left_by_an_error_are_dropped(monkeypatch):
    """An error while the expansions are widened between two calls of the groups' pass leaves
    the sums of the groups not added yet: they are dropped, not left to spoil the next unit."""
    rng = np.random.default_rng(1)
    scattered, _ = _tables(40)
    gid = np.arange(100, dtype=np.int32) % 40
    for unit in range(4):  # four terms a group: full
        loss = (rng.random(100) + 1) * 10.0 ** (37 * unit - 150)
        scattered.fold(gid, loss, np.ones(100), np.zeros(100, np.int32), whole_unit=True)
    assert scattered._sums.shape[0] >= 40

    def fail():
        raise MemoryError("no room")

    monkeypatch.setattr(scattered, "_widen", fail)
    with pytest.raises(MemoryError):
        scattered.fold(gid, np.full(100, 1e100), np.ones(100), np.zeros(100, np.int32), whole_unit=True)
    assert scattered._sums.shape[0] == 0


def test_a_hundred_thousand_users_in_row_groups_score_as_each_users_rows_alone(tmp_path):
    """Scored from a file of whole row groups (the scattered fold's case), each user's loss is
    its rows' loss, and the bits do not depend on the batch size."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    n = 400_000
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.integers(0, 2, n)
    user = rng.integers(0, 100_000, n)
    path = tmp_path / "users.parquet"
    pq.write_table(pa.table({"label": y, "logits": x, "user": user}), path, row_group_size=131_072)
    got = fx.score(str(path), target="label", logits="logits", group_by="user")
    cut = fx.score(str(path), target="label", logits="logits", group_by="user", batch_rows=20_000)
    losses = fx.binary_cross_entropy_with_logits(x, y.astype(np.float32), reduction="none").astype(np.float64)
    sums = np.bincount(user, weights=losses)
    rows = np.bincount(user)
    correct = np.bincount(user, weights=(x > 0) == (y == 1))
    for k in rng.choice(user, 50):
        group = got.groups[int(k)]
        assert group.total == pytest.approx(sums[k], rel=1e-12)
        assert group.rows == rows[k]
        assert group.accuracy == pytest.approx(correct[k] / rows[k], rel=1e-12)
    assert list(cut.groups) == list(got.groups)
    for k, group in got.groups.items():
        assert (cut.groups[k].total, cut.groups[k].weight) == (group.total, group.weight)


def test_prefetch_row_asks_for_the_line_and_changes_nothing():
    """prefetch_row compiles to a prefetch instruction (x86: prefetchw) and touches no value,
    even for rows outside the array."""
    import platform
    import re

    import numba

    from fastxent.kernels.prefetch import prefetch_row

    @numba.njit
    def ahead(sums, rows):
        total = 0.0
        for i in range(rows.shape[0]):
            prefetch_row(sums, rows[i] + 1_000_000)
            total += sums[rows[i], 0]
        return total

    sums = np.arange(12.0).reshape(6, 2)
    assert ahead(sums, np.array([5, 0, 3])) == 10.0 + 0.0 + 6.0
    assert sums.tolist() == np.arange(12.0).reshape(6, 2).tolist()
    if platform.machine() in ("x86_64", "AMD64"):
        assert re.search(r"\bprefetch", next(iter(ahead.inspect_asm().values())))


@pytest.mark.parametrize("whole_unit", [True, False], ids=["whole", "carried"])
@pytest.mark.parametrize("groups", [40, 3000])
def test_the_parallel_fold_and_close_give_the_serial_bits(monkeypatch, groups, whole_unit):
    """Folded (sorted and scattered) and closed in parallel, as with three threads or more, the
    groups hold the bits they hold folded serially; the parallel kernels run even on two threads
    here (thresholds lowered)."""
    rng = np.random.default_rng(groups)
    serial, parallel = GroupTable(["k"]), GroupTable(["k"])
    for table in (serial, parallel):
        table.ids(pa.record_batch({"k": pa.array(np.arange(groups))}))
    chosen = []
    decide = groups_module._parallel
    monkeypatch.setattr(groups_module, "_parallel", lambda worth: chosen.append(decide(worth)) or chosen[-1])
    for rows in (9000, 3000, 12_000):
        gid, loss, marks = _unit(rng, groups, rows, hot=500)
        for table, threads, least in ((serial, 1 << 20, 1 << 40), (parallel, 1, 1)):
            monkeypatch.setattr(groups_module, "PARALLEL_FOLD_THREADS", threads)
            monkeypatch.setattr(groups_module, "PARALLEL_FOLD_ROWS", least)
            monkeypatch.setattr(groups_module, "PARALLEL_CLOSE_GROUPS", least)
            for lo in range(0, rows, rows if whole_unit else 2500):
                hi = min(rows, lo + (rows if whole_unit else 2500))
                table.fold(gid[lo:hi], loss[lo:hi], np.ones(hi - lo), marks[lo:hi], whole_unit=whole_unit)
            table.close_blocks()
    assert True in chosen and False in chosen  # both paths ran
    _assert_same_state(parallel, serial)
    for g in range(groups):
        np.testing.assert_array_equal(parallel.totals(g), serial.totals(g))
