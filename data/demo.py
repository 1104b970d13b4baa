"""Score a prediction file with fastxent's Python API and print the result table.

Usage: ``python data/demo.py data/digits_predictions.parquet``. The file needs an integer
``label`` column and ``logits``/``probs`` list columns (see ``make_digits_predictions.py``).
"""

import sys

import pyarrow.parquet as pq

import fastxent as fx
from fastxent.inputs import as_array


def main(path: str) -> None:
    table = pq.read_table(path)
    label = table["label"]
    acc = fx.Accumulator("multiclass")
    acc.update(as_array("logits", table["logits"]), label.to_numpy())
    score = acc.result()
    rows = [
        ("rows", f"{score.rows}"),
        ("cross_entropy(logits)", f"{score.loss:.6f}"),
        ("log_loss(probs)", f"{fx.log_loss(label, table['probs']):.6f}"),
        ("accuracy", f"{score.accuracy:.4f}"),
        ("perplexity", f"{score.perplexity:.4f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"fastxent {fx.__version__}: {path}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>12}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/digits_predictions.parquet")
