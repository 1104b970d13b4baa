"""The report's worst rows (fastxent/report/worst.py): ranked as one sort of all rows would rank
them, whatever the batches, ties, NaN and infinities."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastxent.report.worst import WorstRows, rank_keys, top_positions


def test_rank_keys_put_nan_above_infinity_above_every_finite_loss():
    losses = np.array([1.0, np.nan, np.inf, -np.inf, 3e38, 0.0, -2.0], dtype=np.float32)
    key = rank_keys(losses)
    np.testing.assert_array_equal(key, np.nan_to_num(losses.astype(np.float64), nan=np.inf))
    assert list(np.argsort(-key, kind="stable")) == [1, 2, 4, 0, 5, 6, 3]


def test_top_positions_keep_the_first_of_equal_keys_at_the_cut():
    key = np.array([1.0, 3.0, 2.0, 2.0, 2.0, 3.0, 2.0])
    assert list(top_positions(key, 4)) == [1, 2, 3, 5]
    assert list(top_positions(key, 10)) == list(range(7))
    assert list(top_positions(key, 0)) == []


def whole_ranking(losses: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the k worst rows by one stable sort of all of them."""
    return np.argsort(-rank_keys(losses), kind="stable")[:k]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.0, np.inf, np.nan]), min_size=0, max_size=200),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    k=st.integers(0, 12),
)
def test_merged_batches_rank_as_one_sort(values, cuts, k):
    """Offered batch by batch, each batch's candidates cut to k first, the rows kept are those
    of one stable sort of all rows (ties: earlier rows first), with their fields and shown
    columns; the threshold is the k-th key once k rows are held."""
    losses = np.array(values, dtype=np.float64)
    bounds = sorted({0, len(losses), *(c for c in cuts if c <= len(losses))})
    worst = WorstRows(k)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        key = rank_keys(losses[lo:hi])
        chosen = top_positions(key, k)
        rows = lo + chosen
        fields = {
            "row": rows,
            "target": rows % 3,
            "predicted": rows % 2,
            "confidence": rows / 10,
            "loss": losses[rows],
        }
        worst.merge(key[chosen], fields, {"id": pa.array([f"r{r}" for r in rows])})
    want = whole_ranking(losses, k)
    got = worst.rows(None)
    assert [r["row"] for r in got] == want.tolist()
    assert [r["id"] for r in got] == [f"r{r}" for r in want]
    assert [r["target"] for r in got] == (want % 3).tolist()
    np.testing.assert_array_equal([r["loss"] for r in got], losses[want])
    if k == 0:
        assert worst.threshold == np.inf
    elif len(want) == k:
        assert worst.threshold == rank_keys(losses)[want[-1]]
    else:
        assert worst.threshold == -np.inf


def test_class_names_stand_for_the_classes():
    worst = WorstRows(2)
    fields = {
        "row": np.array([4, 9]),
        "target": np.array([1, 0], dtype=np.uint8),
        "predicted": np.array([0, 0], dtype=np.int32),
        "confidence": np.array([0.75, 0.5]),
        "loss": np.array([3.0, 1.0], dtype=np.float32),
    }
    worst.merge(rank_keys(fields["loss"]), fields, {})
    rows = worst.rows(pa.array(["cat", "dog"]))
    assert rows == [
        {"row": 4, "target": "dog", "predicted": "cat", "confidence": 0.75, "loss": 3.0},
        {"row": 9, "target": "cat", "predicted": "cat", "confidence": 0.5, "loss": 1.0},
    ]
    assert all(type(r["row"]) is int and type(r["loss"]) is float for r in rows)
    assert WorstRows(3).rows(None) == []


@pytest.mark.parametrize("k", [1, 5])
def test_worst_rows_hold_at_most_k(k):
    worst = WorstRows(k)
    for start in range(0, 50, 10):
        rows = np.arange(start, start + 10)
        losses = np.linspace(1.0, 2.0, 10)
        worst.merge(rank_keys(losses), {"row": rows, "loss": losses}, {})
        assert worst.key.size == min(k, start + 10)
