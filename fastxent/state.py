"""The mergeable scoring state (:class:`Accumulator`) and its result (:class:`Score`).

Totals are bit-identical whatever the batch sizes, the thread count, or how the rows were split
between accumulators that are merged later (in any order), provided each batch says where its
rows sit in the stream (``offset``; by default batches follow each other). How: see
:mod:`fastxent.kernels.blocks` — rows are summed in fixed blocks of the stream, blocks exactly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from . import backends, engine, validate
from .exact import ExactSum
from .kernels.codes import BLOCK_ROWS, COUNT_FIELDS, N_COUNTS, N_SUMS
from .spec import LossSpec


def standard_error(total, weight, loss_sq, loss_den, den_sq, rows):
    """The standard error of ``loss = total / weight`` over ``rows`` scored rows, from the sums
    of each row's loss ``a_i`` and denominator ``d_i`` and their products (NumPy arrays of
    groups, or floats).

    ``SE = sqrt(n / (n - 1) * sum_i (a_i - L d_i)**2) / sum_i d_i`` with ``L = total / weight``:
    the ratio estimator's, which for a plain mean (``d_i = 1``) is the sample standard deviation
    over ``sqrt(n)``, as lm-evaluation-harness prints it. ``sum (a - L d)**2`` is expanded as
    ``sum a**2 - 2 L sum a d + L**2 sum d**2`` (a rounding below zero counts as zero). NaN for
    fewer than two rows, or where the loss is not finite.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n = np.asarray(rows, dtype=np.float64)
        ratio = np.float64(total) / np.float64(weight)
        spread = np.maximum(np.float64(loss_sq) - 2.0 * ratio * loss_den + ratio * ratio * den_sq, 0.0)
        error = np.sqrt(spread * n / (n - 1.0)) / np.float64(weight)
        error = np.where((n >= 2) & np.isfinite(ratio), error, np.nan)
    return float(error) if error.ndim == 0 else error


