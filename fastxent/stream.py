"""One scoring run over a stream of record batches: accumulators, groups, nulls, row sinks.

:class:`Run` is what :func:`fastxent.score` and each :mod:`fastxent.dask` task execute: the same
code on one machine and on a cluster, so both give the same bits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputValueError
from .io import columns as colmod
from .io.sinks import AtomicParquetWriter
from .io.sources import Part
from .state import Accumulator


def _group_keys(batch: pa.RecordBatch, names: list[str]):
    """``(inverse, keys)``: each row's group number and the key of each group."""
    codes, dictionaries = [], []
    for name in names:
        encoded = pc.dictionary_encode(batch.column(name), null_encoding="encode")
        codes.append(np.asarray(encoded.indices, dtype=np.int64))
        dictionaries.append(encoded.dictionary.to_pylist())
    stacked = np.stack(codes, axis=1)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    keys = [
        tuple(d[c] for d, c in zip(dictionaries, row, strict=True))
        if len(names) > 1
        else dictionaries[0][row[0]]
        for row in unique
    ]
    return inverse.reshape(-1), keys


def _predicted(plan: colmod.ColumnPlan, x: np.ndarray) -> np.ndarray | None:
    if plan.kind in ("multiclass", "soft"):
        return np.argmax(x, axis=1).astype(np.int32)
    if plan.kind == "binary":
        return (x > (0.0 if plan.inputs == "logits" else 0.5)).astype(np.int8)
    return None


class LossesFile:
    """The ``losses_to`` sink: source row number, ``keep`` columns, loss, predicted class."""

    def __init__(self, writer: AtomicParquetWriter, plan: colmod.ColumnPlan):
        self.writer, self.plan = writer, plan

    def add(self, batch, rows, x, t, losses, groups) -> None:
        out = {"row": pa.array(rows)}
        for name in self.plan.keep:
            out[name] = batch.column(name)
        out["loss"] = pa.array(losses)
        predicted = _predicted(self.plan, x)
        if predicted is not None:
            out["predicted"] = pa.array(predicted)
        self.writer.write(pa.table(out))


class Run:
    """One scoring run: the accumulators, the row sinks, the row bookkeeping.

    A sink's ``add(batch, rows, x, t, losses, groups)`` gets each batch without its null rows:
    the source row numbers, the arrays scored, the per-row losses and ``(inverse, keys)`` of the
    groups (or ``None``).
    """

    def __init__(self, plan, make_acc, sinks, progress):
        self.plan = plan
        self.make_acc = make_acc
        self.total = make_acc()
        self.groups: dict = {}
        self.sinks = sinks
        self.progress = progress
        self.row = 0  # source rows read so far, nulls included
        self.nbytes = 0

    def part(self, part: Part, batch_rows: int, nulls: str, units=None, first_row: int = 0) -> None:
        """Score a part (or the given units of it) whose first row is row ``first_row`` of it.

        Each unit is summed on its own (:meth:`Accumulator.close_blocks` at its end).
        """
        part_row, current = first_row, None
        for unit, batch in part.batches(self.plan.columns(), batch_rows, units):
            if unit != current and current is not None:
                self.close_blocks()
            current = unit
            self.batch(part, part_row, batch, nulls)
            part_row += batch.num_rows
        self.close_blocks()

    def close_blocks(self) -> None:
        self.total.close_blocks()
        for acc in self.groups.values():
            acc.close_blocks()

    def group(self, key) -> Accumulator:
        acc = self.groups.get(key)
        if acc is None:
            acc = self.groups[key] = self.make_acc()
        return acc

    def batch(self, part: Part, part_row: int, batch: pa.RecordBatch, nulls: str) -> None:
        """Score one batch whose first row is row ``part_row`` of ``part``."""
        plan = self.plan
        n, nbytes = batch.num_rows, batch.nbytes
        self.nbytes += nbytes
        groups = _group_keys(batch, plan.group_by) if plan.group_by else None
        kept = None  # positions of the rows without a null (None: all rows)
        null_mask = plan.null_rows(batch)
        if null_mask is not None:
            if nulls == "error":
                first = int(np.flatnonzero(null_mask)[0])
                raise InputValueError(
                    f"row {part_row + first} of '{part.name}' has a null in the predictions, target "
                    "or weight; pass nulls='skip' (--nulls skip) to skip and count such rows."
                )
            self.total.count_nulls(int(null_mask.sum()))
            if groups is not None:
                inverse, keys = groups
                counts = np.bincount(inverse[null_mask], minlength=len(keys))
                for g in np.flatnonzero(counts):
                    self.group(keys[g]).count_nulls(int(counts[g]))
            kept = np.flatnonzero(~null_mask)
            batch = batch.take(pa.array(kept))
            if groups is not None:
                groups = (groups[0][kept], groups[1])
        first_row, self.row = self.row, self.row + n
        if batch.num_rows:
            self._score(part, part_row, first_row, batch, kept, groups)
        if self.progress is not None:
            self.progress.advance(n, nbytes)

    def _score(self, part, part_row, first_row, batch, kept, groups) -> None:
        plan = self.plan

        def where(i: int) -> str:
            return f"at row {part_row + int(i if kept is None else kept[i])} of '{part.name}'"

        x, t, sw = plan.arrays(batch, where)
        self.total.update(x, t, sw, where=where, input_name=plan.input_name)
        if groups is not None:
            inverse, keys = groups
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
            for g, key in enumerate(keys):
                idx = order[bounds[g] : bounds[g + 1]]
                if idx.size:
                    self.group(key).update(x[idx], t[idx], None if sw is None else sw[idx])
        if self.sinks:
            losses = self.total.row_losses(x, t, sw, where=where, input_name=plan.input_name)
            positions = np.arange(batch.num_rows, dtype=np.int64) if kept is None else kept
            for sink in self.sinks:
                sink.add(batch, first_row + positions, x, t, losses, groups)
