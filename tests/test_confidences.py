"""Each row's confidence (its predicted class's probability) from the scoring pass itself, on
every kernel path: binary logits and probabilities, multiclass rows (row by row, few classes
transposed, class-major input, pieces of a batch), soft targets, log-probabilities,
probabilities, float16/32/64, ignored rows and non-finite rows."""

from __future__ import annotations

import numpy as np
import pytest

from fastxent import backends, engine
from fastxent.spec import LossSpec
from fastxent.validate import batch as validated

TOLERANCE = {np.float16: 1e-6, np.float32: 1e-6, np.float64: 1e-12}


def scored_rows(spec: LossSpec, kind: str, x, y) -> engine.RowValues:
    """The row values one scoring pass gives, predictions and confidences asked for."""
    n = x.shape[0]
    values = engine.RowValues.empty(n, predicted=True, confidence=True)
    batch = validated(spec, kind, x, y, None, None)
    for _ in backends.select("cpu").partials(spec, batch, 0, values, True):
        pass
    return values


def top_probability(x: np.ndarray, inputs: str) -> np.ndarray:
    """Float64 reference: the probability of each row's first maximum."""
    x = x.astype(np.float64)
    top = x.max(axis=1)
    if inputs == "probs":
        return top
    if inputs == "logprobs":
        return np.exp(top)
    with np.errstate(invalid="ignore"):
        return 1.0 / np.exp(x - top[:, None]).sum(axis=1)


def close(got: np.ndarray, want: np.ndarray, dtype) -> None:
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=TOLERANCE[dtype], atol=0)
    np.testing.assert_array_equal(np.isnan(got), ~finite)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 5000, 2 * 2048 + 17])
def test_binary_logit_confidence_is_sigmoid_of_the_absolute_logit(dtype, rows):
    """``max(p, 1 - p) = sigmoid(|x|)`` to a few ulp of float64 whatever the logit's type, on
    the fused block path and the general one (partial blocks), infinities and NaN included."""
    rng = np.random.default_rng(rows)
    ends = np.array([0.0, -0.0, 40.0, -40.0, 800.0, -800.0, np.inf, -np.inf, np.nan])
    x = np.concatenate([rng.normal(0, 6, rows), ends]).astype(dtype)
    y = rng.integers(0, 2, x.shape[0]).astype(np.float64)
    values = scored_rows(LossSpec("binary"), "binary", x, y)
    v = np.abs(x.astype(np.float64))
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-v))
    finite = np.isfinite(v)
    out = values.confidence
    assert (np.abs(out[finite] - want[finite]) <= 2 * np.spacing(want[finite])).all()
    np.testing.assert_array_equal(out[~finite], [1.0, 1.0, np.nan])
    np.testing.assert_array_equal(values.predicted, x > 0)


@pytest.mark.parametrize("rules", ["sklearn", "torch"])
def test_binary_probability_confidence_is_its_larger_side(rules):
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.random(3000), [0.0, 1.0, 0.5]])
    y = rng.integers(0, 2, p.shape[0])
    values = scored_rows(LossSpec("binary", inputs="probs", probs_rules=rules), "binary", p, y)
    np.testing.assert_array_equal(values.confidence, np.maximum(p, 1.0 - p))


def test_multilabel_rows_have_no_confidence():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(300, 3)), rng.integers(0, 2, (300, 3)).astype(np.float64)
    values = scored_rows(LossSpec("binary"), "multilabel", x, y)
    assert np.isnan(values.confidence).all()


def multiclass_rows(rng, n: int, classes: int, dtype) -> np.ndarray:
    """Logits of every kind of row: spread, confident (``Z - 1`` down to 1e-8), tied maxima,
    -inf classes, a NaN, +inf and all -inf rows."""
    x = rng.normal(0, 3, (n, classes))
    x[: n // 4, 0] += 25.0  # confident rows
    x[n // 4 : n // 2, 1] = x[n // 4 : n // 2, 2] = 40.0  # two tied maxima
    x[n // 2 : n // 2 + 10, 3] = -np.inf
    x = x.astype(dtype)
    x[-1, 1], x[-2, 2], x[-3, :] = np.nan, np.inf, -np.inf
    return x


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("classes", [5, 16, 17, 100, 1000])
@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_multiclass_confidence_is_one_over_z(dtype, classes, layout):
    """``1 / Z`` from the loss's own sums, on the row, transposed (C <= 16) and class-major
    paths, within the accuracy promise of the float64 softmax; NaN where the maximum is not
    finite. The predictions are np.argmax's."""
    rng = np.random.default_rng(classes)
    n = 2 * 2048 + 33
    x = multiclass_rows(rng, n, classes, dtype)
    if layout == "columns":
        x = np.asfortranarray(x)
    y = rng.integers(0, classes, n)
    y[::7] = -100  # ignored rows are predicted and given a confidence all the same
    values = scored_rows(LossSpec("multiclass"), "multiclass", x, y)
    close(values.confidence, top_probability(x, "logits"), dtype)
    np.testing.assert_array_equal(values.predicted, np.argmax(x, axis=1))


def test_confidences_of_a_batch_scored_in_pieces():
    """Few, large rows are scored in pieces of equal rows (blocks.piece_count): the same values."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 4, (300, 4000)).astype(np.float32)
    y = rng.integers(0, 4000, 300)
    values = scored_rows(LossSpec("multiclass"), "multiclass", x, y)
    close(values.confidence, top_probability(x, "logits"), np.float32)


@pytest.mark.parametrize("inputs", ["logprobs", "probs"])
@pytest.mark.parametrize("classes", [4, 40])
@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_multiclass_confidence_of_probabilities(inputs, classes, layout):
    rng = np.random.default_rng(classes)
    p = rng.dirichlet(np.ones(classes), 3000)
    x = np.log(p) if inputs == "logprobs" else p
    if layout == "columns":
        x = np.asfortranarray(x)
    y = rng.integers(0, classes, 3000)
    values = scored_rows(LossSpec("multiclass", inputs=inputs), "multiclass", x, y)
    close(values.confidence, top_probability(x, inputs), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_target_confidence(dtype):
    rng = np.random.default_rng(11)
    x = multiclass_rows(rng, 3000, 12, dtype)
    t = rng.dirichlet(np.ones(12), 3000)
    values = scored_rows(LossSpec("soft"), "soft", x, t)
    close(values.confidence, top_probability(x, "logits"), dtype)
