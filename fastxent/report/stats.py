"""What a model-evaluation report knows about one file or group, gathered batch by batch.

:class:`EntryTable` keeps only fixed-size state per entry (sums, histograms, per-class and per-bin
counts, the ``k`` worst rows), so a report costs one streaming pass per file and bounded memory;
:func:`~fastxent.kernels.tally.tally_rows` adds a batch's rows to every entry in one pass.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ..engine import ClassStatistics
from ..kernels.codes import LOG_PROBS, LOGITS, PROBS
from ..kernels.halves import widened
from ..kernels.tally import binade_starts, confidences, tally_rows

#: Edges of the per-row loss histogram: four bins per decade from 1e-6 to 1e3. Losses below the
#: first edge (exact zeros included) fall in the first bin, above the last in the last.
LOSS_EDGES = np.logspace(-6, 3, 37)
#: The edges as :func:`~fastxent.kernels.tally.tally_rows` takes them: padded, with the count
#: of edges below each binade.
_PADDED_EDGES = np.concatenate([LOSS_EDGES, [np.inf, np.inf]])
_EDGE_STARTS = binade_starts(LOSS_EDGES)

#: z of the two-sided 95% normal interval.
Z95 = 1.959963984540054


def confidence_of(kind: str, inputs: str, x: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Each row's confidence: the probability of its predicted class (``predicted``, from the
    scoring pass); see :func:`~fastxent.kernels.tally.confidences`. Rows read in class passes
    (:class:`~fastxent.engine.ClassStatistics`) come with theirs."""
    if isinstance(x, ClassStatistics):
        return x.confidence
    out = np.empty(x.shape[0])
    if kind != "binary" and not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)  # one row at a time: column-major input is transposed once
    code = {"logits": LOGITS, "logprobs": LOG_PROBS}.get(inputs, PROBS)
    confidences(x if x.dtype != np.float16 else widened(x), predicted, code, out)
    return out


class EntryTable:
    """Streaming statistics of every entry (a file, or each group of rows), entry ``e`` being row
    ``e`` of each array; grows as entries appear.

    Only fixed-size state per entry: sums, the loss histogram, per-class and per-bin counts, and
    the ``top_k`` worst rows (a table each; a batch's rows are only turned into table rows when
    they reach an entry's current k-th worst loss).
    """

    def __init__(self, num_classes: int, bins: int, top_k: int):
        self.num_classes, self.num_bins, self.top_k = num_classes, bins, top_k
        self.totals = np.zeros((0, 4))  # rows, sum of losses, sum of squares, non-finite
        self.histogram = np.zeros((0, len(LOSS_EDGES) + 1), dtype=np.int64)
        self.classes = np.zeros((0, num_classes, 3))  # rows, sum of losses, correct
        self.bins = np.zeros((0, bins, 3))  # rows, sum of confidences, correct
        self.threshold = np.zeros(0)
        self.worst: list[pa.Table | None] = []

    def _fit(self, size: int) -> None:
        grow = size - len(self.worst)
        if grow <= 0:
            return
        self.totals = np.concatenate([self.totals, np.zeros((grow, 4))])
        self.histogram = np.concatenate([self.histogram, np.zeros((grow, len(LOSS_EDGES) + 1), np.int64)])
        self.classes = np.concatenate([self.classes, np.zeros((grow, self.num_classes, 3))])
        self.bins = np.concatenate([self.bins, np.zeros((grow, self.num_bins, 3))])
        self.threshold = np.concatenate([self.threshold, np.full(grow, -np.inf)])
        self.worst += [None] * grow

    def add(self, entry, losses, truth, confidence, predicted, skip, rows_table) -> None:
        """Add a batch's rows but the ``skip`` ones: each row's entry id, loss, true and
        predicted class and confidence; ``rows_table(positions)`` gives the shown columns of
        those rows (asked only for the candidates for the worst rows)."""
        self._fit(int(entry.max()) + 1 if entry.size else 0)
        worst = np.empty(losses.shape[0], dtype=np.bool_)
        tally_rows(
            entry,
            losses,
            truth,
            confidence,
            predicted,
            skip,
            _PADDED_EDGES,
            _EDGE_STARTS,
            self.totals,
            self.histogram,
            self.classes,
            self.bins,
            self.threshold,
            worst,
        )
        candidates = np.flatnonzero(worst)
        if not candidates.size:
            return
        order = np.argsort(entry[candidates], kind="stable")  # each entry's candidates, in row order
        candidates = candidates[order]
        ids = entry[candidates]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], ids.size], strict=True):
            self._keep_worst(int(ids[lo]), losses, candidates[lo:hi], rows_table)

    def _keep_worst(self, e: int, losses, rows, rows_table) -> None:
        key = np.nan_to_num(losses[rows].astype(np.float64), nan=np.inf)
        if rows.size > self.top_k:
            rows = np.sort(rows[np.argpartition(-key, self.top_k - 1)[: self.top_k]])
        candidates = rows_table(rows)
        table = candidates if self.worst[e] is None else pa.concat_tables([self.worst[e], candidates])
        key = np.nan_to_num(table["loss"].to_numpy(zero_copy_only=False), nan=np.inf)
        order = np.argsort(-key, kind="stable")[: self.top_k]
        self.worst[e] = table.take(pa.array(order))
        if order.size == self.top_k:
            self.threshold[e] = key[order[-1]]

    def entries(self) -> range:
        return range(len(self.worst))

    def summary(self, e: int) -> dict:
        """Mean, standard error and 95% interval of the per-row losses; calibration error."""
        rows, loss_sum, loss_sq_sum, nonfinite = self.totals[e]
        n = int(rows)
        mean = loss_sum / n if n else math.nan
        variance = max(loss_sq_sum / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else math.nan
        stderr = math.sqrt(variance / n) if n > 1 else math.nan
        count, confidence, correct = self.bins[e].T
        total = count.sum()
        ece = float(np.abs(correct - confidence).sum() / total) if total else math.nan  # n_b |acc_b - conf_b|
        return {
            "row_mean": mean,
            "stderr": stderr,
            "ci95": [mean - Z95 * stderr, mean + Z95 * stderr],
            "ece": ece,
            "nonfinite_rows": int(nonfinite),
        }

    def per_class(self, e: int, names) -> list[dict]:
        out = []
        for c, name in enumerate(names):
            count, loss, correct = self.classes[e, c]
            out.append(
                {
                    "class": name,
                    "count": int(count),
                    "mean_loss": float(loss / count) if count else math.nan,
                    "accuracy": float(correct / count) if count else math.nan,
                }
            )
        return out

    def reliability(self, e: int) -> list[dict]:
        bins = self.num_bins
        out = []
        for b in range(bins):
            count, confidence, correct = self.bins[e, b]
            out.append(
                {
                    "bin": [b / bins, (b + 1) / bins],
                    "count": int(count),
                    "confidence": float(confidence / count) if count else math.nan,
                    "accuracy": float(correct / count) if count else math.nan,
                }
            )
        return out

    def worst_rows(self, e: int) -> list[dict]:
        return self.worst[e].to_pylist() if self.worst[e] is not None else []
