"""Issue 15 §6: the loss's standard error, ``Score.stderr`` (± in the table, ``stderr`` in JSON).

``SE = sqrt(n / (n - 1) * sum_i (a_i - L d_i)**2) / sum_i d_i`` over the scored rows, ``a_i`` a
row's loss (times its weights), ``d_i`` its share of the denominator, ``L`` the loss: for a plain
mean, the sample standard deviation over ``sqrt(n)``, as lm-evaluation-harness prints it. Checked
against NumPy on the rows' losses, and for batch, split and group invariance.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.state import standard_error


def _ratio_stderr(a: np.ndarray, d: np.ndarray) -> float:
    """The formula above, in float64 NumPy, two passes (no expansion)."""
    n = a.size
    ratio = a.sum() / d.sum()
    return math.sqrt(n / (n - 1) * ((a - ratio * d) ** 2).sum()) / d.sum()


def test_a_literal_mean_of_four_losses():
    # log-probabilities give each row's loss as -x_y exactly: losses 1, 2, 3, 4
    logprobs = np.log(np.full((4, 2), 0.5))
    logprobs[:, 0] = [-1.0, -2.0, -3.0, -4.0]
    got = fx.score(pa.table({"y": [0, 0, 0, 0], "lp": list(logprobs)}), target="y", logprobs="lp")
    assert got.loss == 2.5
    assert got.stderr == pytest.approx(0.6454972243679028, rel=1e-15)  # sqrt(5/3 / 4)


def test_plain_mean_is_the_sample_deviation_over_root_n():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 6)) * 2
    y = rng.integers(0, 6, 5000)
    rows = fx.cross_entropy(x, y, reduction="none")
    acc = fx.Accumulator()
    acc.update(x, y)
    score = acc.result()
    assert score.stderr == pytest.approx(rows.std(ddof=1) / math.sqrt(rows.size), rel=1e-12)


def test_weights_and_ignored_rows_follow_the_ratio_formula():
    rng = np.random.default_rng(2)
    n, c = 4000, 5
    x = rng.normal(size=(n, c))
    y = rng.integers(0, c, n)
    y[::7] = -100
    class_weight = rng.random(c) + 0.5
    sample_weight = rng.random(n) + 0.1
    acc = fx.Accumulator(class_weight=class_weight)
    acc.update(x, y, sample_weight)
    score = acc.result()
    kept = y != -100
    rows = fx.cross_entropy(x[kept], y[kept], weight=class_weight, reduction="none")  # w_y * l
    a, d = rows * sample_weight[kept], class_weight[y[kept]] * sample_weight[kept]
    assert score.scored == kept.sum()
    assert score.loss == pytest.approx(a.sum() / d.sum(), rel=1e-12)
    assert score.stderr == pytest.approx(_ratio_stderr(a, d), rel=1e-9)


def test_multilabel_rows_are_the_units():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 4))
    t = (rng.random((3000, 4)) < 0.3).astype(np.float64)
    acc = fx.Accumulator(kind="multilabel")
    acc.update(x, t)
    elements = fx.binary_cross_entropy_with_logits(x, t, reduction="none")
    a, d = elements.sum(axis=1), np.full(3000, 4.0)
    assert acc.result().stderr == pytest.approx(_ratio_stderr(a, d), rel=1e-9)


def test_too_few_rows_or_a_nan_loss_give_nan():
    one = fx.Accumulator()
    one.update(np.zeros((1, 3)), np.array([1]))
    assert math.isnan(one.result().stderr) and one.result().loss == pytest.approx(math.log(3))
    nan = fx.Accumulator()
    nan.update(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), np.array([0, 1, 0]))
    assert math.isnan(nan.result().stderr)
    assert math.isnan(standard_error(1.0, 0.0, 1.0, 1.0, 1.0, 5))  # nothing weighed


@pytest.mark.parametrize(
    ("keys", "options"),
    [
        ("abc", {}),  # few groups: the rows partitioned group by group
        ("abcdefg", {"class_weight": [0.5, 2.0, 1.0, 3.0], "ignore_index": 2}),  # a counting sort
    ],
)
def test_the_same_bits_for_any_batches_and_splits(tmp_path, keys, options):
    rng = np.random.default_rng(4)
    n = 9000
    table = pa.table(
        {
            "label": rng.integers(0, 4, n),
            "logits": list(rng.normal(size=(n, 4)).astype(np.float32)),
            "split": rng.choice(list(keys), n),
        }
    )
    pq.write_table(table, tmp_path / "f.parquet", row_group_size=3000)
    path = str(tmp_path / "f.parquet")
    runs = [
        fx.score(path, target="label", logits="logits", group_by="split", batch_rows=b, **options)
        for b in (97, 2048, 9000)
    ]
    for run in runs[1:]:
        assert run.stderr == runs[0].stderr
        for key in keys:
            assert run.groups[key].stderr == runs[0].groups[key].stderr
            assert run.groups[key].loss == runs[0].groups[key].loss
    for key in keys:  # a group's error is its rows' own, scored alone
        rows = table.filter(pa.compute.equal(table["split"], key))
        alone = fx.score(rows, target="label", logits="logits", **options)
        assert runs[0].groups[key].stderr == pytest.approx(alone.stderr, rel=1e-12)
        assert runs[0].groups[key].loss == alone.loss
    # streams of their own (no offsets), merged in another order: the exact sums give the bits
    x = np.stack(table["logits"].to_numpy(zero_copy_only=False))
    y = table["label"].to_numpy()
    parts = []
    for lo, hi in ((0, 5000), (5000, 6001), (6001, n)):
        acc = fx.Accumulator()
        acc.update(x[lo:hi], y[lo:hi])
        parts.append(acc)
    forward, backward = fx.Accumulator(), fx.Accumulator()
    for acc in parts:
        forward.merge(acc)
    for acc in reversed(parts):
        backward.merge(acc)
    assert forward.result().stderr == backward.result().stderr


def test_table_and_json_show_it(tmp_path, capsys):
    import json

    from fastxent.cli import main

    rng = np.random.default_rng(5)
    pq.write_table(
        pa.table({"label": rng.integers(0, 3, 500), "logits": list(rng.normal(size=(500, 3)))}),
        tmp_path / "f.parquet",
    )
    argv = ["score", str(tmp_path / "f.parquet"), "--target", "label", "--logits", "logits"]
    assert main(argv) == 0
    header, total = capsys.readouterr().out.splitlines()[:2]
    want = fx.score(str(tmp_path / "f.parquet"), target="label", logits="logits").stderr
    assert "± stderr" in header and f"±{want:#.2g}" in total.split()
    assert main([*argv, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["stderr"] == want


def test_the_torch_like_functions_skip_it_and_accumulators_say_so():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3000, 3)), rng.integers(0, 3, 3000)
    kept, skipped = fx.Accumulator(), fx.Accumulator(standard_error=False)
    kept.update(x, y)
    skipped.update(x, y)
    assert skipped.result().total == kept.result().total and math.isnan(skipped.result().stderr)
    assert float(fx.cross_entropy(x, y)) == kept.result().loss  # the same bits without the products
    with pytest.raises(fx.InputValueError, match="same `standard_error=`"):
        kept.merge(skipped)
