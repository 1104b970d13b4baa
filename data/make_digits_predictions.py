"""Make ``digits_predictions.parquet``: a real model's predictions on scikit-learn's digits.

A multinomial logistic regression is fitted on the first half of the 1,797 digit images and
predicts the held-out half. Columns: ``label`` (int64 true digit), ``logits`` and ``probs``
(``fixed_size_list<float32>[10]``: decision function and ``predict_proba``), ``split``.
Run: ``python data/make_digits_predictions.py`` (needs scikit-learn).
"""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression


def main() -> None:
    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    half = len(y) // 2
    model = LogisticRegression(max_iter=2000, C=0.5).fit(x[:half], y[:half])
    held_out = x[half:]
    logits = model.decision_function(held_out).astype(np.float32)
    probs = model.predict_proba(held_out).astype(np.float32)
    table = pa.table(
        {
            "label": pa.array(y[half:], pa.int64()),
            "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), 10),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), 10),
            "split": pa.array(["test"] * len(held_out)),
        }
    )
    pq.write_table(table, Path(__file__).with_name("digits_predictions.parquet"))


if __name__ == "__main__":
    main()