@dataclass(frozen=True, repr=False)
class Score:
    """The result of scoring: the loss as the reference library defines it, and counts.

    ``loss = total / weight`` (torch's mean: over non-ignored rows weighted by class weight;
    sklearn's: over sample weights; binary: over elements). NaN when nothing was scored.
    ``accuracy = correct / judged`` (argmax for multiclass, per element for binary),
    ``perplexity = exp(loss)`` for multiclass input. ``stderr`` is the standard error of
    ``loss`` over the scored rows (:func:`standard_error`; NaN below two rows). ``groups``
    maps each group's key to its Score (a :class:`~fastxent.group_scores.GroupScores` from
    ``group_by``); ``classes`` lists the class names of a target of names in class-index order
    (``None`` for class indices). ``readers`` counts the Parquet column chunks each reader read
    (``{"pages": n, "pyarrow": m}``, see :mod:`fastxent.io.pages`; empty for other sources).

    Examples
    --------
    >>> Score(loss=0.5, total=1.0, weight=2.0, rows=2, scored=2, ignored=0, nulls=0,
    ...       nonfinite=0, accuracy=1.0, perplexity=None, kind="binary").to_dict()["loss"]
    0.5
    """

    #: The fields that are statistics of the rows (every group has its own), in output order.
    STATS: ClassVar[tuple[str, ...]] = (
        "loss",
        "stderr",
        "total",
        "weight",
        "rows",
        "scored",
        "ignored",
        "nulls",
        "nonfinite",
        "accuracy",
        "perplexity",
    )
    #: The fields that describe the run; a group shares its run's, so its records leave them out.
    RUN: ClassVar[tuple[str, ...]] = ("kind", "device", "elapsed_s", "rows_per_s", "bytes_per_s")

    loss: float
    total: float
    weight: float
    rows: int
    scored: int
    ignored: int
    nulls: int
    nonfinite: int
    accuracy: float
    perplexity: float | None
    kind: str
    stderr: float = math.nan
    device: str = "cpu"
    elapsed_s: float = 0.0
    rows_per_s: float = 0.0
    bytes_per_s: float = 0.0
    groups: Mapping = field(default_factory=dict)
    classes: list | None = None
    readers: Mapping = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The statistics, the run's fields, ``classes``, and ``groups`` as a list of records
        ``{"key": {column: value, ...}, <statistics>}`` in key order (keys keep their types)."""
        out = {name: getattr(self, name) for name in (*self.STATS, *self.RUN)}
        out["classes"] = None if self.classes is None else list(self.classes)
        out["groups"] = self.groups.records() if self.groups else []
        out["readers"] = dict(self.readers)
        return out

    def to_json(self, **kwargs) -> str:
        """:meth:`to_dict` as JSON: NaN as ``null``, infinities as ``"inf"``/``"-inf"``, dates
        and times of group keys in ISO 8601, other non-JSON keys as text. ``kwargs`` go to
        ``json.dumps``."""

        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        def text(value):
            return value.isoformat() if hasattr(value, "isoformat") else str(value)

        return json.dumps(clean(self.to_dict()), default=text, **kwargs)

    def to_arrow(self):
        """A ``pyarrow.Table`` of the groups, one row each in key order (the key columns, then
        :attr:`STATS`); without groups, one row: the total."""
        if self.groups:
            return self.groups.to_arrow()
        import pyarrow as pa

        return pa.table({name: pa.array([getattr(self, name)], self.stat_type(name)) for name in self.STATS})

    def to_pandas(self):
        """:meth:`to_arrow` as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    @staticmethod
    def stat_type(name: str):
        """The Arrow type of a statistic's column: counts ``int64``, the rest ``float64``."""
        import pyarrow as pa

        return pa.int64() if name in ("rows", "scored", "ignored", "nulls", "nonfinite") else pa.float64()

    def listed_classes(self, shown: int = 10) -> str:
        """``classes`` as one line: all of them, or the first and the last when there are many."""
        names = [str(c) for c in self.classes]
        if len(names) <= shown:
            return ", ".join(names)
        return f"{', '.join(names[: shown - 1])}, ..., {names[-1]} ({len(names):,} classes)"

    def __repr__(self) -> str:
        lines = [f"Score({self.kind}, {self.device})", f"  loss        {self.loss:.6g} ± {self.stderr:#.2g}"]
        lines.append(f"  accuracy    {self.accuracy:.6g}")
        if self.perplexity is not None:
            lines.append(f"  perplexity  {self.perplexity:.6g}")
        lines.append(
            f"  rows        {self.rows:,}: {self.scored:,} scored, {self.ignored:,} ignored, "
            f"{self.nulls:,} null, {self.nonfinite:,} non-finite"
        )
        if self.classes is not None:
            lines.append(f"  classes     {self.listed_classes()}")
        if self.groups:
            shown = ", ".join(f"{key!r}: {self.groups[key].loss:.6g}" for key in list(self.groups)[:5])
            more = ", ..." if len(self.groups) > 5 else ""
            lines.append(f"  groups      {len(self.groups):,} ({shown}{more})")
        if self.elapsed_s:
            lines.append(
                f"  time        {self.elapsed_s:.3g} s ({self.rows_per_s:,.0f} rows/s, "
                f"{self.bytes_per_s / 1e6:,.0f} MB/s)"
            )
        return "\n".join(lines)


