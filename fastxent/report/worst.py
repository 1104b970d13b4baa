"""An entry's ``k`` highest-loss rows, kept as small arrays while the batches stream past."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_LARGEST = np.finfo(np.float64).max


def rank_keys(losses: np.ndarray) -> np.ndarray:
    """The losses as the worst rows are ranked, highest first: NaN above ``+inf``, which is
    above every finite loss (``np.nan_to_num(losses, nan=inf)``, without its passes)."""
    key = np.clip(losses.astype(np.float64), -_LARGEST, _LARGEST)
    key[key != key] = np.inf
    return key


def top_positions(key: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest keys, in position order; of equal keys at the cut, the
    first positions (a plain partition would choose among them arbitrarily)."""
    if key.size <= k:
        return np.arange(key.size)
    if k == 0:
        return np.arange(0)
    cut = np.partition(key, key.size - k)[key.size - k]  # the k-th highest key
    above = np.flatnonzero(key > cut)
    at_cut = np.flatnonzero(key == cut)[: k - above.size]
    return np.sort(np.concatenate([above, at_cut]))


class WorstRows:
    """The ``k`` rows of highest loss so far (ranked by :func:`rank_keys`; of equal losses, the
    earlier rows), as NumPy arrays (``fields``) and Arrow arrays (``shown``: the ``keep``
    columns) of at most ``k`` values each.

    A batch's candidates are merged array by array: building a pyarrow table of them, joining
    it to the entry's and taking from it cost 0.1-0.7 ms a merge (1M x 100 rows in batches of
    20,000 by split: 27 ms of a report's statistics thread).
    """

    def __init__(self, k: int):
        self.k = k
        self.key = np.empty(0)
        self.fields: dict[str, np.ndarray] = {}
        self.shown: dict[str, pa.Array] = {}

    def merge(self, key: np.ndarray, fields: dict[str, np.ndarray], shown: dict[str, pa.Array]) -> None:
        """Offer rows later than every row held: ``key`` (:func:`rank_keys`) and their fields."""
        if self.key.size:
            key = np.concatenate([self.key, key])
            fields = {name: np.concatenate([self.fields[name], values]) for name, values in fields.items()}
            shown = {name: pa.concat_arrays([self.shown[name], values]) for name, values in shown.items()}
        order = np.argsort(-key, kind="stable")[: self.k]  # earlier rows first among equal keys
        self.key = key[order]
        self.fields = {name: values[order] for name, values in fields.items()}
        if shown:
            taken = pa.array(order)
            self.shown = {name: values.take(taken) for name, values in shown.items()}

    @property
    def threshold(self) -> float:
        """The key a row must reach to be a candidate: the k-th highest (``-inf`` until ``k``
        rows are held; ``+inf`` when no row is asked for)."""
        if not self.k:
            return np.inf
        return float(self.key[-1]) if self.key.size == self.k else -np.inf

    def rows(self, class_names: pa.Array | None) -> list[dict]:
        """The rows, highest loss first: ``row``, the shown columns, ``target`` and
        ``predicted`` (class names where the target has them), ``confidence`` and ``loss``."""
        if not self.key.size:
            return []
        columns = {"row": self.fields["row"].tolist()}
        columns.update((name, values.to_pylist()) for name, values in self.shown.items())
        for name in ("target", "predicted"):
            classes = self.fields[name].astype(np.int64)
            columns[name] = classes.tolist() if class_names is None else class_names.take(classes).to_pylist()
        columns["confidence"] = self.fields["confidence"].astype(np.float64).tolist()
        columns["loss"] = self.fields["loss"].astype(np.float64).tolist()
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
