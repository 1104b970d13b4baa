"""What a model-evaluation report knows about one file or group, gathered batch by batch.

:class:`EntryTable` keeps only fixed-size state per entry (sums, histograms, per-class and per-bin
counts, the ``k`` worst rows), so a report costs one streaming pass per file and bounded memory;
:mod:`~fastxent.kernels.tally` adds a batch's rows to every entry in one pass (two halves of it,
which may run at once).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ..kernels.tally import binade_starts, tally_classes, tally_losses
from .worst import WorstRows, rank_keys, top_positions

#: Edges of the per-row loss histogram: four bins per decade from 1e-6 to 1e3. Losses below the
#: first edge (exact zeros included) fall in the first bin, above the last in the last.
LOSS_EDGES = np.logspace(-6, 3, 37)
#: The edges as :func:`~fastxent.kernels.tally.tally_losses` takes them: padded, with the count
#: of edges below each binade.
_PADDED_EDGES = np.concatenate([LOSS_EDGES, [np.inf, np.inf]])
_EDGE_STARTS = binade_starts(LOSS_EDGES)

#: z of the two-sided 95% normal interval.
Z95 = 1.959963984540054


class EntryTable:
    """Streaming statistics of every entry (a file, or each group of rows), entry ``e`` being row
    ``e`` of each array; grows as entries appear.

    Only fixed-size state per entry: sums, the loss histogram, per-class and per-bin counts, and
    the ``top_k`` worst rows (a table each; a batch's rows are only turned into table rows when
    they reach an entry's current k-th worst loss).
    """

    def __init__(self, num_classes: int, bins: int, top_k: int, class_names: pa.Array | None = None):
        self.num_classes, self.num_bins, self.top_k = num_classes, bins, top_k
        self.class_names = class_names  # what the worst rows show for their classes (None: numbers)
        self.totals = np.zeros((0, 4))  # rows, sum of losses, sum of squares, non-finite
        self.histogram = np.zeros((0, len(LOSS_EDGES) + 1), dtype=np.int64)
        self.classes = np.zeros((0, num_classes, 3))  # rows, sum of losses, correct
        self.bins = np.zeros((0, bins, 3))  # rows, sum of confidences, correct
        self.threshold = np.zeros(0)
        self.worst: list[WorstRows] = []

    def _fit(self, size: int) -> None:
        grow = size - len(self.worst)
        if grow <= 0:
            return
        self.totals = np.concatenate([self.totals, np.zeros((grow, 4))])
        self.histogram = np.concatenate([self.histogram, np.zeros((grow, len(LOSS_EDGES) + 1), np.int64)])
        self.classes = np.concatenate([self.classes, np.zeros((grow, self.num_classes, 3))])
        self.bins = np.concatenate([self.bins, np.zeros((grow, self.num_bins, 3))])
        self.worst += [WorstRows(self.top_k) for _ in range(grow)]
        self.threshold = np.concatenate([self.threshold, [w.threshold for w in self.worst[-grow:]]])

    def add(self, entry, entries, losses, truth, confidence, predicted, skip, rows_of, helper=None) -> None:
        """Add a batch's rows but the ``skip`` ones: each row's entry id (below ``entries``),
        loss, true and predicted class and confidence; ``rows_of(positions)`` gives those rows'
        numbers in the source and their shown columns (``{name: pa.Array}``), asked only for the
        candidates for the worst rows. ``helper`` (an executor), when given, takes the per-class
        and calibration half of the tally (:func:`~fastxent.kernels.tally.tally_classes`) while
        this thread takes the losses' half and the worst rows: the same sums either way."""
        self._fit(entries)
        per_class = (entry, losses, truth, confidence, predicted, skip, self.classes, self.bins)
        classes_done = None
        if helper is None:
            tally_classes(*per_class)
        else:
            classes_done = helper.submit(tally_classes, *per_class)
        try:
            worst = np.empty(losses.shape[0], dtype=np.bool_)
            tally_losses(
                entry,
                losses,
                skip,
                _PADDED_EDGES,
                _EDGE_STARTS,
                self.totals,
                self.histogram,
                self.threshold,
                worst,
            )
            self._keep_worst(entry, losses, truth, confidence, predicted, np.flatnonzero(worst), rows_of)
        finally:  # the other half's arrays stay untouched once this returns, raising or not
            if classes_done is not None:
                classes_done.result()

    def _keep_worst(self, entry, losses, truth, confidence, predicted, candidates, rows_of) -> None:
        if not candidates.size:
            return
        order = np.argsort(entry[candidates], kind="stable")  # each entry's candidates, in row order
        candidates = candidates[order]
        ids = entry[candidates]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], ids.size], strict=True):
            rows = candidates[lo:hi]
            key = rank_keys(losses[rows])
            chosen = top_positions(key, self.top_k)
            rows, key = rows[chosen], key[chosen]
            source_rows, shown = rows_of(rows)
            fields = {
                "row": source_rows,
                "target": truth[rows],
                "predicted": predicted[rows],
                "confidence": confidence[rows],
                "loss": losses[rows],
            }
            worst = self.worst[int(ids[lo])]
            worst.merge(key, fields, shown)
            self.threshold[int(ids[lo])] = worst.threshold

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
        return self.worst[e].rows(self.class_names)
