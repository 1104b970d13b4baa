"""Parquet row groups too wide to decode row by row, scored in class passes.

pyarrow decodes rows of a Parquet file by holding the current page of every column it reads.
With one column per class, 10,000 classes of a 10,000-row row group are 10,000 pages of 40 KB:
the whole row group decoded at once (1.17 GB peak RSS however small the batches). Such a row
group's class columns are read instead a group of columns at a time (:data:`GROUP_BYTES`
decoded), and each row's statistics are folded group by group with the class-by-class kernel's
own steps (:mod:`fastxent.kernels.class_passes`): the maxima, then the sums of exponentials and
first argmax from the last class down, then (probabilities, label smoothing) the row sums and
smoothing terms in class order. Each row sees the same operations in the same order as when its
row group is decoded whole, so the bits are the same. The other columns (target, weight, group
keys, kept columns) are read as usual, and each batch is finished from its rows' statistics
(:class:`~fastxent.engine.ClassStatistics`).

Multiclass input with class-index targets only (the one-column-per-class layout of ImageNet-style
probabilities and logits); other kinds are read row by row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import engine
from ..inputs import as_array
from ..kernels import class_passes
from ..kernels.codes import LOGITS, PROBS
from ..kernels.multiclass import CORRECT, D_TARGET, LOG_NORM, N_STATS, ROW_SUM, SMOOTH
from ..validate import MULTICLASS_FIX, probability_error

#: A row group is read in class passes when decoding it row by row would hold more than this:
#: the current page of each class column, estimated as its decoded column chunk up to
#: :data:`PAGE_BYTES`. 100 class columns (at most 100 MiB) never are.
WIDE_BYTES = 256 << 20
#: The largest data page assumed (writers' default page size: pyarrow, Polars, DuckDB, Spark).
PAGE_BYTES = 1 << 20
#: Decoded bytes of one group of class columns.
GROUP_BYTES = 16 << 20


def wide_units(part, plan, device: str) -> set:
    """The units of ``part`` to score in class passes (see the module): Parquet row groups of
    one-column-per-class multiclass input whose pages would hold more than :data:`WIDE_BYTES`."""
    if part.metadata is None or plan.kind != "multiclass" or len(plan.input_columns) < 2 or device != "cpu":
        return set()
    inputs = set(plan.input_columns)
    wide = set()
    for unit in range(part.metadata.num_row_groups):
        group = part.metadata.row_group(unit)
        held = 0
        for i in range(group.num_columns):
            column = group.column(i)
            if column.path_in_schema in inputs:
                held += min(column.total_uncompressed_size, PAGE_BYTES)
        if held > WIDE_BYTES:
            wide.add(unit)
    return wide


class UnitStatistics(NamedTuple):
    """Every row's :class:`~fastxent.engine.ClassStatistics` over one wide unit (or some of its
    rows), and which rows hold a null in a class column (``nulls``, ``None`` if none)."""

    statistics: engine.ClassStatistics
    nulls: np.ndarray | None

    def rows(self, lo: int, hi: int) -> UnitStatistics:
        """Rows ``[lo, hi)``."""
        nulls = None if self.nulls is None else self.nulls[lo:hi]
        return UnitStatistics(self.statistics.rows(lo, hi), nulls)


def unit_statistics(part, unit: int, plan, spec, predicting: bool, where) -> UnitStatistics:
    """Fold every row of ``part``'s row group ``unit`` class group by class group (see the
    module). ``where(row)`` names a row of the unit in errors (a probability outside [0, 1])."""
    n = part.unit_rows[unit]
    names = plan.input_columns
    num_classes = len(names)
    dtype = engine.compute_dtype(
        np.result_type(*(part.schema.field(c).type.to_pandas_dtype() for c in names))
    )
    per_group = max(1, GROUP_BYTES // max(1, n * dtype.itemsize))
    starts = range(0, num_classes, per_group)
    kind = spec.kind_code()
    targets = _targets(part, unit, plan, n, where)
    nulls = np.zeros(n, dtype=bool)

    def classes(start: int) -> np.ndarray:
        """Classes ``[start, start + per_group)`` as a ``(C', n)`` array of ``dtype``."""
        chosen = names[start : start + per_group]
        table = part.read_columns(unit, chosen)
        group = np.empty((len(chosen), n), dtype=dtype)
        for j, name in enumerate(chosen):
            column = table.column(name)
            if column.null_count:
                nulls[:] |= np.asarray(column.is_null())
                column = pc.fill_null(column, 0)
            group[j] = as_array(name, column)
        return group

    launch = engine.launch
    keys = np.empty(n, dtype=np.int32 if dtype == np.float32 else np.int64)
    for start in starts:
        group = classes(start)
        launch(class_passes.MAXIMA_PASS, group.size, group, keys, start == 0)
    maxima = np.empty(n, dtype=dtype)
    class_passes.maxima_of_keys(keys, maxima)
    del keys

    summing = kind == LOGITS
    excess = np.zeros(n if summing else 0)
    partial = np.zeros(n if summing else 0, dtype=dtype)
    ties = np.zeros(n if summing else 0, dtype=dtype)
    first_max = np.full(n, num_classes, dtype=np.int32)
    first_nan = np.zeros(n if predicting else 0, dtype=np.int32)
    x_target = np.zeros(n)
    for start in reversed(starts):
        group = classes(start)
        args = (
            group,
            start,
            maxima,
            partial,
            ties,
            excess,
            first_max,
            targets,
            spec.ignore_index,
            x_target,
            first_nan,
        )
        launch(class_passes.SUMS_PASS, group.size, *args)
    class_passes.finish_excess(maxima, ties, excess)

    stats = np.zeros((N_STATS, n))
    predicted = np.empty(n if predicting else 0, dtype=np.int32)
    confidence = np.empty(n if predicting else 0)  # the predicted class's probability, from m and Z
    rows = (stats[D_TARGET], stats[LOG_NORM], stats[CORRECT])
    shifts = np.empty(n)
    class_passes.finish_statistics(
        kind,
        num_classes,
        maxima,
        excess,
        first_max,
        first_nan,
        x_target,
        targets,
        rows,
        predicted,
        confidence,
        shifts,
    )
    if kind == PROBS or spec.label_smoothing > 0.0:
        outside = None  # the first (row, class) that is no probability, as validate finds it
        for start in starts:
            group = classes(start)
            if kind == PROBS:
                outside = _first_outside(group, start, nulls, outside)
            args = (
                group,
                start,
                kind,
                spec.class_weight,
                spec.label_smoothing,
                shifts,
                stats[ROW_SUM],
                stats[SMOOTH],
            )
            launch(class_passes.TERMS_PASS, group.size, *args)
        if outside is not None:
            row, c, value = outside
            raise probability_error(plan.input_name, value, f"{where(row)}, class {c}", MULTICLASS_FIX)
    statistics = engine.ClassStatistics(stats, predicted, confidence, num_classes, dtype)
    return UnitStatistics(statistics, nulls if nulls.any() else None)


def _targets(part, unit: int, plan, n: int, where) -> np.ndarray:
    """The unit's class indices (int64) for gathering each row's target value. A null target
    (its row is skipped) or a target that is no class index (refused when the rows are scored)
    gathers nothing."""
    pieces = [batch.column(0) for _, batch in part.batches([plan.target], max(1, n), [unit])]
    column = pa.concat_arrays(pieces) if pieces else pa.array([], pa.int64())
    targets = np.full(n, plan.num_classes, dtype=np.int64)  # out of range: gathers nothing
    valid = np.flatnonzero(np.asarray(column.is_valid()))
    values = plan.target_values(column.take(pa.array(valid)), lambda row: where(int(valid[row])))
    if values.dtype.kind in "biu":
        targets[valid] = values
    return targets


def _first_outside(group: np.ndarray, start: int, nulls: np.ndarray, found):
    """``(row, class, value)`` of the first value (row-major order) of ``group`` (classes from
    ``start``) outside [0, 1] or NaN, rows with a null left out, if it comes before ``found``."""
    bad = ~((group >= 0) & (group <= 1))
    bad &= ~nulls
    if not bad.any():
        return found
    classes, rows = np.nonzero(bad)
    row = int(rows.min())
    c = int(classes[rows == row].min())
    here = (row, start + c, group[c, row])
    return here if found is None or here[:2] < found[:2] else found
