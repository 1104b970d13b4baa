"""What a model-evaluation report knows about one file or group, gathered batch by batch.

:class:`EntryStats` keeps only fixed-size state (sums, histograms, per-class and per-bin counts,
the ``k`` worst rows), so a report costs one streaming pass per file and bounded memory.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

#: Edges of the per-row loss histogram: four bins per decade from 1e-6 to 1e3. Losses below the
#: first edge (exact zeros included) fall in the first bin, above the last in the last.
LOSS_EDGES = np.logspace(-6, 3, 37)

#: z of the two-sided 95% normal interval.
Z95 = 1.959963984540054


def confidence_of(kind: str, inputs: str, x: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Each row's confidence: the probability of its predicted class (``predicted``, from the
    scoring pass).

    Multiclass/soft: softmax of logits (``exp`` of log-probabilities, probabilities as given);
    binary: ``max(p, 1 - p)``.
    """
    if kind == "binary":
        p = 1.0 / (1.0 + np.exp(-x.astype(np.float64))) if inputs == "logits" else x.astype(np.float64)
        return np.maximum(p, 1.0 - p)
    top = x[np.arange(len(x)), predicted].astype(np.float64)
    if inputs == "logits":
        with np.errstate(invalid="ignore", over="ignore"):
            return 1.0 / np.exp(x - top[:, None]).sum(axis=1, dtype=np.float64)
    if inputs == "logprobs":
        return np.exp(top)
    return top


class EntryStats:
    """Streaming statistics of one report entry (a file, or a group of rows)."""

    def __init__(self, num_classes: int, bins: int, top_k: int):
        self.rows = 0
        self.loss_sum = 0.0
        self.loss_sq_sum = 0.0
        self.nan = 0
        self.class_count = np.zeros(num_classes, dtype=np.int64)
        self.class_loss = np.zeros(num_classes)
        self.class_correct = np.zeros(num_classes, dtype=np.int64)
        self.histogram = np.zeros(len(LOSS_EDGES) + 1, dtype=np.int64)
        self.bin_count = np.zeros(bins, dtype=np.int64)
        self.bin_confidence = np.zeros(bins)
        self.bin_correct = np.zeros(bins)
        self.top_k = top_k
        self.worst: pa.Table | None = None

    def add(self, losses, truth, confidence, predicted, rows_table) -> None:
        """Add scored rows: their losses, true and predicted classes, confidences, and
        ``rows_table(positions)``, the shown columns of those of the rows (asked only for the
        candidates for the worst rows)."""
        finite = np.isfinite(losses)
        self.nan += int((~finite).sum())
        good = losses[finite].astype(np.float64)
        self.rows += good.size
        self.loss_sum += float(good.sum())
        self.loss_sq_sum += float(np.square(good).sum())
        self.histogram += np.bincount(np.searchsorted(LOSS_EDGES, good), minlength=len(LOSS_EDGES) + 1)
        classes = self.class_count.size
        truth_f, correct_f = truth[finite], (predicted == truth)[finite]
        self.class_count += np.bincount(truth_f, minlength=classes)[:classes]
        self.class_loss += np.bincount(truth_f, weights=good, minlength=classes)[:classes]
        self.class_correct += np.bincount(truth_f, weights=correct_f, minlength=classes)[:classes].astype(
            np.int64
        )
        bins = self.bin_count.size
        conf = np.nan_to_num(confidence[finite], nan=0.0)
        which = np.minimum((conf * bins).astype(np.int64), bins - 1)
        self.bin_count += np.bincount(which, minlength=bins)
        self.bin_confidence += np.bincount(which, weights=conf, minlength=bins)
        self.bin_correct += np.bincount(which, weights=correct_f, minlength=bins)
        self._keep_worst(losses, rows_table)

    def _keep_worst(self, losses, rows_table) -> None:
        order_key = np.nan_to_num(losses.astype(np.float64), nan=np.inf)
        pick = np.arange(order_key.size)
        if order_key.size > self.top_k:
            pick = np.sort(np.argpartition(-order_key, self.top_k - 1)[: self.top_k])
        candidates = rows_table(pick)
        table = candidates if self.worst is None else pa.concat_tables([self.worst, candidates])
        key = np.nan_to_num(table["loss"].to_numpy(zero_copy_only=False), nan=np.inf)
        order = np.argsort(-key, kind="stable")[: self.top_k]
        self.worst = table.take(pa.array(order))

    def summary(self) -> dict:
        """Mean, standard error and 95% interval of the per-row losses; calibration error."""
        n = self.rows
        mean = self.loss_sum / n if n else math.nan
        variance = max(self.loss_sq_sum / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else math.nan
        stderr = math.sqrt(variance / n) if n > 1 else math.nan
        total = self.bin_count.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            gaps = np.abs(self.bin_correct - self.bin_confidence)  # n_b * |acc_b - conf_b|
        ece = float(gaps.sum() / total) if total else math.nan
        return {
            "row_mean": mean,
            "stderr": stderr,
            "ci95": [mean - Z95 * stderr, mean + Z95 * stderr],
            "ece": ece,
            "nonfinite_rows": self.nan,
        }

    def per_class(self, names) -> list[dict]:
        out = []
        for c, name in enumerate(names):
            count = int(self.class_count[c])
            out.append(
                {
                    "class": name,
                    "count": count,
                    "mean_loss": float(self.class_loss[c] / count) if count else math.nan,
                    "accuracy": float(self.class_correct[c] / count) if count else math.nan,
                }
            )
        return out

    def reliability(self) -> list[dict]:
        bins = self.bin_count.size
        out = []
        for b in range(bins):
            count = int(self.bin_count[b])
            out.append(
                {
                    "bin": [b / bins, (b + 1) / bins],
                    "count": count,
                    "confidence": float(self.bin_confidence[b] / count) if count else math.nan,
                    "accuracy": float(self.bin_correct[b] / count) if count else math.nan,
                }
            )
        return out
