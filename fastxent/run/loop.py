"""One scoring run over a stream of record batches: accumulators, groups, nulls, row sinks.

:class:`Run` is what :func:`fastxent.score` and each :mod:`fastxent.dask` task execute: the same
code on one machine and on a cluster, so both give the same bits. Each batch is scored once: the
kernel pass that sums the total also hands back each row's values when groups or sinks need them
(:class:`~fastxent.engine.RowValues`), and the groups and sinks take those.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ..engine import RowValues, compute_dtype
from ..errors import InputValueError
from ..groups import GroupTable
from ..io import columns as colmod
from ..io.pool import pooled_copy, pooled_empty, pooled_range
from ..io.sinks import AtomicTableWriter
from ..io.sources import Part
from ..state import Score
from .finish import finish
from .fused import FusedFile, fused_file
from .wide import UnitStatistics, unit_statistics, wide_units


class BatchRows(NamedTuple):
    """Where a batch's scored rows come from: its row ``i`` is row ``first + p[i]`` of the source
    and row ``part_first + p[i]`` of part ``part``, ``p`` its ``positions`` in the batch read
    (the rows without a null; ``None``: all ``count`` rows, in order).

    Sinks make the numbers they need: a losses file one column, a report only its worst rows'
    (the three int64 arrays made for every batch before cost 0.05 s of 20M rows).
    """

    first: int
    part: str
    part_first: int
    positions: np.ndarray | None
    count: int

    def in_source(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The source's row numbers of the rows ``idx`` of the batch (all rows: ``None``)."""
        return self._numbers(self.first, idx)

    def in_part(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The part's row numbers of the rows ``idx`` of the batch (all rows: ``None``)."""
        return self._numbers(self.part_first, idx)

    def _numbers(self, first: int, idx) -> np.ndarray:
        if self.positions is not None:
            return first + (self.positions if idx is None else self.positions[idx])
        if idx is None:  # every row of the batch
            return pooled_range(first, self.count)
        return first + np.asarray(idx, dtype=np.int64)


def _predicted(plan: colmod.ColumnPlan, values: RowValues) -> np.ndarray | None:
    if plan.kind in ("multiclass", "soft"):
        return values.predicted
    if plan.kind == "binary":
        return pooled_copy(values.predicted, np.int8)
    return None  # multilabel: one prediction per class, none per row


def _loss_dtype(plan: colmod.ColumnPlan, column_types: dict) -> np.dtype | None:
    """The loss column's dtype for the whole file, as ``reduction="none"`` gives it (float32
    unless the input is float64), from the input columns' types unified over every part: a run
    over float32 and float64 files writes one type. ``None``: from each batch (no types known)."""
    if not column_types:
        return None
    wide = False
    for name in plan.input_columns:
        typ = column_types[name]
        while hasattr(typ, "value_type") and not pa.types.is_dictionary(typ):  # list, tensor
            typ = typ.value_type
        wide |= typ == pa.float64()
    return np.dtype(np.float64 if wide else np.float32)


class LossesFile:
    """The ``losses_to`` sink: row number, ``keep`` columns, loss, predicted class.

    ``row`` is the row's number in the source; with ``several_files``, a ``file`` column names
    the part and ``row`` counts within it. A target of class names has its predictions written
    as names (a dictionary column of :attr:`ColumnPlan.classes`). ``column_types`` (the used
    columns' types unified over the parts) fixes the ``keep`` and ``loss`` types, so every row
    group has the schema of the first.
    """

    #: The predicted classes' probabilities are not written: the kernels need not give them.
    confidences = False

    def __init__(
        self,
        writer: AtomicTableWriter,
        plan: colmod.ColumnPlan,
        column_types: dict | None = None,
        several_files: bool = False,
    ):
        self.writer, self.plan, self.several_files = writer, plan, several_files
        self.keep_types = {name: column_types[name] for name in plan.keep} if column_types else {}
        self.loss_dtype = _loss_dtype(plan, column_types)
        names = plan.classes if plan.kind in ("multiclass", "soft", "binary") else None
        self.class_names = pa.array(names) if names else None

    def add(self, batch, rows: BatchRows, x, t, values: RowValues, groups) -> None:
        out = {}
        if self.several_files:
            name = pa.array([rows.part], pa.string())
            out["file"] = pa.DictionaryArray.from_arrays(np.zeros(rows.count, np.int32), name).cast(
                pa.string()
            )
            out["row"] = pa.array(rows.in_part())
        else:
            out["row"] = pa.array(rows.in_source())
        for name in self.plan.keep:
            column = batch.column(name)
            out[name] = column.cast(self.keep_types[name]) if name in self.keep_types else column
        out["loss"] = pa.array(pooled_copy(values.loss, self.loss_dtype or compute_dtype(x.dtype)))
        predicted = _predicted(self.plan, values)
        if predicted is not None:
            if self.class_names is not None:
                predicted = pa.DictionaryArray.from_arrays(pa.array(predicted, pa.int32()), self.class_names)
            out["predicted"] = pa.array(predicted) if isinstance(predicted, np.ndarray) else predicted
        # the columns written here are never null: Parquet's REQUIRED columns, which the writer
        # encodes without definition levels (20M rows of row, id, loss, predicted: 23 ns a row
        # to encode as nullable, 18 as required)
        kept = self.plan.keep
        fields = [pa.field(name, array.type, nullable=name in kept) for name, array in out.items()]
        self.writer.write(pa.Table.from_pydict(out, schema=pa.schema(fields)))


class Run:
    """One scoring run: the accumulators, the row sinks, the row bookkeeping.

    A sink's ``add(batch, rows, x, t, values, groups)`` gets each batch without its null rows:
    where its rows come from (:class:`BatchRows`), the arrays scored, each row's
    :class:`~fastxent.engine.RowValues` (with predictions, and with their probabilities where a
    sink's ``confidences`` is true), and ``(group ids, keys)`` of the groups (``keys[id]`` is a
    group's key; ``None`` without ``group_by``).
    """

    def __init__(self, plan, make_acc, sinks, progress):
        self.plan = plan
        self.total = make_acc()
        judged = plan.num_classes if plan.kind == "multilabel" else 1
        # single-column binary rows without sample weights have denominators of 1 (binary_rows)
        ones = plan.kind == "binary" and plan.num_classes == 1 and not plan.weight
        self.groups = GroupTable(plan.group_by, judged, denominators_are_one=ones) if plan.group_by else None
        self.sinks = sinks
        self.confidences = any(sink.confidences for sink in sinks)
        self.progress = progress
        self.row = 0  # source rows read so far, nulls included
        self.nbytes = 0
        self.readers = collections.Counter()  # Parquet column chunks by reader (Score.readers)
        self._values: list[RowValues | None] = [None, None]  # the row values' two buffers, in turn
        self._turn = 0

    def part(self, part: Part, batch_rows: int, nulls: str, units=None, first_row: int = 0) -> None:
        """Score a part (or the given units of it) whose first row is row ``first_row`` of it.

        Each unit is summed on its own (:meth:`Accumulator.close_blocks` at its end).
        """
        before = collections.Counter(part.reads.counts) if part.reads is not None else None
        self._part(part, batch_rows, nulls, units, first_row)
        if before is not None:  # planning may have read the part too: count this run's reads only
            self.readers.update(part.reads.counts - before)

    def _part(self, part: Part, batch_rows: int, nulls: str, units, first_row: int) -> None:
        wide = wide_units(part, self.plan, self.total.device)
        if wide:
            self._units(part, batch_rows, nulls, units, first_row, wide)
            return
        fused = None if self.sinks else fused_file(part, self.plan, self.total)
        if fused is not None:
            self._fused(part, fused, batch_rows, nulls, units, first_row)
            return
        self._batches(part, batch_rows, nulls, units, first_row)

    def _batches(self, part: Part, batch_rows: int, nulls: str, units, first_row: int) -> None:
        """:meth:`part` batch by batch (the batch path)."""
        part_row, current = first_row, None
        floats = self.plan.float_labels()
        for unit, batch in part.batches(self.plan.columns(), batch_rows, units, floats):
            if unit != current and current is not None:
                self.close_blocks()
            current = unit
            whole = part.unit_rows is not None and batch.num_rows == part.unit_rows[unit]
            self.batch(part, part_row, batch, nulls, whole_unit=whole)
            part_row += batch.num_rows
        self.close_blocks()

    def _fused(
        self, part: Part, fused: FusedFile, batch_rows: int, nulls: str, units, first_row: int
    ) -> None:
        """:meth:`part` row group by row group through the fused pass (:mod:`.fused`); one it
        leaves to the batch path is read through that. A row group adds the bytes its batches
        would have held: the logits and float32 labels (the page reader's), and the keys; its
        groups' sums, made in the thread that scored it, are added to the run's groups."""
        part_row = first_row
        for unit, scored in fused.units(units):
            rows = part.unit_rows[unit]
            if scored is None:
                self._batches(part, batch_rows, nulls, [unit], part_row)
            else:
                nbytes = scored.nbytes
                if scored.groups is not None:
                    self.groups.add_unit(scored.groups)
                elif scored.keys is not None:
                    gid = self.groups.ids(pa.RecordBatch.from_arrays([scored.keys], names=self.plan.group_by))
                    self.groups.fold(
                        gid, scored.loss, self.groups.ones(rows)[:rows], scored.marks, whole_unit=True
                    )
                self.total.add_unit(scored.sums, scored.counts, rows, nbytes)
                self.row += rows
                self.nbytes += nbytes
                if self.progress is not None:
                    self.progress.advance(rows, nbytes)
            part_row += rows

    def _units(self, part: Part, batch_rows: int, nulls: str, units, first_row: int, wide: set) -> None:
        """:meth:`part` one unit at a time, the ``wide`` ones in class passes (:mod:`.wide`):
        their batches hold the other columns, and their rows' statistics stand for the input."""
        inputs = set(self.plan.input_columns)
        others = [c for c in self.plan.columns() if c not in inputs]
        part_row = first_row
        for unit in range(len(part.unit_rows)) if units is None else units:
            statistics = None
            if unit in wide:
                statistics = unit_statistics(
                    part,
                    unit,
                    self.plan,
                    self.total.spec,
                    bool(self.sinks),
                    lambda r, at=part_row: f"at row {at + r} of '{part.name}'",
                )
            start = part_row
            for _, batch in part.batches(others if statistics else self.plan.columns(), batch_rows, [unit]):
                at = part_row - start
                rows = None if statistics is None else statistics.rows(at, at + batch.num_rows)
                whole = batch.num_rows == part.unit_rows[unit]
                self.batch(part, part_row, batch, nulls, rows, whole_unit=whole)
                part_row += batch.num_rows
            self.close_blocks()

    def close_blocks(self) -> None:
        self.total.close_blocks()
        if self.groups is not None:
            self.groups.close_blocks()

    def batch(
        self,
        part: Part,
        part_row: int,
        batch: pa.RecordBatch,
        nulls: str,
        wide: UnitStatistics | None = None,
        whole_unit: bool = False,
    ) -> None:
        """Score one batch whose first row is row ``part_row`` of ``part``; ``wide``: its rows'
        statistics, for a batch read without its input columns (:mod:`.wide`); ``whole_unit``:
        the batch is a whole unit of the part (its groups' blocks close with it)."""
        plan = self.plan
        statistics, input_nulls = wide if wide is not None else (None, None)
        n = batch.num_rows
        nbytes = batch.nbytes + (0 if statistics is None else statistics.nbytes)
        self.nbytes += nbytes
        gid = self.groups.ids(batch) if self.groups is not None else None
        kept = None  # positions of the rows without a null (None: all rows)
        null_mask = plan.null_rows(batch, inputs=statistics is None)
        if input_nulls is not None:
            null_mask = input_nulls if null_mask is None else null_mask | input_nulls
            null_mask = null_mask if null_mask.any() else None
        if null_mask is not None:
            if nulls == "error":
                first = int(np.flatnonzero(null_mask)[0])
                raise InputValueError(
                    f"row {part_row + first} of '{part.name}' has a null in the predictions, target "
                    "or weight; pass nulls='skip' (--nulls skip) to skip and count such rows."
                )
            self.total.count_nulls(int(null_mask.sum()))
            kept = np.flatnonzero(~null_mask)
            batch = batch.take(pa.array(kept))
            statistics = None if statistics is None else statistics.take(kept)
            if gid is not None:
                self.groups.count_nulls(gid[null_mask])
                gid = gid[kept]
        first_row, self.row = self.row, self.row + n
        if batch.num_rows:
            self._score(part, part_row, first_row, batch, kept, gid, statistics, whole_unit)
        if self.progress is not None:
            self.progress.advance(n, nbytes)

    def _score(self, part, part_row, first_row, batch, kept, gid, statistics, whole_unit) -> None:
        plan = self.plan

        def where(i: int) -> str:
            return f"at row {part_row + int(i if kept is None else kept[i])} of '{part.name}'"

        x, t, sw = plan.arrays(batch, where, statistics)
        values = None
        if gid is not None or self.sinks:
            values = self._row_values(batch.num_rows, predicted=bool(self.sinks))
        self.total.update(x, t, sw, where=where, input_name=plan.input_name, row_values=values)
        if gid is not None:
            self.groups.fold(gid, values.loss, values.den, values.marks, whole_unit)
        if self.sinks:
            rows = BatchRows(first_row, part.name, part_row, kept, batch.num_rows)
            groups = None if gid is None else (gid, self.groups.keys.keys)
            for sink in self.sinks:
                sink.add(batch, rows, x, t, values, groups)

    def _row_values(self, n: int, predicted: bool) -> RowValues:
        """Room for a batch's row values. The loss, denominator, marks and confidences are
        written to two buffers in turn: fresh megabytes each batch cost a page fault every 4 KB
        (20M binary rows grouped: 0.15 s of 0.58), and with two, a sink may read a batch's values
        until the batch after next is scored (the report's statistics of one batch, taken while
        the next is scored, copied 160 MB of losses a run of 20M rows with one). The
        predictions, which a sink may hand on to Arrow as they are, are new each batch, from
        Arrow's memory pool (:mod:`~fastxent.io.pool`), as are the columns a losses file makes."""
        turn, self._turn = self._turn, 1 - self._turn
        values = self._values[turn]
        if values is None or values.loss.shape[0] < n:  # confidences as the run's sinks ask
            values = self._values[turn] = RowValues.empty(n, confidence=self.confidences)
        return values.rows(0, n)._replace(predicted=pooled_empty(n if predicted else 0, np.int32))

    def finish(self, elapsed: float) -> Score:
        """The run's :class:`Score`, groups sorted by key (see :func:`finish`)."""
        return finish(self.total, self.groups, self.plan, self.row, self.nbytes, elapsed, self.readers)
