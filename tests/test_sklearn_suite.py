"""scikit-learn's own ``log_loss`` tests, run with ``fastxent.log_loss`` in its place.

The test functions of ``sklearn/metrics/tests/test_classification.py`` call the module's
``log_loss``; it is swapped for fastxent's, and each test (with each of its parametrizations)
runs as scikit-learn runs it. ``test_log_loss_y_pred_deprecation`` is left out: it tests the
deprecated ``y_pred=`` keyword, which fastxent's signature never had. Skipped without
scikit-learn.
"""

import pytest

import fastxent as fx

suite = pytest.importorskip("sklearn.metrics.tests.test_classification")

NAMES = [
    "test_log_loss",
    "test_log_loss_eps",
    "test_log_loss_not_probabilities_warning",
    "test_log_loss_perfect_predictions",
    "test_log_loss_pandas_input",
    "test_log_loss_warnings",
]


def _calls(name):
    """``(name, kwargs)`` for every parametrization of scikit-learn's test ``name``."""
    calls = [{}]
    for mark in getattr(getattr(suite, name), "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        calls = [
            {**call, **dict(zip(names, values if len(names) > 1 else (values,), strict=True))}
            for call in calls
            for values in mark.args[1]
        ]
    return [pytest.param(name, call, id=f"{name}-{i}") for i, call in enumerate(calls)]


@pytest.mark.parametrize("name, kwargs", [c for n in NAMES for c in _calls(n)])
def test_scikit_learn_log_loss_test(name, kwargs, monkeypatch):
    monkeypatch.setattr(suite, "log_loss", fx.log_loss)
    getattr(suite, name)(**kwargs)


def test_the_suite_still_has_these_tests():
    assert all(callable(getattr(suite, name, None)) for name in NAMES)
    assert "log_loss" in vars(suite)
