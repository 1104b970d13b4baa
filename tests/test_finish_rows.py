"""The rows of class-index targets finished from their statistics: the branch-free loops for
logits and log-probabilities without class weights or smoothing (multiclass.unweighted_rows)
against the general loop, which class weights of 1 take, bit for bit."""

import numpy as np
import pytest

from fastxent.kernels import multiclass as mc
from fastxent.kernels.codes import LOG_PROBS, LOGITS, MARK_CORRECT_SHIFT, MARK_IGNORED, MARK_NONFINITE

IGNORE = -100
SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-300, 5e-324, -1e308])


def _statistics(n, rng):
    stats = np.zeros((mc.N_STATS, n))
    stats[mc.D_TARGET] = rng.standard_normal(n) * 3
    stats[mc.LOG_NORM] = rng.random(n) * 2
    stats[mc.CORRECT] = rng.random(n) < 0.5
    k = min(n, SPECIALS.size)
    stats[mc.D_TARGET, :k] = SPECIALS[:k]
    stats[mc.LOG_NORM, n - k :] = SPECIALS[:k]
    return stats


def _finish(stats, targets, class_weight, sample_weight, kind, marking, lo=0):
    n = targets.shape[0]
    loss, den = np.full(n, 7.0), np.full(n, 7.0)
    marks = np.full(n if marking else 0, 99, dtype=np.int32)
    options = (IGNORE, 0.0, kind, 1e-7, 1e-3, np.int64(5))
    counts = mc.finish_index_target_rows(
        stats, targets, class_weight, sample_weight, lo, options, loss, den, marks
    )
    return counts, loss, den, marks


@pytest.mark.parametrize("kind", [LOGITS, LOG_PROBS])
@pytest.mark.parametrize("sampled", [False, True])
@pytest.mark.parametrize("marking", [False, True])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 2048, 2051])
def test_branch_free_rows_are_the_general_loops_bits(kind, sampled, marking, n):
    rng = np.random.default_rng(n + 10 * kind + 100 * sampled)
    stats = _statistics(n, rng)
    targets = rng.integers(0, 5, n)
    targets[rng.random(n) < 0.2] = IGNORE
    lo = 3
    sample_weight = rng.random(n + lo) * 2 if sampled else np.zeros(0)
    fast = _finish(stats, targets, np.zeros(0), sample_weight, kind, marking, lo)
    general = _finish(stats, targets, np.ones(5), sample_weight, kind, marking, lo)
    assert fast[0] == general[0]
    for got, want in zip(fast[1:], general[1:], strict=True):
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


def test_branch_free_rows_by_value():
    stats = np.zeros((mc.N_STATS, 4))
    stats[mc.D_TARGET] = [0.5, 1.0, np.nan, 2.0]
    stats[mc.LOG_NORM] = [0.25, 0.0, 0.0, 1.0]
    stats[mc.CORRECT] = [1.0, 0.0, 1.0, 1.0]
    targets = np.array([1, 2, 0, IGNORE])
    sample_weight = np.array([2.0, 3.0, 1.0, 5.0])
    counts, loss, den, marks = _finish(stats, targets, np.zeros(0), sample_weight, LOGITS, True)
    assert counts == (3, 1, 1, 2, 3, 0)  # scored, ignored, non-finite, correct, judged, unnormalised
    np.testing.assert_array_equal(loss, [1.5, 3.0, np.nan, 0.0])
    np.testing.assert_array_equal(den, [2.0, 3.0, 1.0, 0.0])
    correct = 1 << MARK_CORRECT_SHIFT
    assert marks.tolist() == [correct, 0, MARK_NONFINITE | correct, MARK_IGNORED]
    # log-probabilities: no log Z
    counts, loss, _, _ = _finish(stats, targets, np.zeros(0), np.zeros(0), LOG_PROBS, False)
    np.testing.assert_array_equal(loss, [0.5, 1.0, np.nan, 0.0])