class Accumulator:
    """Mergeable, picklable state of one loss over a stream of batches.

    Parameters
    ----------
    kind : {"multiclass", "soft", "binary", "multilabel"}
        Class-index targets, probability targets of the input's shape, or one value per
        element (binary: 1-D input; multilabel: ``(N, C)``).
    inputs : {"logits", "logprobs", "probs"}
        Logits follow torch, log-probabilities ``nll_loss``, probabilities scikit-learn
        ``log_loss`` (``probs_rules="torch"``: ``binary_cross_entropy``).
    class_weight, ignore_index, label_smoothing, pos_weight
        As the torch arguments ``weight``, ``ignore_index``, ``label_smoothing``, ``pos_weight``.
    device : {"cpu", "cuda"}
        Where batches are scored. On the GPU, each 2048-row block is summed in a fixed order
        and the blocks exactly, so the same rows give the same bits on every run and for any
        batches (but not the CPU's bits: the results agree within float rounding).
    standard_error : bool
        Keep the sums :attr:`Score.stderr` needs (default); without them ``stderr`` is NaN, and
        in-memory binary input scores about a third faster.

    Examples
    --------
    >>> acc = Accumulator("multiclass")
    >>> acc.update(np.array([[1.0, 2.0, 0.1]]), np.array([1]))
    >>> round(acc.result().loss, 4)
    0.4170
    """

    def __init__(
        self,
        kind: str = "multiclass",
        *,
        inputs: str = "logits",
        class_weight=None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        pos_weight=None,
        probs_rules: str = "sklearn",
        device: str = "cpu",
        standard_error: bool = True,
    ):
        validate.choice("kind", kind, ("multiclass", "soft", "binary", "multilabel"))
        validate.choice("device", device, ("cpu", "cuda"))
        validate.choice("inputs", inputs, ("logits", "logprobs", "probs"))
        validate.choice("probs_rules", probs_rules, ("sklearn", "torch"))
        validate.smoothing(label_smoothing)
        family = "binary" if kind in ("binary", "multilabel") else kind
        if family == "binary" and inputs == "logprobs":
            raise validate.InputValueError(
                "`inputs='logprobs'` is for multiclass input; binary and multilabel input take "
                "logits or probabilities."
            )
        self.kind = kind
        self.device = device
        self._backend = backends.select(device)
        self.spec = LossSpec(
            family=family,
            inputs=inputs,
            class_weight=validate.vector("weight", class_weight),
            ignore_index=validate.index_argument("ignore_index", ignore_index),
            label_smoothing=float(label_smoothing),
            pos_weight=validate.vector("pos_weight", pos_weight),
            probs_rules=probs_rules,
        )
        self._loss = ExactSum()
        self._den = ExactSum()
        # the products the standard error needs; None: not asked for (the torch-like functions
        # return the loss alone, and these cost 0.6 ns a row of in-memory binary input)
        self._moments = [ExactSum() for _ in range(N_SUMS - 2)] if standard_error else None
        self._counts = np.zeros(N_COUNTS, dtype=np.int64)
        self._rows = 0
        self._nulls = 0
        self._bytes = 0
        self._fragments: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self._next_offset = 0
        self._offsets_given = False  # rows placed by the caller (`offset=`) in a shared stream
        self._elapsed = 0.0

    def update(
        self,
        input,
        target,
        sample_weight=None,
        *,
        weight=None,
        offset: int | None = None,
        where=None,
        input_name: str = "input",
        row_values: engine.RowValues | None = None,
    ) -> None:
        """Add one batch: ``input`` (N, C) or (N,), ``target`` as ``kind`` says.

        ``sample_weight`` (N,) scales each row's loss and its share of the denominator;
        ``weight`` is torch's element weight for binary/multilabel input (broadcastable to the
        input, scales the loss only). ``offset``: the batch's first row in the stream (default:
        right after the previous batch); blocks of the stream are summed as a whole, so splits
        at any row give the same bits. ``where(row)`` and ``input_name`` word error messages in
        the caller's terms (``"at row 7 of 'a.parquet'"``, ``"logits"``). ``row_values``
        (:class:`~fastxent.engine.RowValues` of N rows), when given, receives each row's loss,
        denominator, marks and prediction from the same kernel pass (on the GPU: from the CPU
        kernels, a second pass).
        """
        started = time.perf_counter()
        batch = self._validated(input, target, sample_weight, weight, where, input_name)
        if offset is not None:
            self._offsets_given = True
        offset = self._next_offset if offset is None else int(offset)
        if offset < 0:
            raise validate.InputValueError(f"`offset` must be >= 0, got {offset}.")
        n = batch[0].shape[0]
        moments = self._moments is not None
        for position, rows, first, segments in self._backend.partials(
            self.spec, batch, offset, row_values, moments
        ):
            self._add_segments(position, rows, first, segments)
        self._next_offset = offset + n
        self._rows += batch[0].shape[0]
        self._bytes += batch[0].nbytes + batch[1].nbytes
        self._elapsed += time.perf_counter() - started

    def row_losses(self, input, target, sample_weight=None, *, weight=None, where=None, input_name="input"):
        """Per-row losses of a batch (``reduction="none"``), without adding it to the state.

        float32 for float16/float32 input, float64 for float64 input.
        """
        batch = self._validated(input, target, sample_weight, weight, where, input_name)
        out = np.empty(batch[0].shape[0], dtype=engine.compute_dtype(np.dtype(batch[0].dtype)))
        self._backend.row_losses(self.spec, batch, out)
        return out

    def _validated(self, input, target, sample_weight, weight, where, input_name):
        return self._backend.validated(
            self.spec, self.kind, input, target, sample_weight, weight, where, input_name
        )

    def close_blocks(self) -> None:
        """End the current stream of rows: sum its unfinished blocks now; later rows start a new
        stream at offset 0.

        Scoring calls this at the end of each unit of a source (a Parquet row group, an IPC
        record batch, a CSV file), so that units can be scored by different workers and merged
        with the same bits as one process scoring them all.
        """
        for block in sorted(self._fragments):
            self._add_block(self._fragments.pop(block), self._sums())
        self._next_offset = 0

    def add_unit(self, sums: np.ndarray, counts: np.ndarray, rows: int, nbytes: int) -> None:
        """Add a whole unit of ``rows`` rows scored elsewhere (:mod:`fastxent.run.fused`): each
        of its blocks' :data:`~.kernels.codes.SUM_FIELDS` (a row each, every block closed, the
        last one partial) and its counts, as :meth:`update` and :meth:`close_blocks` would
        have added them. Only between units: no block of the stream may be open."""
        if self._fragments or self._next_offset:
            raise RuntimeError("add_unit between units only: a block of the stream is open")
        for q, exact in enumerate(self._sums()):
            exact.add(sums[:, q])
        self._counts += counts
        self._rows += rows
        self._bytes += nbytes

    def count_nulls(self, rows: int, nbytes: int = 0) -> None:
        """Count ``rows`` rows that were read but skipped for a null (``Score.nulls``)."""
        self._rows += rows
        self._nulls += rows
        self._bytes += nbytes

    def _add_segments(self, offset: int, rows: int, first: int, segments) -> None:
        """Add a batch's ``(sums, counts, edge_loss, edge_den)`` (:func:`fastxent.engine.run_blocks`
        on the CPU, :func:`fastxent.gpu_engine.run_blocks` on the GPU): whole blocks exactly, the
        rows of partial blocks as fragments."""
        sums, counts, edge_loss, edge_den = segments
        self._counts += counts.sum(axis=0)
        full = slice(1 if first else 0, None)
        tail = (rows - first) % BLOCK_ROWS
        if tail:
            full = slice(full.start, sums.shape[0] - 1)
        for q, exact in enumerate(self._sums()):  # the GPU's sums always hold the products
            exact.add(sums[full, q])
        if first:
            self._add_fragment(offset, edge_loss[:first], edge_den[:first])
        if tail:
            self._add_fragment(
                offset + rows - tail,
                edge_loss[first : first + tail],
                edge_den[first : first + tail],
            )

    def _add_fragment(self, start: int, loss: np.ndarray, den: np.ndarray) -> None:
        """Keep the rows of a partial block; sum the block once all its rows are here."""
        block = start // BLOCK_ROWS
        pieces = self._fragments.setdefault(block, {})
        if start in pieces:
            raise validate.InputValueError(f"rows from {start} were added twice (overlapping `offset`s).")
        pieces[start] = (loss.copy(), den.copy())
        if sum(p[0].size for p in pieces.values()) == BLOCK_ROWS:
            self._add_block(self._fragments.pop(block), self._sums())

    def _sums(self) -> list[ExactSum]:
        """The exact sums of the :data:`~.kernels.codes.SUM_FIELDS`, in that order (the first two
        alone without the standard error)."""
        return [self._loss, self._den, *(self._moments or [])]

    def _add_block(self, pieces, sums: list[ExactSum]) -> None:
        """Add the block whose rows are ``pieces`` (``{start: (loss, den)}``) to ``sums``, summed
        in the order of the device that sums whole blocks, so that a block gets one value
        whatever batches its rows came in (:meth:`~.backends.Backend.block_sums`)."""
        loss, den = self._joined(pieces)
        values = np.empty(N_SUMS)
        self._backend.block_sums(loss, den, values)
        for q, exact in enumerate(sums):
            exact.add(values[q : q + 1])

    @staticmethod
    def _joined(pieces):
        ordered = [pieces[s] for s in sorted(pieces)]
        return (
            np.concatenate([p[0] for p in ordered]),
            np.concatenate([p[1] for p in ordered]),
        )

    def merge(self, other: Accumulator) -> Accumulator:
        """Add another accumulator's rows (same loss); associative and commutative. Returns self.

        An accumulator whose updates never gave ``offset`` is a stream of its own (one per
        process, Dask partition or data loader worker, say): merged anywhere, in any order or
        grouping, its blocks are summed as they stand and the total has the same bits. Updates
        that give ``offset`` place rows in one shared stream (as :func:`fastxent.score` does):
        merged, the pieces of a block are joined and summed as one block, which gives the bits of
        one process scoring the whole stream.

        Both must score the same loss with the same options (kind, inputs, weights, ignore
        index, smoothing): a mean of rows scored under different rules has no meaning.
        """
        if not isinstance(other, Accumulator):
            raise validate.InputTypeError(f"`merge` takes another Accumulator, got {type(other).__name__}.")
        if other is self:
            raise validate.InputValueError(
                "cannot merge an accumulator into itself (its rows would count twice); merge a copy "
                "made with `copy.deepcopy` if that is what you mean."
            )
        if (self._moments is None) != (other._moments is None):
            raise validate.InputValueError(
                "cannot merge an accumulator that keeps the standard error with one that does not; "
                "make both with the same `standard_error=`."
            )
        difference = self._option_difference(other)
        if difference:
            raise validate.InputValueError(f"cannot merge accumulators with different options: {difference}.")
        if other._offsets_given and not self._offsets_given and self._fragments:
            raise validate.InputValueError(
                "cannot merge an accumulator fed with `offset=` into one fed without: its rows sit in "
                "a shared stream that this one's rows do not; pass `offset=` to every update of both, "
                "or to neither."
            )
        for mine, theirs in zip(self._sums(), other._sums(), strict=True):
            mine.merge(theirs)
        self._counts += other._counts
        self._rows += other._rows
        self._nulls += other._nulls
        self._bytes += other._bytes
        self._elapsed += other._elapsed
        if other._offsets_given:
            self._offsets_given = True
            for pieces in other._fragments.values():
                for start, (loss, den) in sorted(pieces.items()):
                    self._add_fragment(start, loss, den)
        else:  # a stream of its own: its partial blocks end here, joined with nobody's rows
            for pieces in other._fragments.values():
                self._add_block(pieces, self._sums())
        return self

    def _option_difference(self, other: Accumulator) -> str:
        """The first option in which ``other`` differs, worded for an error ("" if none)."""
        mine, theirs = self.spec, other.spec
        for name, a, b in (
            ("kind", self.kind, other.kind),
            ("inputs", mine.inputs, theirs.inputs),
            ("probs_rules", mine.probs_rules, theirs.probs_rules),
            ("ignore_index", mine.ignore_index, theirs.ignore_index),
            ("label_smoothing", mine.label_smoothing, theirs.label_smoothing),
        ):
            if a != b:
                return f"{name}={b!r} vs {a!r}"
        for name, a, b in (
            ("class_weight", mine.class_weight, theirs.class_weight),
            ("pos_weight", mine.pos_weight, theirs.pos_weight),
        ):
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                return f"{name}={b.tolist()} vs {a.tolist()}"
        return ""

    def totals(self) -> tuple[float, float]:
        """``(sum of losses, sum of denominators)``, each correctly rounded."""
        return tuple(self._values()[:2])

    def _values(self) -> list[float]:
        """The :data:`~.kernels.codes.SUM_FIELDS`, each correctly rounded, open blocks included."""
        sums = [exact.copy() for exact in self._sums()]
        for pieces in self._fragments.values():
            self._add_block(pieces, sums)
        return [exact.value() for exact in sums]

    def result(self) -> Score:
        """The :class:`Score` of everything added so far (the state is not changed)."""
        total, weight, *moments = self._values()
        counts = dict(zip(COUNT_FIELDS, (int(c) for c in self._counts), strict=True))
        stderr = standard_error(total, weight, *moments, counts["scored"]) if moments else math.nan
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            loss = float(np.float64(total) / np.float64(weight))  # 0/0 is NaN, as in torch
            perplexity = float(np.exp(loss)) if self.kind == "multiclass" else None
        judged = counts["judged"]
        elapsed = self._elapsed
        return Score(
            loss=loss,
            total=total,
            weight=weight,
            rows=self._rows,
            scored=counts["scored"],
            ignored=counts["ignored"],
            nulls=self._nulls,
            nonfinite=counts["nonfinite"],
            accuracy=counts["correct"] / judged if judged else math.nan,
            perplexity=perplexity,
            kind=self.kind,
            stderr=stderr,
            device=self.device,
            elapsed_s=elapsed,
            rows_per_s=self._rows / elapsed if elapsed > 0 else 0.0,
            bytes_per_s=self._bytes / elapsed if elapsed > 0 else 0.0,
        )

    @property
    def unnormalised_rows(self) -> int:
        """Rows of probabilities that do not sum to one (scikit-learn warns about them)."""
        return int(self._counts[COUNT_FIELDS.index("unnormalised")])
